"""Real market moves labelled by an objective rule, on the un-injected 1-minute bars.

The injected anomalies ask "does Blink see a planted move?"; this family asks what users ask:
"does Blink alert on the real moves a trader would call abnormal, and how soon?". The rule is
fixed, simple and blind to every detector (it reads closes only, no volatility estimate, no
feature of Blink's):

- a minute j COMPLETES a move when its close is at least THETA away from the highest (a fall)
  or lowest (a rise) close of the MINUTES minutes before it: 2 % within 30 minutes, about
  three 30-minute standard deviations of BTC in 2017-18 and never reached on the calm 2016
  days;
- the move's window runs from that high (or low), where the move began, to minute j; windows
  that overlap are merged (one move, one window: it ends at the last minute completing one);
  its kind is the direction of its first leg.

The threshold and span were chosen before any detector was run on it and not tuned since. A
first version opened a window at the EARLIEST minute from which 2 % was reached within 30
minutes, so a sharp move's window began up to 30 flat minutes before it (its unit test showed
it; every delay was inflated by it): now it begins at the move's last high or low. The same
rows feed the `raw` family (where every alert counts as a false alarm); here an alert
overlapping a move is a detection, and delay is measured from the minute the move began (so a
slow move is "late" until it has moved enough to be seen: the delays are honest, not
flattering).
"""

from __future__ import annotations

import math

import numpy as np

from bench.inject import _ts
from blink.backtest.evaluation import Window

THETA = math.log(1.02)  # 2 % ...
MINUTES = 30  # ... within 30 minutes
RANGE_BEFORE, RANGE_AFTER = 600.0, 300.0  # the span around a false alarm whose range is shown


def label(rows: list[list[str]], theta: float = THETA, minutes: int = MINUTES
          ) -> list[Window]:
    """The moves in bar rows (time, open, high, low, close, ...), as windows."""
    return [Window(float(a), float(b), f"move_{kind}") for a, b, kind, _ in
            found_moves(rows, theta, minutes)]


def rule_delays(rows: list[list[str]]) -> list[float]:
    """Per move, seconds from its window's start to the first minute completing it: when the
    rule itself first sees the move (a detector that waits for the full move is this late)."""
    return [float(seen - start) for start, _, _, seen in found_moves(rows)]


def found_moves(rows: list[list[str]], theta: float = THETA, minutes: int = MINUTES
          ) -> list[list]:
    """[start, end, kind, first completing minute] per move (label's rule)."""
    if not rows:
        return []
    t = np.array([_ts(r[0]) for r in rows])
    lc = np.log(np.array([float(r[4]) for r in rows]))
    starts = np.searchsorted(t, t - minutes * 60.0, side="left")
    found: list[list] = []
    for j in range(1, len(t)):
        back = lc[starts[j]:j]
        if not len(back):
            continue
        fall, rise = lc[j] - back.max(), lc[j] - back.min()  # from the last high / low
        if max(-fall, rise) < theta:
            continue
        last = back[::-1]  # the LAST high / low: a flat stretch before a move is not in it
        i = j - 1 - int(np.argmax(last) if -fall >= rise else np.argmin(last))
        if found and t[i] <= found[-1][1]:
            found[-1][1] = t[j]
        else:
            found.append([t[i], t[j], "fall" if -fall >= rise else "rise", t[j]])
    return found


def section(results: dict) -> str:
    """The doc's section on this family (`results` keyed ("moves", stretch))."""
    from bench.evaluation_doc import family_table, kind_table, leads_line, misses, totals_of

    found, leads = totals_of(results, lambda k: k[0] == "moves")
    if not found["forest"].windows:
        return "## 5. Real moves on the raw days\n\nNot run."
    stretches = raw_stretches()
    return "\n\n".join(part for part in [
        "## 5. Real moves on the raw days (an objective rule)",
        "The raw days of §4, now with the moves a trader would call abnormal labelled by a "
        f"fixed rule (`bench/moves.py`; its threshold and span chosen before any detector ran "
        f"on it): a close at least {math.expm1(THETA) * 100:.0f} % away from the high (a fall) "
        f"or low (a rise) of the {MINUTES} minutes before it completes a move; its window runs "
        "from that high or low to the last minute completing it, overlapping windows merged. "
        "None on the calm 2016 stretch. An alert overlapping a move is a detection; every "
        "other alert is a false alarm; delay counts from the minute the move began, so a move "
        "that builds slowly is late by construction. The rule is absolute (no volatility "
        "estimate): on a wild day every 2 % swing is a window, and a detector that measures "
        "moves against the current volatility, as Blink's features do, is judged here against "
        "a trader's chart, not against its own yardstick.",
        family_table(found), kind_table(found), rule_line(stretches), misses(found),
        leads_line(leads), anatomy(results, stretches), file_line(results),
        knob(results)] if part)


def raw_stretches() -> dict[str, list[list[str]]]:
    """The shared bar file's raw (un-injected) rows per stretch, as the evaluation runs them."""
    from bench import inject
    from bench.evaluation import bar_file

    bars = inject.days(bar_file("coinbase_btcusd_minute_trade_bars.csv"))
    return {span: inject.segment(bars, run, None)[0]
            for span, run in inject.segments(bars).items()}


