"""Real market moves labelled by an objective rule, on the un-injected 1-minute bars.

The injected anomalies ask "does Blink see a planted move?"; this family asks what users ask:
"does Blink alert on the real moves a trader would call abnormal, and how soon?". The rule is
fixed, simple and blind to every detector (it reads closes only, no volatility estimate, no
feature of Blink's):

- a minute i OPENS a move when some close within the next MINUTES minutes is at least THETA
  away from close i (|log(c_j / c_i)| >= THETA, i < j <= i + MINUTES): 2 % within 30 minutes,
  about three 30-minute standard deviations of BTC in 2017-18 and never reached on the
  calm 2016 days;
- the window runs from minute i to the first j that reaches THETA; windows that overlap or
  touch are merged (one move, one window); its kind is the direction of its first leg.

Chosen before any detector was run on it and not tuned afterwards. The same rows feed the
`raw` family (where every alert counts as a false alarm); here an alert overlapping a move is a
detection, and delay is measured from the minute the move began (so a slow move is "late"
until it has moved enough to be seen: the delays are honest, not flattering).
"""

from __future__ import annotations

import math

import numpy as np

from bench.inject import _ts
from blink.backtest.evaluation import Window

THETA = math.log(1.02)  # 2 % ...
MINUTES = 30  # ... within 30 minutes


def label(rows: list[list[str]], theta: float = THETA, minutes: int = MINUTES
          ) -> list[Window]:
    """The moves in bar rows (time, open, high, low, close, ...), as windows."""
    if not rows:
        return []
    t = np.array([_ts(r[0]) for r in rows])
    lc = np.log(np.array([float(r[4]) for r in rows]))
    ends = np.searchsorted(t, t + minutes * 60.0, side="right")
    found: list[list] = []
    for i in range(len(t)):
        leg = lc[i + 1:ends[i]] - lc[i]
        hit = np.flatnonzero(np.abs(leg) >= theta)
        if not len(hit):
            continue
        j = i + 1 + int(hit[0])
        if found and t[i] <= found[-1][1]:
            found[-1][1] = max(found[-1][1], t[j])
        else:
            found.append([t[i], t[j], "rise" if leg[hit[0]] > 0 else "fall"])
    return [Window(float(a), float(b), f"move_{kind}") for a, b, kind in found]


def section(results: dict) -> str:
    """The doc's section on this family (`results` keyed ("moves", stretch))."""
    from bench.evaluation_doc import family_table, kind_table, leads_line, misses, totals_of

    found, leads = totals_of(results, lambda k: k[0] == "moves")
    if not found:
        return "## 5. Real moves on the raw days\n\nNot run."
    return "\n\n".join([
        "## 5. Real moves on the raw days (an objective rule)",
        "The raw days of §4, now with the moves a trader would call abnormal labelled by a "
        f"fixed rule (`bench/moves.py`, chosen before any detector ran on it): a move of at "
        f"least {math.expm1(THETA) * 100:.0f} % close to close within {MINUTES} minutes, its "
        "window from the minute it starts to the minute it gets there, overlapping windows "
        "merged. None on the calm 2016 stretch. An alert overlapping a move is a detection; "
        "every other alert is a false alarm; delay counts from the minute the move began, so a "
        "move that builds slowly is late by construction. The rule is absolute (no volatility "
        "estimate): on a wild day every 2 % swing is a window, and a detector that measures "
        "moves against the current volatility, as Blink's features do, is judged here against "
        "a trader's chart, not against its own yardstick.",
        family_table(found), kind_table(found), misses(found), leads_line(leads)])
