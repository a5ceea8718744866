"""The evaluation report: Markdown tables and one PNG (matplotlib, Agg, imported lazily).

The figure has two panels over event time: the price (or value) with the labelled windows
shaded and the detected anomaly events marked, and `score_raw` with the threshold of the model
serving each row (lower = more anomalous; anomalous below the line).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from blink.backtest import sampling
from blink.times import iso_fixed

MAX_POINTS = 20_000  # rows plotted (evenly thinned beyond)


def fmt(x: float, digits: int = 3) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def metrics_table(counts) -> str:
    s = counts.summary()
    rows = ["| windows | detected | of them carried | recall | events | false alarms | "
            "precision | F1 | false alarms / day | median delay (s) |", "|" + "---|" * 10,
            f"| {s['windows']} | {s['detected']} | {s['carried']} | {fmt(s['recall'])} | "
            f"{s['events']} | {s['false_alarms']} | {fmt(s['precision'])} | {fmt(s['f1'])} | "
            f"{fmt(s['false_alarms_per_day'], 1)} | {fmt(s['median_delay_s'], 1)} |"]
    return "\n".join(rows)


def kind_table(counts) -> str:
    rows = ["| kind | windows | detected | recall | median delay (s) |", "|---|---|---|---|---|"]
    for kind, (w, d, delays) in sorted(counts.by_kind.items()):
        delay = float(np.median(delays)) if delays else math.nan
        rows.append(f"| {kind} | {w} | {d} | {fmt(d / w if w else math.nan)} | "
                    f"{fmt(delay, 1)} |")
    return "\n".join(rows)


def write(out: Path, input_path, labels_path, scored: list, bt, windows, counts, settings,
          baseline: bool = False) -> Path:
    """report.md + report.png in `out`; returns the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    figure(out / "report.png", scored, bt, windows)
    fits = "\n".join(f"| {iso_fixed(round(f.end), 0)} | {f.version} | {f.rows} | "
                     f"{'yes' if f.promoted else 'no'} | {f.threshold:.4f} | {f.reason} |"
                     for f in bt.fits)
    detector = "rolling z-score baseline (`blink.detect.baseline`)" if baseline else \
        "IsolationForest (`blink.model.trainer`)"
    md = "\n\n".join([
        f"# Evaluation of `{input_path}`",
        f"Labels: `{labels_path}`. Detector: {detector}. "
        f"{sampling.describe(settings)}; {settings.n_estimators} trees × "
        f"{settings.max_samples} samples, alert budget {settings.alerts_per_day:g}/day, "
        f"event gap {settings.event_gap_seconds:g} s. {counts.skipped} window(s) ended "
        "before the first model and are not counted.",
        "## Event-level results", metrics_table(counts),
        "## By kind of anomaly", kind_table(counts),
        "## Figure", "![price, score, threshold, windows and detections](report.png)",
        "## Retrains",
        "| data up to | version | rows | served | threshold | checks |\n|---|---|---|---|---|---|"
        + ("\n" + fits if fits else ""),
    ])
    path = out / "report.md"
    path.write_text(md + "\n")
    return path


def figure(path: Path, scored: list, bt, windows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    step = max(1, len(scored) // MAX_POINTS)
    pts = scored[::step]
    t = (np.array([s.ts for s in pts]) * 1e3).astype("datetime64[ms]")
    value = np.array([float(s.value) for s in pts])
    raw = np.array([np.nan if s.score_raw is None else s.score_raw for s in pts])
    thr = np.array([np.nan if s.threshold is None else s.threshold for s in pts])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    ax1.plot(t, value, lw=0.7, color="#1f77b4", label="price / value")
    for i, w in enumerate(windows):
        for ax in (ax1, ax2):
            ax.axvspan(_d(w.start), _d(w.end), color="#ffbf00", alpha=0.3,
                       label="labelled window" if i == 0 and ax is ax1 else None)
    for i, ev in enumerate(sorted(bt.events.values(), key=lambda e: e.start)):
        ax1.axvspan(_d(ev.start), _d(max(ev.end, ev.start + 1)), color="#d62728", alpha=0.5,
                    label="anomaly event" if i == 0 else None)
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_ylabel("price")
    ax2.plot(t, raw, lw=0.5, color="#555555", label="score_raw")
    ax2.plot(t, thr, lw=1.0, color="#d62728", drawstyle="steps-post", label="threshold")
    ax2.set_ylabel("score_raw (low = anomalous)")
    ax2.legend(loc="lower left", fontsize=8)
    ax2.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _d(ts: float):
    return np.datetime64(round(ts), "s")

