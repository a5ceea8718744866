"""`python -m blink evaluate INPUT --labels LABELS [--report DIR]`: how well Blink detects.

Runs the backtest (`blink.backtest.driver`, or `--baseline` for `blink.detect.baseline`), then
scores the anomaly EVENTS (the detector's folded events, not single rows) against labelled windows:

- a window is **detected** when any event overlaps it (event [s, e] and window [ws, we] with
  s <= we and e >= ws); recall = detected windows / windows;
- an event overlapping no window is a **false alarm**; precision = events overlapping a window
  / events; F1 from the two;
- **delay** of a detected window: max(start of its earliest overlapping event, ws) - ws;
- **carried**: detected windows whose every overlapping event began before the window did
  (an event still open from an earlier alert: no fresh alert for this window; counted in
  recall, as the overlap rule says, and reported so that long events cannot pass unseen);
- **false alarms per day**: false alarms / the scored span in days.

Only what the detector could see counts: the scored span runs from the first scored row (a
model exists) to the last row; windows ending before it (warm-up) are left out and counted as
`skipped`. Labels: JSON `[{"start", "end", "kind"}]` (what the synthetic source writes) or CSV
`start,end[,kind]` (header optional); times ISO-8601 (no zone = UTC) or epoch seconds.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from blink.config import ConfigError
from blink.times import parse_when  # ISO-8601 or epoch s/ms/µs/ns

DAY = 86_400.0


@dataclass(frozen=True)
class Window:
    start: float  # epoch seconds
    end: float
    kind: str = "anomaly"


def load_labels(path: str | Path) -> list[Window]:
    """Windows from JSON or CSV (see the module docstring); ConfigError names the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read labels: {e}") from None
    if text.lstrip().startswith("["):
        try:
            items = [(i + 1, [d["start"], d["end"], d.get("kind", "anomaly")])
                     for i, d in enumerate(json.loads(text))]
        except (ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"{path}: not a JSON list of {{start, end, kind}}: {e}") from None
    else:
        rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
        if rows and rows[0][0].strip().lower() == "start":
            rows = rows[1:]
            first = 2
        else:
            first = 1
        items = list(enumerate(rows, first))
    return [_window(path, n, cells) for n, cells in items]


def _window(path: Path, n: int, cells: list) -> Window:
    if len(cells) not in (2, 3):
        raise ConfigError(f"{path}:{n}: expected start,end[,kind]")
    try:
        start, end = (parse_when(str(c)).timestamp() for c in cells[:2])
    except ValueError as e:
        raise ConfigError(f"{path}:{n}: {e}") from None
    if end < start:
        raise ConfigError(f"{path}:{n}: window ends before it starts")
    return Window(start, end, str(cells[2]).strip() if len(cells) == 3 else "anomaly")


@dataclass
class Counts:
    """Additive evaluation counts (merge segments with `+`); rates are properties."""

    windows: int = 0
    detected: int = 0
    skipped: int = 0  # windows over before the first model
    carried: int = 0  # detected only by events that began before the window
    events: int = 0
    true_events: int = 0
    false_alarms: int = 0
    days: float = 0.0
    delays: list[float] = field(default_factory=list)
    by_kind: dict[str, list] = field(default_factory=dict)  # kind -> [windows, detected, delays]

    def __add__(self, other: Counts) -> Counts:
        kinds = {k: list(v) for k, v in self.by_kind.items()}
        for k, (w, d, dl) in other.by_kind.items():
            mine = kinds.setdefault(k, [0, 0, []])
            mine[0], mine[1], mine[2] = mine[0] + w, mine[1] + d, mine[2] + dl
        return Counts(self.windows + other.windows, self.detected + other.detected,
                      self.skipped + other.skipped, self.carried + other.carried,
                      self.events + other.events,
                      self.true_events + other.true_events,
                      self.false_alarms + other.false_alarms, self.days + other.days,
                      self.delays + other.delays, kinds)

    @property
    def precision(self) -> float:
        return self.true_events / self.events if self.events else math.nan

    @property
    def recall(self) -> float:
        return self.detected / self.windows if self.windows else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r):
            return math.nan
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def false_per_day(self) -> float:
        return self.false_alarms / self.days if self.days > 0 else math.nan

    @property
    def median_delay(self) -> float:
        return statistics.median(self.delays) if self.delays else math.nan

    def summary(self) -> dict[str, float]:
        return {"windows": self.windows, "detected": self.detected, "carried": self.carried,
                "recall": self.recall,
                "events": self.events, "false_alarms": self.false_alarms,
                "precision": self.precision, "f1": self.f1,
                "false_alarms_per_day": self.false_per_day,
                "median_delay_s": self.median_delay, "days": self.days}


def score(events: Iterable[tuple[float, float]], windows: Iterable[Window],
          span: tuple[float, float] | None) -> Counts:
    """Event-level counts of `events` [(start, end)] against `windows` over `span`."""
    out = Counts()
    if span is None:  # nothing was ever scored
        out.skipped = len(list(windows))
        return out
    lo, hi = span
    out.days = max(hi - lo, 0.0) / DAY
    events = sorted(events)
    out.events = len(events)
    hit = [False] * len(events)
    for w in windows:
        if w.end < lo or w.start > hi:
            out.skipped += 1
            continue
        mine = out.by_kind.setdefault(w.kind, [0, 0, []])
        out.windows += 1
        mine[0] += 1
        overlapping = [i for i, (s, e) in enumerate(events) if s <= w.end and e >= w.start]
        for i in overlapping:
            hit[i] = True
        if overlapping:
            delay = max(events[overlapping[0]][0], w.start) - w.start
            out.detected += 1
            out.carried += events[overlapping[-1]][0] < w.start
            out.delays.append(delay)
            mine[1] += 1
            mine[2].append(delay)
    out.true_events = sum(hit)
    out.false_alarms = out.events - out.true_events
    return out


def evaluate_run(scored: list, bt, windows: Iterable[Window]) -> Counts:
    """Counts of one backtest (`backtest.run` output) against `windows`."""
    first = next((s.ts for s in scored if s.score_raw is not None), None)
    span = None if first is None else (first, scored[-1].ts)
    return score(((ev.start, ev.end) for ev in bt.events.values()), windows, span)