def rule_line(stretches: dict[str, list[list[str]]]) -> str:
    """How late the rule itself sees its moves."""
    delays = [d for rows in stretches.values() for d in rule_delays(rows)]
    if not delays:
        return ""
    return (f"**How late the rule itself is.** A window opens at the move's last high or low; "
            f"the rule completes the move (the first close {math.expm1(THETA) * 100:.0f} % "
            f"away) a median {np.median(delays):.0f} s later (from {min(delays):.0f} to "
            f"{max(delays):.0f} s over the {len(delays)} moves). That is when a detector that "
            "waits for the whole move would alert; the delays above count from the window's "
            "start, so a median below it means alerts while the move is still building.")


def ranges(rows: list[list[str]], starts, before: float = RANGE_BEFORE,
           after: float = RANGE_AFTER) -> np.ndarray:
    """Per start time: the price range of the bars from `before` s before it to `after` s
    after it (highest high / lowest low - 1; NaN without a bar there)."""
    t = np.array([_ts(r[0]) for r in rows])
    hi, lo = (np.array([float(r[c]) for r in rows]) for c in (2, 3))
    out = []
    for s in starts:
        a, b = np.searchsorted(t, s - before), np.searchsorted(t, s + after, side="right")
        out.append(hi[a:b].max() / lo[a:b].min() - 1 if b > a else math.nan)
    return np.array(out)


def anatomy(results: dict, stretches: dict[str, list[list[str]]]) -> str:
    """What the alerts off the moves fell on: the price range around each, in absolute
    terms (the rule's) and against the typical range of its stretch."""
    from bench.evaluation_doc import DETS, NAMES

    typical = {span: np.nanmedian(ranges(rows, [_ts(r[0]) for r in rows]))
               for span, rows in stretches.items() if ("moves", span) in results}
    parts = []
    for det in DETS:
        size, relative = [], []
        for span, rows in stretches.items():
            per = results.get(("moves", span))
            if per is None or len(per[det]) < 3 or not per[det][2]:
                continue
            got = ranges(rows, per[det][2])
            size += got.tolist()
            relative += (got / typical[span]).tolist()
        if not size:
            parts.append(f"{NAMES[det]}: none")
            continue
        size = np.array(size) * 100
        parts.append(
            f"{NAMES[det]}: {len(size)} alerts, range ≥ 1 %: {int((size >= 1).sum())}, "
            f"0.5–1 %: {int(((size >= 0.5) & (size < 1)).sum())}, < 0.5 %: "
            f"{int((size < 0.5).sum())} (median {np.median(size):.2f} %, "
            f"{np.median(relative):.1f}× its stretch's usual range)")
    return ("**What the other alerts fell on.** The price range (highest high ÷ lowest low) of "
            f"the {(RANGE_BEFORE + RANGE_AFTER) / 60:.0f} minutes around each false alarm "
            f"({RANGE_BEFORE / 60:.0f} before its start, {RANGE_AFTER / 60:.0f} after), from "
            "the bars; beside it, against the median range of such spans on its stretch: "
            + "; ".join(parts) + ". A false alarm here is an alert off the 2 % moves, not "
            "necessarily off a move a trader would see.")


def file_line(results: dict) -> str:
    """The same moves as an outside evaluation reading the scores file sees them (its flagged
    rows, those within two bars one alert: `evaluation.flagged`)."""
    from bench.evaluation import total
    from bench.evaluation_doc import DETS, NAMES

    moved = [per for key, per in results.items() if key[0] == "moves"]
    if not moved or any(len(per["forest"]) < 4 for per in moved):  # a run before the reader
        return ""
    parts = []
    for d in DETS:
        read = total(results, d, lambda k: k[0] == "moves", part=3)
        parts.append(f"{NAMES[d]} {read.detected} of {read.windows} with "
                     f"{read.false_per_day:.1f} other alerts a day")
    return ("**Read from the scores file.** An evaluation that reads the backtest's output "
            "instead of its events (each run of flagged rows, rows at most two bars apart "
            "joined, one alert; a row is flagged while an alert covers any of its trades): " +
            "; ".join(parts) + ".")


def knob(results: dict) -> str:
    """The same moves and raw days at the evaluation's KNOB_BUDGET (`moves-knob`, `raw-knob`)."""
    from bench.evaluation import KNOB_BUDGET
    from bench.evaluation_doc import NAMES, family_table, totals_of

    found, _ = totals_of(results, lambda k: k[0] == "moves-knob")
    raw, _ = totals_of(results, lambda k: k[0] == "raw-knob")
    if not found["forest"].windows:
        return ""
    return "\n\n".join([
        f"**The knob.** The same moves with `alerts_per_day` = {KNOB_BUDGET:g} instead of the "
        "default (the user's setting: more alerts, more of them on moves):",
        family_table(found),
        f"All alerts a day on the raw days at {KNOB_BUDGET:g} a day: " + ", ".join(
            f"{NAMES[d]} {raw[d].false_per_day:.1f}" for d in raw) + "."])
