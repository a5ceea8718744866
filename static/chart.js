/* Blink dashboard chart: price with anomaly markers and event shading (plus the synthetic
 * source's labelled windows), and under it the score with its threshold and the anomalous
 * zone. score_raw is sklearn's score_samples: LOWER = more anomalous. Drawn with the plotly.js
 * served from the installed plotly package. Exposes window.blinkChart.draw(el, data, revision):
 * the zoom is kept while `revision` stays the same (the product and the range). */
"use strict";

(() => {
  const C = {text: "#d1d4dc", muted: "#7d8796", grid: "#1b222c", price: "#e0e3eb",
             score: "#4fc3f7", red: "#ef5350", amber: "#f0b90b", violet: "#9c8cff"};

  function nearestPrice(times, prices, iso) {
    if (!times.length) return null;
    const t = new Date(iso).getTime();
    let lo = 0, hi = times.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (new Date(times[mid]).getTime() < t) lo = mid + 1; else hi = mid;
    }
    return prices[lo];
  }

  function scoreRange(scores, threshold) {
    const vals = scores.filter((v) => v != null && isFinite(v));
    if (threshold != null) vals.push(threshold);
    if (!vals.length) return null;
    let lo = Infinity, hi = -Infinity;
    for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const pad = (hi - lo) * 0.08 || 0.01;
    return [lo - pad, hi + pad];
  }

  function draw(chart, d, revision) {
    const flagged = d.times.map((t, i) => d.anomaly[i] ? i : -1).filter((i) => i >= 0);
    const peaks = d.events.map((e) => ({t: e.peak_time, p: nearestPrice(d.times, d.prices,
      e.peak_time), e}));
    const x0 = d.times[0], x1 = d.times[d.times.length - 1];
    const traces = [
      {name: "Price", x: d.times, y: d.prices, type: "scatter", mode: "lines",
       line: {color: C.price, width: 1.2}, hovertemplate: "%{y:,.2f}<extra>price</extra>"},
      {name: "Anomalous", x: flagged.map((i) => d.times[i]), y: flagged.map((i) => d.prices[i]),
       type: "scatter", mode: "markers", marker: {color: C.red, size: 5, opacity: 0.8},
       hoverinfo: "skip"},
      {name: "Anomaly event", x: peaks.map((p) => p.t), y: peaks.map((p) => p.p),
       type: "scatter", mode: "markers",
       marker: {color: C.red, size: 12, symbol: "diamond", line: {color: "#fff", width: 1}},
       text: peaks.map((p) => "peak " + Number(p.e.peak_score).toFixed(3) + " · " + p.e.points
         + " pts"),
       hovertemplate: "%{text}<extra>anomaly</extra>"},
      {name: "Score", x: d.times, y: d.score_raw, type: "scatter", mode: "lines", yaxis: "y2",
       line: {color: C.score, width: 1}, hovertemplate: "%{y:.3f}<extra>score</extra>"},
    ];
    if (d.threshold != null && x0) {
      traces.push({name: "Threshold", x: [x0, x1], y: [d.threshold, d.threshold], yaxis: "y2",
                   type: "scatter", mode: "lines", line: {color: C.amber, width: 1, dash: "dash"},
                   hovertemplate: "%{y:.3f}<extra>threshold</extra>"});
    }
    const range = scoreRange(d.score_raw, d.threshold);
    const shapes = d.threshold == null || !range ? [] : [{type: "rect", xref: "paper", yref: "y2",
      x0: 0, x1: 1, y0: d.threshold, y1: range[0], fillcolor: "rgba(239,83,80,0.07)",
      line: {width: 0}, layer: "below"}];  // the anomalous zone: below the threshold
    shapes.push(...d.events.map((e) => ({type: "rect", xref: "x", yref: "paper", x0: e.start_time,
      x1: e.end_time, y0: 0, y1: 1, fillcolor: "rgba(239,83,80,0.14)", line: {width: 0},
      layer: "below"})));
    for (const lb of d.labels || []) {
      shapes.push({type: "rect", xref: "x", yref: "paper", x0: lb.start, x1: lb.end ?? lb.start,
        y0: 0.34, y1: 1, fillcolor: "rgba(156,140,255,0.10)",
        line: {color: "rgba(156,140,255,0.45)", width: 1, dash: "dot"}, layer: "below"});
    }
    const axis = {gridcolor: C.grid, zerolinecolor: C.grid, linecolor: C.grid, color: C.muted};
    const layout = {
      paper_bgcolor: "#12161c", plot_bgcolor: "#12161c", font: {color: C.text, size: 11},
      margin: {l: 64, r: 14, t: 26, b: 40}, hovermode: "x unified", uirevision: String(revision),
      showlegend: true, legend: {orientation: "h", x: 0, y: 1.06, font: {color: C.muted}},
      xaxis: {...axis, type: "date", anchor: "y2", automargin: true},  // 2-line/tilted ticks
      yaxis: {...axis, domain: [0.34, 1], tickformat: ",.0f", title: {text: "USD"}},
      yaxis2: {...axis, domain: [0, 0.28], title: {text: "score"},
               ...(range ? {range, autorange: false} : {autorange: true})},
      shapes,
      annotations: d.times.length ? [] : [{text: "Waiting for data…", showarrow: false,
        xref: "paper", yref: "paper", x: 0.5, y: 0.6, font: {color: C.muted, size: 14}}],
    };
    Plotly.react(chart, traces, layout, {displaylogo: false, responsive: true,
      showSendToCloud: false,  // plotly.js 4 offers uploading to Plotly Cloud: never
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "sendChartToCloud"]});
    chart.dataset.points = String(d.times.length);
    chart.dataset.events = String(d.events.length);
  }

  window.blinkChart = {draw};
})();
