/* Blink dashboard: status pill, readouts, range selector, token handling and the data flow.
 * Live over Server-Sent Events (a push schedules a throttled refresh of /demo/data and
 * /api/anomalies); falls back to polling when the stream breaks, and says so. The chart is
 * chart.js, the table table.js, formatting format.js. No inline script anywhere (strict CSP);
 * all text goes in with textContent.
 * Several products: the view shows one (`?product=P` in the URL, default the first), passes it
 * to every data request and ignores the stream events of the others; the overview
 * (overview.js) shows all of them and switches the view in place (history.pushState: reload
 * keeps the choice, back and forward move between the products seen). */
"use strict";

(() => {
  const TOKEN_KEY = "blink.token";
  const RANGE_KEY = "blink.minutes";
  const STATE_TEXT = {warming_up: "Warming up", normal: "Normal", anomaly: "Anomaly",
                      feed_down: "Feed down"};
  const SOURCE_TEXT = {coinbase: "Live", replay: "Replay", synthetic: "Synthetic"};
  const MIN_GAP_MS = {5: 1000, 60: 3000, 1440: 15000};  // refresh throttle per range
  const POLL_MS = 5000;
  const SAFETY_MS = 15000;  // refresh even without pushes (notices a silent feed)

  const {fmtPrice, fmtNum, fmtTime, fmtDateTime, fmtAge, ago} = window.blinkFormat;
  const $ = (id) => document.getElementById(id);
  const chart = $("chart");
  const PRODUCTS = (document.body.dataset.products || document.body.dataset.pair).split(",");
  const DEFAULT = document.body.dataset.default || PRODUCTS[0];
  let product = productFromUrl();
  let overview = null;
  let token = initToken();
  let minutes = Number(localStorage.getItem(RANGE_KEY)) || 60;
  let lastRefresh = 0, refreshTimer = null, inFlight = false, pollTimer = null;
  let source = null, failures = 0;

  function productFromUrl() {
    const p = new URLSearchParams(location.search).get("product");
    return PRODUCTS.includes(p) ? p : DEFAULT;
  }

  function initToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    const t = hash.get("token") || query.get("token");
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
      query.delete("token");
      const q = query.toString();
      history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
    }
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  async function getJSON(url) {
    const headers = token ? {Authorization: "Bearer " + token} : {};
    const r = await fetch(url, {headers, cache: "no-store"});
    if (r.status === 401) {
      showBanner("This Blink needs an API token.", true);
      throw new Error("unauthorized");
    }
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  function showBanner(text, askToken) {
    $("banner").hidden = !text;
    $("banner-text").textContent = text || "";
    $("token-form").hidden = !askToken;
  }

  // ------------------------------------------------------------------ rendering
  function setStatus(status) {
    const pill = $("pill");
    pill.dataset.state = status.state;
    pill.textContent = STATE_TEXT[status.state] || status.state;
    pill.title = status.feed_error || status.reason || "Detector state";
    const warm = $("warmup");  // what warming up waits for (/demo/data's status; ticks: none)
    if (status.state !== "warming_up") {
      warm.hidden = true;
    } else if (status.warmup) {
      warm.textContent = status.warmup.message || "";
      warm.hidden = !status.warmup.message;
      if (status.warmup.progress != null) warm.dataset.progress = status.warmup.progress;
    }
    const badge = $("source");
    badge.dataset.source = status.source;
    badge.textContent = status.source_label || SOURCE_TEXT[status.source] || status.source;
    source = status.source;
  }

  function setReadouts(d) {
    const s = d.status, m = d.model || {};
    $("r-price").textContent = fmtPrice(s.price);
    const score = $("r-score");
    score.textContent = fmtNum(s.score_raw);
    score.className = s.state === "anomaly" ? "hot" : "";
    $("r-threshold").textContent = fmtNum(d.threshold);
    $("r-rate").textContent = fmtNum(d.trade_rate, 1);
    if (s.source === "coinbase") {
      $("r-lag-label").textContent = "Feed lag";
      $("r-lag").textContent = fmtAge(s.feed_lag_seconds);
    } else {
      $("r-lag-label").textContent = "Updated";
      $("r-lag").textContent = s.updated_age_seconds == null ? "—"
        : fmtAge(s.updated_age_seconds) + " ago";
    }
    const model = $("r-model");
    model.textContent = m.label || "no model yet";
    model.title = m.trained_at ? "trained " + fmtDateTime(m.trained_at) + " UTC" : "";
    if (m.trained_at) {
      const small = document.createElement("small");
      small.textContent = " trained " + ago(m.trained_at);
      model.append(small);
    }
    const asof = $("r-asof");
    asof.textContent = fmtTime(s.as_of);
    asof.title = s.as_of ? fmtDateTime(s.as_of) + " UTC" : "";
    if (s.as_of) {
      const small = document.createElement("small");
      small.textContent = " " + s.as_of.slice(0, 10);
      asof.append(small);
    }
  }

  function onTick(t) {  // the readouts move with every push; the chart at the throttle
    if (t.price != null) $("r-price").textContent = fmtPrice(t.price);
    if (t.trade_rate != null) $("r-rate").textContent = fmtNum(t.trade_rate, 1);
    const score = $("r-score");
    score.textContent = fmtNum(t.score_raw);
    score.className = t.anomaly ? "hot" : "";
    if (source) {
      setStatus({state: t.not_ready ? "warming_up" : (t.anomaly ? "anomaly" : "normal"),
                 source, reason: t.not_ready});
    }
  }

  // ------------------------------------------------------------------ data flow
  async function refresh() {
    if (inFlight) { scheduleRefresh(); return; }
    inFlight = true;
    lastRefresh = Date.now();
    const shown = product, q = "product=" + encodeURIComponent(product);
    try {
      const [d, a] = await Promise.all([getJSON("/demo/data?minutes=" + minutes + "&" + q),
                                        getJSON("/api/anomalies?limit=20&" + q)]);
      if (shown !== product) return;  // switched meanwhile: the finally block reloads
      setStatus(d.status);
      setReadouts(d);
      window.blinkChart.draw(chart, d, product + " " + minutes);
      window.blinkTable.draw($("anomalies"), $("anomaly-count"), a.anomalies);
      if ($("token-form").hidden) showBanner("");
    } catch (err) {
      if (err.message !== "unauthorized") showBanner("Cannot load data: " + err.message);
    } finally {
      inFlight = false;
      if (shown !== product) scheduleRefresh(true);
    }
  }

  function scheduleRefresh(urgent) {
    if (refreshTimer) return;
    const gap = urgent ? 0 : Math.max(0, (MIN_GAP_MS[minutes] || 3000) - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, gap);
  }

  function setMode(mode, text) {
    const conn = $("conn");
    conn.dataset.mode = mode;
    conn.textContent = text;
  }

  function startPolling() {
    if (pollTimer) return;
    setMode("polling", "Polling every " + POLL_MS / 1000 + " s (stream down)");
    pollTimer = setInterval(refresh, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    const url = "/api/stream" + (token ? "?token=" + encodeURIComponent(token) : "");
    const es = new EventSource(url);
    es.addEventListener("hello", () => {
      failures = 0;
      stopPolling();
      setMode("live", "Live (push)");
      scheduleRefresh(true);
    });
    es.addEventListener("tick", (ev) => {
      const t = parse(ev.data);
      if (!t) return;
      if (overview) overview.tick(productOf(t), t);
      if (productOf(t) !== product) return;  // another product's: its card only
      onTick(t);
      scheduleRefresh(false);
    });
    for (const kind of ["anomaly_start", "anomaly_end", "model", "lag"]) {
      es.addEventListener(kind, (ev) => {
        if (overview) overview.soon();
        const t = parse(ev.data);
        if (!t || productOf(t) === product) scheduleRefresh(true);
      });
    }
    es.onerror = () => {
      failures += 1;
      if (es.readyState === EventSource.CLOSED || failures >= 2) {
        es.close();
        startPolling();
        setTimeout(connect, 30000);  // keep trying to get the push channel back
      } else {
        setMode("connecting", "Reconnecting…");
      }
    };
  }

  function parse(raw) {
    try { return JSON.parse(raw); } catch { return null; }
  }

  // events without a product come from a single-product Blink: the first product's
  const productOf = (payload) => payload.product_id || DEFAULT;

  function showProduct(p, push) {  // switch the single-product view in place
    if (p === product) return;
    product = p;
    if (push) history.pushState(null, "", "/demo?product=" + encodeURIComponent(p));
    document.body.dataset.pair = p;
    document.title = "Blink · " + p;
    $("brand-pair").textContent = p;
    for (const out of document.querySelectorAll(".readouts output")) out.textContent = "—";
    window.blinkTable.reset();
    if (overview) overview.select(p);
    scheduleRefresh(true);
  }

  function selectRange(m) {
    minutes = m;
    localStorage.setItem(RANGE_KEY, String(m));
    for (const b of document.querySelectorAll(".ranges button")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.minutes) === m));
    }
    scheduleRefresh(true);
  }

  function start() {
    for (const b of document.querySelectorAll(".ranges button")) {
      b.addEventListener("click", () => selectRange(Number(b.dataset.minutes)));
    }
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      token = $("token-input").value.trim();
      sessionStorage.setItem(TOKEN_KEY, token);
      showBanner("");
      location.reload();
    });
    if ($("overview")) {
      overview = window.blinkOverview.start({getJSON, onSelect: (p) => showProduct(p, true)});
    }
    window.addEventListener("popstate", () => showProduct(productFromUrl(), false));
    selectRange([5, 60, 1440].includes(minutes) ? minutes : 60);
    setInterval(() => { if (Date.now() - lastRefresh > SAFETY_MS) refresh(); }, SAFETY_MS / 3);
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
