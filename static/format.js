/* Blink dashboard: number, time and age formatting (UTC everywhere). */
"use strict";

(() => {
  const fmtPrice = (p) => p == null ? "—" : p.toLocaleString("en-US",
    {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const fmtNum = (x, d = 3) => x == null || !isFinite(x) ? "—" : Number(x).toFixed(d);
  const fmtTime = (iso) => iso ? new Date(iso).toISOString().slice(11, 19) : "—";
  const fmtDateTime = (iso) => iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19)
    : "—";
  function fmtAge(seconds) {
    if (seconds == null) return "—";
    if (seconds < 1) return (seconds * 1000).toFixed(0) + " ms";
    if (seconds < 120) return seconds.toFixed(1) + " s";
    if (seconds < 7200) return (seconds / 60).toFixed(0) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(0) + " d";
  }
  function ago(iso) {
    if (!iso) return "";
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    return isFinite(s) ? fmtAge(Math.max(0, s)) + " ago" : "";
  }

  window.blinkFormat = {fmtPrice, fmtNum, fmtTime, fmtDateTime, fmtAge, ago};
})();
