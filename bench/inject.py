"""Anomalies injected into real 1-minute Coinbase bars (the method of docs/evaluation.md).

Consecutive days of the bar file form one continuous segment (`segments`: the file's 9 days
are 4 stretches months apart, the longest 72 h), as a live service or a long file of bars
sees them: the warm-up is paid once per stretch, not every day. Into a copy of a day,
anomalies are injected at
12:00, 16:00 and 20:00 UTC (those the day reaches; the first hours are the detector's warm-up):
the evaluation makes two copies of each day, `small` and `large` (SETS: one jump, one burst,
one crash each, their order rotated from day to day), by rewriting the bars'
open/high/low/close with a price factor f(t) — a bar's four prices all get the factor of its
start time, so every bar stays consistent:

- `jump_<x>`: f = 1 ± x from t0 on (a level shift; signs alternate up, down, up); window
  [t0, t0 + 5 min];
- `vol_burst_x<m>`: for 30 minutes the log price's moves away from the close before t0 are
  multiplied by m = 3 or 5 (p' = p0 (p / p0)^m); after it the level continues from where the
  burst left it; window [t0, t0 + 30 min];
- `flash_crash_<x>`: f falls log-linearly to -x (2 % or 5 %) over 5 minutes, then recovers
  over 15 minutes; window [t0, t0 + 20 min].

Volumes are left as they are (a price-only anomaly: the harder case for volume features).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from blink.backtest.evaluation import Window

HOURS = (12, 16, 20)
KINDS = {"jump_0.5%": 0.005, "jump_1%": 0.01, "jump_2%": 0.02, "vol_burst_x3": 3.0,
         "vol_burst_x5": 5.0, "flash_crash_2%": 0.02, "flash_crash_5%": 0.05}
SPAN = {"jump": 300.0, "vol_burst": 1800.0, "flash_crash": 1200.0}
# a copy of a day gets one anomaly of each family (the evaluation's budget: 2 copies a day)
SETS = {"small": ["jump_0.5%", "vol_burst_x3", "flash_crash_2%"],
        "large": ["jump_2%", "vol_burst_x5", "flash_crash_5%"]}


def days(path: Path) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Rows of the bar file grouped by UTC day: day -> (header, rows)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        out: dict[str, list] = defaultdict(list)
        for row in reader:
            out[row[0][:10]].append(row)
    return {d: (header, rows) for d, rows in out.items()}


def _ts(cell: str) -> float:
    return datetime.fromisoformat(cell.replace("Z", "+00:00")).timestamp()


def inject(rows: list[list[str]], kinds: str | Sequence[str]
           ) -> tuple[list[list[str]], list[Window]]:
    """A copy of one day's bars with anomalies injected at HOURS (the n-th hour gets
    kinds[n % len(kinds)]; a single kind: at every hour), and the labelled windows."""
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    ts = [_ts(r[0]) for r in rows]
    day0 = math.floor(ts[0] / 86_400) * 86_400
    planned = [(day0 + h * 3600, kinds[n % len(kinds)]) for n, h in enumerate(HOURS)]
    planned = [(t0, k) for t0, k in planned if t0 + SPAN[family_of(k)] < ts[-1]]
    factor = [1.0] * len(rows)
    for n, (t0, kind) in enumerate(planned):
        family, size = family_of(kind), KINDS[kind]
        span = SPAN[family]
        carry = 1.0
        for i, t in enumerate(ts):
            if t < t0:
                continue
            if family == "jump":
                f = 1 + size * (1 if n % 2 == 0 else -1)
            elif family == "flash_crash":
                depth = math.log(1 - size)
                x = (t - t0) / 300 if t < t0 + 300 else max(0.0, 1 - (t - t0 - 300) / 900)
                f = math.exp(depth * x)
            else:
                f = _burst(rows, ts, i, t0, size, span)
                if t >= t0 + span:
                    f = carry
                else:
                    carry = f
            factor[i] *= f
    out = [[r[0], *(_fmt(float(c) * k) for c in r[1:5]), r[5]]
           for r, k in zip(rows, factor, strict=True)]
    return out, [Window(t0, t0 + SPAN[family_of(k)], k) for t0, k in planned]


def segments(days: dict[str, tuple]) -> dict[str, list[str]]:
    """The days (`days`' keys, "YYYY-MM-DD") grouped into runs of consecutive dates, each
    named by its span ("2016-10-07..09", or the day alone)."""
    runs: list[list[str]] = []
    for day in sorted(days):
        if runs and (date.fromisoformat(day) - date.fromisoformat(runs[-1][-1])).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return {(run[0] if len(run) == 1 else f"{run[0]}..{run[-1][8:]}"): run for run in runs}


def segment(days: dict[str, tuple], run: list[str], name: str | None
            ) -> tuple[list[list[str]], list[Window]]:
    """The rows of the consecutive days `run`, each day's copy `name` injected (its kinds
    rotated by the day's place among all `days`, `copies`); None: the raw rows."""
    order = {day: i for i, day in enumerate(sorted(days))}
    rows: list[list[str]] = []
    windows: list[Window] = []
    for day in run:
        day_rows = days[day][1]
        if name is not None:
            day_rows, day_windows = inject(day_rows, copies(order[day])[name])
            windows += day_windows
        rows += day_rows
    return rows, windows


def copies(day_index: int) -> dict[str, list[str]]:
    """The injected copies of the day_index-th day: SETS, each with its kinds rotated by the
    day so that every kind lands at every hour across the days."""
    r = day_index % len(HOURS)
    return {name: kinds[r:] + kinds[:r] for name, kinds in SETS.items()}


def family_of(kind: str) -> str:
    """"jump", "vol_burst" or "flash_crash": the kind without its size."""
    return next(f for f in SPAN if kind.startswith(f))


def _burst(rows, ts, i, t0, mult, span) -> float:
    """Factor that turns the close at i into p0 (p / p0)^mult (p0: the last close before t0)."""
    if ts[i] >= t0 + span:
        return 1.0
    p0 = next((float(rows[j][4]) for j in range(i, -1, -1) if ts[j] < t0), float(rows[i][1]))
    p = float(rows[i][4])
    return (p / p0) ** (mult - 1)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
