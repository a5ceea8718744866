/* Blink dashboard: the overview of every product (the page has it with several products only):
 * one card per product with its state (feed down included), last price, a score sparkline (plotly, static) and its
 * last anomaly (time, peak score, the explanation's first line), plus the market context line when the API gives one. Polls /api/products every
 * POLL_MS (sooner after an anomaly or model event); the stream's ticks move a card's price and
 * state in between. The cards are links (/demo?product=P): a plain click switches the view in
 * place (the caller's onSelect), a modified click opens a new tab as links do.
 * Exposes window.blinkOverview.start({getJSON, onSelect}) -> {tick, soon, select}. */
"use strict";

(() => {
  const {fmtPrice, fmtNum, fmtDateTime} = window.blinkFormat;
  const POLL_MS = 5000;
  const SOON_MS = 1000;
  const STATE_TEXT = {warming_up: "Warming up", normal: "Normal", anomaly: "Anomaly",
                      feed_down: "Feed down"};
  const C = {score: "#4fc3f7", red: "#ef5350", amber: "#f0b90b"};

  const card = (p) => document.querySelector(`#cards .card[data-product="${CSS.escape(p)}"]`);

  function setState(el, state, reason) {
    const pill = el.querySelector(".pill");
    pill.dataset.state = state;
    pill.textContent = STATE_TEXT[state] || state;
    pill.title = reason || "";
    el.dataset.state = state;
  }

  function lastText(e) {  // the explanation's first line goes under it
    if (!e) return "No anomaly yet";
    return "Last: " + fmtDateTime(e.start).slice(5, 16) + " · peak " + fmtNum(e.peak_score);
  }

  function marketText(m) {
    if (!m) return "";
    if (typeof m === "string") return m;
    if (typeof m.text === "string") return m.text;
    if (Array.isArray(m.moving) && m.of != null) {  // {"moving": [products], "of": N}
      const names = m.moving.map((x) => typeof x === "string" ? x : (x && x.product_id) || "?");
      if (!names.length) return "";  // a quiet market: no line
      if (names.length === m.of) return "Market-wide: " + m.of + " of " + m.of + " products moving";
      return "Market: " + names.length + " of " + m.of + " products moving: " + names.join(", ");
    }
    return "";
  }

  function drawSpark(el, s) {
    const x = s.spark.map((p) => p[0]), y = s.spark.map((p) => p[1]);
    const traces = [{x, y, type: "scatter", mode: "lines", hoverinfo: "skip",
                     line: {color: s.anomaly ? C.red : C.score, width: 1}}];
    if (s.threshold != null && x.length) {  // lower = more anomalous: below the dotted line
      traces.push({x: [x[0], x[x.length - 1]], y: [s.threshold, s.threshold], type: "scatter",
                   mode: "lines", hoverinfo: "skip", line: {color: C.amber, width: 1, dash: "dot"}});
    }
    Plotly.react(el, traces, {
      width: el.clientWidth || 96, height: el.clientHeight || 30, showlegend: false,
      margin: {l: 0, r: 0, t: 2, b: 2}, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)", xaxis: {visible: false, type: "date"},
      yaxis: {visible: false}}, {staticPlot: true, displayModeBar: false});
    el.dataset.points = String(x.length);
  }

  function draw(data) {
    for (const s of data.products) {
      const el = card(s.product_id);
      if (!el) continue;
      setState(el, s.state,
               s.state === "feed_down" ? "no trade of " + s.product_id + " lately" : s.reason);
      el.querySelector(".card-price").textContent = fmtPrice(s.price);
      drawSpark(el.querySelector(".spark"), s);
      const last = el.querySelector(".card-last");
      last.textContent = lastText(s.last_anomaly);
      last.title = s.last_anomaly ? fmtDateTime(s.last_anomaly.start) + " UTC" : "";
      const expl = el.querySelector(".card-expl");
      expl.textContent = (s.last_anomaly && s.last_anomaly.explanation) || "";
      expl.title = expl.textContent;
    }
    const market = document.getElementById("market");
    market.textContent = marketText(data.market);
    market.hidden = !market.textContent;
    document.getElementById("overview").dataset.loaded = String(Date.now());
  }

  function start({getJSON, onSelect}) {
    let inFlight = false, soonTimer = null;

    async function load() {
      if (inFlight) return;
      inFlight = true;
      try {
        draw(await getJSON("/api/products"));
      } catch {
        // the single-product view says what is wrong (token, unreachable); the next poll retries
      } finally {
        inFlight = false;
      }
    }

    function soon() {
      if (soonTimer) return;
      soonTimer = setTimeout(() => { soonTimer = null; load(); }, SOON_MS);
    }

    function tick(product, t) {  // a pushed tick: that card's price and state, at once
      const el = card(product);
      if (!el) return;
      if (t.price != null) el.querySelector(".card-price").textContent = fmtPrice(t.price);
      const ready = !t.not_ready && t.score_raw != null;  // a tick: its product is live
      setState(el, !ready ? "warming_up" : (t.anomaly ? "anomaly" : "normal"), t.not_ready);
    }

    function select(product) {
      for (const el of document.querySelectorAll("#cards .card")) {
        if (el.dataset.product === product) el.setAttribute("aria-current", "page");
        else el.removeAttribute("aria-current");
      }
    }

    document.getElementById("cards").addEventListener("click", (ev) => {
      const el = ev.target.closest(".card");
      if (!el || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
      ev.preventDefault();
      onSelect(el.dataset.product);
    });
    load();
    setInterval(load, POLL_MS);
    return {tick, soon, select};
  }

  window.blinkOverview = {start};
})();
