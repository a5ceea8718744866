"""Anomaly events: consecutive anomalous scores folded into one event (pure, no I/O).

An event starts at the first anomalous score and absorbs every later anomalous score that
comes less than `gap_seconds` (event time) after the previous one; a score past the release
level (the model's `release`, between its threshold and its usual score) that comes within
the gap holds it open too (hysteresis: one episode hovering around the threshold is one
event). It ends — and the tracker reports it —
at the first score more than `gap_seconds` after the last score that held it. The peak is
the lowest score_raw seen (the most anomalous: score_raw is higher = more normal), with the
explanation computed at that moment. The live detector and the backtest both drive this
class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from blink.times import iso


@dataclass
class AnomalyEvent:
    product_id: str
    start: float  # event time (epoch seconds) of the first anomalous score
    end: float  # event time of the last score that held it open (anomalous, or past RELEASE)
    peak_time: float
    peak_score: float  # lowest score_raw during the event
    threshold: float
    model_version: str | None
    explanation: list[dict] = field(default_factory=list)
    points: int = 1  # anomalous scores folded into the event
    open: bool = True

    def as_dict(self) -> dict:
        """JSON-ready (times ISO-8601 UTC), as published and mirrored."""
        return {
            "product_id": self.product_id,
            "start_time": iso(self.start),
            "end_time": iso(self.end),
            "peak_time": iso(self.peak_time),
            "peak_score": self.peak_score,
            "threshold": self.threshold,
            "model_version": self.model_version,
            "explanation": self.explanation,
            "points": self.points,
            "open": self.open,
        }

    def snapshot(self) -> AnomalyEvent:
        return dataclasses.replace(self, explanation=list(self.explanation))


class EventTracker:
    """Anomalous scores fold into events: an event starts at an anomalous score and stays
    open while anomalous scores, or scores past the release level (`hold`), follow each
    other less than `gap_seconds` apart."""

    def __init__(self, product_id: str, gap_seconds: float) -> None:
        self.product_id = product_id
        self.gap = gap_seconds
        self.current: AnomalyEvent | None = None

    def observe(self, ts: float, score_raw: float, anomalous: bool, threshold: float,
                model_version: str | None,
                explain: Callable[[], list[dict]]) -> list[tuple[str, AnomalyEvent]]:
        """Fold one score in; returns the transitions: ("anomaly_end"|"anomaly_start", event).

        `explain` is called only when the event's peak moves (it costs a few µs).
        """
        out = self.advance(ts)
        if not anomalous:
            return out
        ev = self.current
        if ev is None:
            ev = self.current = AnomalyEvent(self.product_id, ts, ts, ts, score_raw, threshold,
                                             model_version, explain())
            out.append(("anomaly_start", ev))
            return out
        ev.end = ts
        ev.points += 1
        if score_raw < ev.peak_score:
            ev.peak_time, ev.peak_score, ev.explanation = ts, score_raw, explain()
        return out

    def hold(self, times: np.ndarray) -> int:
        """Scores past the release level, not anomalous, at `times` (ascending): the open
        event lasts on through them while each comes within the gap of the one before it
        (no point, no new peak); the first later than that leaves it as it was. Returns how
        many of `times` held it (the first ones)."""
        ev = self.current
        if ev is None or not len(times):
            return 0
        held = np.flatnonzero(np.diff(times, prepend=ev.end) > self.gap)
        last = (held[0] if len(held) else len(times)) - 1
        if last >= 0:
            ev.end = float(times[last])
        return last + 1

    def advance(self, ts: float) -> list[tuple[str, AnomalyEvent]]:
        """Event time moved to `ts` (with or without a score): close a stale event."""
        ev = self.current
        if ev is not None and ts - ev.end > self.gap:
            ev.open = False
            self.current = None
            return [("anomaly_end", ev)]
        return []

