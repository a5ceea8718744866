"""Warm-up progress: what Blink waits for before its first score, and how far along it is.

Two things take time on a fresh start: loading history (`History`: the live feed's REST
bootstrap, the synthetic source's generated past, the first hours of a replayed file) and
training the first model. The sources and the retrain schedule update one `Warmup` per app;
/readyz and the dashboard show it (`blink.web.warming`). Progress is logged at a human pace
(at the start, every `LOG_SECONDS` at most, and at the end), never per page or per trade.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

LOG_SECONDS = 10.0


@dataclass
class History:
    source: str  # where it comes from: "coinbase_rest", "synthetic", "replay"
    hours: float  # how much event time was asked for
    started: float  # clock() when loading began
    trades: int = 0  # loaded so far
    total: int | None = None  # trades to load, when known up front (REST: the id range)
    fraction: float = 0.0  # 0..1
    done: bool = False
    seconds: float | None = None  # how long it took, once done
    note: str = ""  # why it ended early (e.g. REST unreachable)


class Warmup:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.history: History | None = None
        self.training_since: float | None = None  # clock() of the running attempt's start
        self.training_seconds: float | None = None  # duration of the last attempt
        self.rows: int | None = None  # warm feature rows the last attempt found ...
        self.rows_needed: int | None = None  # ... and how many it needs
        self.rows_rate: float | None = None  # rows gained per wall second between attempts
        self._rows_at: tuple[float, int] | None = None
        self._logged = 0.0

    # ------------------------------------------------------------------ history
    def history_begin(self, source: str, hours: float, total: int | None = None) -> None:
        self.history = History(source, hours, self.clock(), total=total)
        self._logged = self.clock()
        log.info("first start: loading %g h of history (%s)%s", hours, source,
                 f", {total:,} trades" if total else "")

    def history_progress(self, trades: int, fraction: float, total: int | None = None) -> None:
        h = self.history
        if h is None or h.done:
            return
        h.trades, h.fraction = trades, min(1.0, max(0.0, fraction))
        if total is not None:
            h.total = total
        now = self.clock()
        if now - self._logged >= LOG_SECONDS:
            self._logged = now
            eta = self.history_eta()
            log.info("loading history (%s): %s trades, %.0f %%%s", h.source, f"{trades:,}",
                     100 * h.fraction, "" if eta is None else f", ~{eta:.0f} s left")

    def history_done(self, note: str = "") -> None:
        h = self.history
        if h is None or h.done:
            return
        h.done, h.note, h.seconds = True, note, round(self.clock() - h.started, 2)
        if note:
            log.warning("history loading stopped after %s trades in %.1f s: %s",
                        f"{h.trades:,}", h.seconds, note)
        else:
            h.fraction = 1.0
            log.info("history loaded (%s): %s trades in %.1f s", h.source, f"{h.trades:,}",
                     h.seconds)

    @property
    def loading(self) -> bool:
        return self.history is not None and not self.history.done

    def history_eta(self) -> float | None:
        h = self.history
        if h is None or h.done or h.fraction <= 0.01:
            return None
        spent = self.clock() - h.started
        return spent * (1 - h.fraction) / h.fraction

    # ------------------------------------------------------------------ training
    def training_begin(self) -> None:
        self.training_since = self.clock()

    def training_end(self) -> None:
        if self.training_since is not None:
            self.training_seconds = round(self.clock() - self.training_since, 2)
        self.training_since = None

    def training_rows(self, rows: int | None, needed: int | None) -> None:
        """An attempt found too few warm rows: remember how many, and how fast they grow."""
        self.training_since = None  # (not a fit: its duration says nothing of the next one)
        now = self.clock()
        if rows is not None and self._rows_at is not None and now > self._rows_at[0]:
            gained = rows - self._rows_at[1]
            self.rows_rate = gained / (now - self._rows_at[0]) if gained > 0 else None
        self._rows_at = None if rows is None else (now, rows)
        self.rows, self.rows_needed = rows, needed

    def rows_eta(self) -> float | None:
        if self.rows is None or self.rows_needed is None or not self.rows_rate:
            return None
        return max(0.0, (self.rows_needed - self.rows) / self.rows_rate)

    def training_elapsed(self) -> float | None:
        return None if self.training_since is None else self.clock() - self.training_since

    def as_dict(self) -> dict:
        h = self.history
        history = None if h is None else {
            "source": h.source, "hours": h.hours, "trades": h.trades, "total": h.total,
            "fraction": round(h.fraction, 4), "done": h.done, "seconds": h.seconds,
            "eta_seconds": _round(self.history_eta()), "note": h.note or None}
        elapsed = self.training_elapsed()
        return {"history": history,
                "training": {"running": elapsed is not None, "elapsed_seconds": _round(elapsed),
                             "last_seconds": self.training_seconds, "rows": self.rows,
                             "rows_needed": self.rows_needed,
                             "rows_eta_seconds": _round(self.rows_eta())}}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)
