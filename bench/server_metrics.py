"""Plain `timestamp,value` series with known anomalies: a generated server metric.

One sample every `STEP` seconds (5 minutes, a usual scrape interval) for `DAYS` days, seeded:
a level of 100 with a daily cycle (±30, peak mid-afternoon UTC), a weekly dip (weekends −15 %)
and AR(1) noise (sd 3, φ 0.6). From hour `FIRST_HOUR` on (the backtest's first fit on a
5-minute series comes after 600 rows, 50 h), an anomaly every 8–16 h, the three kinds in a
seeded order per round:

- `spike`: one sample + 6..12 × the noise sd (a request storm); label [t, t + 10 min];
- `level_shift`: the level moves by ±20..35 % and stays (a deploy, a lost node); label
  [t, t + 30 min];
- `drift`: a linear ramp of +25..50 % of the level over 3–6 h that stays (a leak); label the
  ramp [t, t + ramp].

The backtest reads the file as a `series` (`blink.formats.files`): the value is the price of a
size-1 trade, windows follow the 5-minute interval (`blink.backtest.sampling`).
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from blink.backtest.evaluation import Window

KINDS = ("spike", "level_shift", "drift")
STEP = 300.0
DAYS = 12
FIRST_HOUR = 56.0
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC


def generate(seed: int, days: float = DAYS) -> tuple[list[tuple[int, float]], list[Window]]:
    rng = random.Random(seed)
    n = int(days * 86400 / STEP)
    plan: list[tuple[str, float, float, float]] = []  # kind, start, end, size
    t, kinds = T0 + FIRST_HOUR * 3600 + rng.uniform(0, 4 * 3600), []
    while t < T0 + days * 86400 - 8 * 3600:
        if not kinds:
            kinds = rng.sample(KINDS, len(KINDS))
        kind = kinds.pop()
        if kind == "spike":
            plan.append((kind, t, t + 600, rng.uniform(6, 12)))
        elif kind == "level_shift":
            plan.append((kind, t, t + 1800, rng.choice((-1, 1)) * rng.uniform(0.2, 0.35)))
        else:
            plan.append((kind, t, t + rng.uniform(3, 6) * 3600, rng.uniform(0.25, 0.5)))
        t = plan[-1][2] + rng.uniform(8, 16) * 3600
    rows, noise = [], 0.0
    for i in range(n):
        ts = T0 + i * STEP
        hour = (ts % 86400) / 3600
        weekday = int((ts // 86400 + 3) % 7)  # 1970-01-01 was a Thursday
        level = (100 + 30 * math.sin(2 * math.pi * (hour - 9) / 24)) * (
            0.85 if weekday >= 5 else 1.0)
        noise = 0.6 * noise + rng.gauss(0, 3 * math.sqrt(1 - 0.36))
        extra, mult = 0.0, 1.0
        for kind, start, end, size in plan:
            if ts < start:
                continue
            if kind == "spike" and ts < start + STEP:
                extra += size * 3
            elif kind == "level_shift":
                mult *= 1 + size
            elif kind == "drift":
                mult *= 1 + size * min(1.0, (ts - start) / (end - start))
        rows.append((int(ts), max(0.1, level * mult + noise + extra)))
    return rows, [Window(s, e, k) for k, s, e, _ in plan]


def write(path: Path, rows: list[tuple[int, float]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("timestamp", "value"))
        w.writerows((ts, f"{v:.3f}") for ts, v in rows)
    return path
