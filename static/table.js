/* Blink dashboard: the recent anomalies table (newest first, with explanations). Built with
 * DOM nodes and textContent only. Exposes window.blinkTable.draw(table, count, items), and
 * reset() (another product shown: its rows are not new). */
"use strict";

(() => {
  const {fmtNum, fmtDateTime, fmtAge} = window.blinkFormat;
  const seenEvents = new Set();
  let firstTable = true;

  function explanationNodes(expl) {
    const frag = document.createDocumentFragment();
    const items = Array.isArray(expl) ? expl : (expl && typeof expl === "object"
      ? Object.entries(expl).map(([feature, value]) => ({feature, value})) : []);
    for (const item of items.slice(0, 4)) {
      const span = document.createElement("span");
      span.className = "feat";
      if (typeof item !== "object" || item === null) {
        span.textContent = String(item);
      } else if (typeof item.text === "string") {
        // the model's own wording ("5-min return −9.0σ of its current volatility"); the raw
        // feature, value and surprise (-log10 tail probability) in the tooltip
        span.textContent = item.text;
        const parts = [item.feature ?? "?"];
        if (typeof item.value === "number") parts.push("= " + item.value.toPrecision(4));
        if (typeof item.surprise === "number") parts.push("(p ≈ 1e-" + item.surprise.toFixed(1) + ")");
        span.title = parts.join(" ");
      } else {  // events stored before explanations had a text: name and value (or z)
        const name = item.feature ?? item.name ?? "?";
        const v = item.z ?? item.contribution ?? item.value;
        const b = document.createElement("b");
        b.textContent = name;
        span.append(b);
        if (typeof v === "number") {
          const val = document.createElement("span");
          val.className = v >= 0 ? "pos" : "neg";
          val.textContent = " " + (v >= 0 ? "+" : "") + v.toFixed(2) + (item.z != null ? "σ" : "");
          span.append(val);
        }
      }
      frag.append(span);
    }
    if (!items.length) frag.append("—");
    return frag;
  }

  function draw(tableEl, countEl, items) {
    const body = tableEl.tBodies[0];
    body.replaceChildren();
    countEl.textContent = items.length ? "(" + items.length + " latest)" : "";
    if (!items.length) {
      const tr = body.insertRow();
      tr.className = "empty";
      const td = tr.insertCell();
      td.colSpan = 6;
      td.textContent = "No anomaly yet.";
      return;
    }
    for (const e of items) {
      const tr = body.insertRow();
      tr.dataset.id = e.id;
      if (!firstTable && !seenEvents.has(e.id)) tr.className = "fresh";
      seenEvents.add(e.id);
      const dur = (new Date(e.end_time) - new Date(e.start_time)) / 1000;
      const cells = [fmtDateTime(e.start_time), fmtAge(dur), fmtNum(e.peak_score),
                     fmtNum(e.threshold), null, e.model_version || "—"];
      cells.forEach((text, i) => {
        const td = tr.insertCell();
        if (i === 1 || i === 2 || i === 3) td.className = "num";
        if (i === 4) td.className = "expl";
        if (text === null) td.append(explanationNodes(e.explanation)); else td.textContent = text;
      });
    }
    firstTable = false;
  }

  function reset() {
    seenEvents.clear();
    firstTable = true;
  }

  window.blinkTable = {draw, reset};
})();
