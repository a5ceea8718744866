"""The trade tape of one product: dedupe by trade id, gap tracking, fan-out.

With several products, each has its own tape (`by_product`: the form the sources take).

Coinbase trade ids are consecutive per product, so a hole in the ids is a lost trade. The tape
keeps the set of ids it has seen as `floor` (every id <= floor seen) plus a short sorted list of
runs of seen ids above the floor; the common case (the next id) is O(1).

Gaps are detected three ways and announced to `on_gap` listeners as (lo, hi, detected_by):
an id jump between trades ("jump"; "reconnect" when the jump comes from a `last_match`;
"startup" for the first trade after resuming), and a heartbeat `last_trade_id` that stays ahead
of the tape for longer than `grace` seconds ("heartbeat").

Fan-out: `subscribe` listeners get every new trade in arrival order (the writer). Ordered
listeners (`subscribe_ordered`, the feature engine) get new trades strictly in id order: trades
after a hole are held until the hole is filled or given up (`give_up`), and at most
`hold_seconds` of wall time (default 10 s) or `max_held` trades; past that bound the held trades
are released in order and the hole's trades, if they arrive later, go to the writer only.
`hold_seconds=0` never holds (sources that cannot refill holes: replay, synthetic).

Bootstrap (`begin_at`): an empty tape can be told to start at an older id than the first live
trade; the ids from there on are then one gap ("bootstrap") that the backfill loads from REST
in id order, and ordered listeners wait for it up to `bootstrap_hold` seconds, not
`hold_seconds`, so the history reaches the feature engine before the live trades after it.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from blink.runtime.logs import RateLimited
from blink.runtime.metrics import Metrics
from blink.trade import Trade

log = logging.getLogger(__name__)
_limited = RateLimited(log)


def _first(run: list[int]) -> int:
    return run[0]


class Tape:
    def __init__(self, product_id: str, metrics: Metrics, source: str, *,
                 resume_id: int | None = None, holes: Iterable[tuple[int, int]] = (),
                 grace: float = 3.0, hold_seconds: float = 10.0, max_held: int = 100_000,
                 bootstrap_hold: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.product_id, self.source = product_id, source
        self.grace, self.hold_seconds, self.max_held, self._clock = (
            grace, hold_seconds, max_held, clock)
        self._ingested = metrics.trades_ingested.labels(source=source, product=product_id)
        self._duplicates = metrics.feed_duplicates.labels(product=product_id)
        self._gaps = metrics.feed_gaps.labels(product=product_id)
        self._backfilled = metrics.trades_backfilled.labels(product=product_id)
        self._subs: list[Callable[[Trade], None]] = []
        self._ordered: list[Callable[[Trade], None]] = []
        self._gap_listeners: list[Callable[[int, int, str], None]] = []
        self._floor = resume_id  # every id <= floor has been seen
        self._runs: list[list[int]] = []  # sorted disjoint [lo, hi] runs seen above floor + 1
        self._frontier = resume_id  # highest id seen or claimed by a declared gap
        self._cursor = resume_id  # highest id released to ordered listeners
        self._held: dict[int, Trade] = {}
        self._skips: dict[int, int] = {}  # given-up ranges ahead of the cursor: lo -> hi
        self._stuck_since: float | None = None
        self._ahead: deque[tuple[float, int]] = deque()  # heartbeats ahead: (clock, id)
        self._started = False
        self.bootstrap_hold = bootstrap_hold
        self.bootstrap_from: int | None = None  # begin_at's id, while the bootstrap is open
        self.bootstrap_to: int | None = None  # the bootstrap gap's last id, once declared
        self.newest: Trade | None = None  # the highest-id trade seen
        holes = sorted(h for h in holes if resume_id is not None and h[0] <= h[1] <= resume_id)
        if holes:  # holes below the resume point (found in the stored tape at start-up)
            self._floor = prev = holes[0][0] - 1
            for lo, hi in holes:
                if lo > prev + 1:
                    self._runs.append([prev + 1, lo - 1])
                prev = max(prev, hi)
            if prev < resume_id:
                self._runs.append([prev + 1, resume_id])

    # ------------------------------------------------------------------ listeners
    def subscribe(self, fn: Callable[[Trade], None]) -> None:
        self._subs.append(fn)

    def subscribe_ordered(self, fn: Callable[[Trade], None]) -> None:
        self._ordered.append(fn)

    def on_gap(self, fn: Callable[[int, int, str], None]) -> None:
        self._gap_listeners.append(fn)

    @property
    def contiguous_id(self) -> int | None:
        return self._floor

    def begin_at(self, first_id: int) -> None:
        """Start this empty tape at `first_id`: the ids up to the first live trade become the
        "bootstrap" gap (see the module docstring)."""
        if self._floor is not None:
            raise RuntimeError("begin_at on a tape that already holds trades")
        self._floor = self._frontier = self._cursor = first_id - 1
        self.bootstrap_from = first_id

    @property
    def bootstrapping(self) -> bool:
        """The bootstrap range is not all seen (or given up) yet."""
        if self.bootstrap_from is None:
            return False
        if self.bootstrap_to is None:  # no gap yet: waiting for the first live trade
            return not self._started
        return self._floor < self.bootstrap_to

    # ------------------------------------------------------------------ input
    def add(self, trade: Trade, via: str = "ws") -> bool:
        """Accept a trade; False (and counted) when it is a duplicate or stale."""
        tid = trade.trade_id
        floor = self._floor
        if floor is None:  # first trade ever, nothing to resume from
            floor = self._floor = self._frontier = self._cursor = tid - 1
        if tid == floor + 1:
            self._floor = tid
            runs = self._runs
            if runs and runs[0][0] == tid + 1:
                self._floor = runs.pop(0)[1]
        elif tid <= floor or self._contains(tid):
            self._duplicates.inc()
            return False
        else:
            self._mark(tid, tid)
        if tid > self._frontier:
            if tid > self._frontier + 1:
                by = "startup" if not self._started else (
                    "reconnect" if via == "last_match" else "jump")
                self._declare(self._frontier + 1, tid - 1, by)
            self._frontier = tid
        if self.newest is None or tid > self.newest.trade_id:
            self.newest = trade
        self._started = True
        self._ingested.inc()
        if via == "rest":
            self._backfilled.inc()
        for fn in self._subs:
            _call(fn, trade)
        if tid == self._cursor + 1 and not self._held:
            self._cursor = tid
            for fn in self._ordered:
                _call(fn, trade)
        elif tid > self._cursor:
            self._held[tid] = trade
            self._release()
        return True

    def heartbeat(self, last_trade_id: int) -> None:
        """The feed's newest trade id; a gap when it stays ahead past the grace period."""
        if last_trade_id <= 0 or self._frontier is None:
            return  # 0 = unknown (an old Coinbase quirk); nothing to compare with yet
        now, ahead = self._clock(), self._ahead
        while ahead and ahead[0][1] <= self._frontier:
            ahead.popleft()
        if last_trade_id > self._frontier and (not ahead or ahead[-1][1] < last_trade_id):
            ahead.append((now, last_trade_id))
        upto = None
        while ahead and now - ahead[0][0] >= self.grace:
            upto = ahead.popleft()[1]
        if upto is not None and upto > self._frontier:
            self._declare(self._frontier + 1, upto, "heartbeat")
            self._frontier = upto
        self._check_hold(now)

    def give_up(self, lo: int, hi: int) -> None:
        """Stop waiting for ids lo..hi: they count as seen and ordered listeners move on."""
        self._mark(lo, hi)
        if self._cursor is not None and hi > self._cursor:
            self._skips[max(lo, self._cursor + 1)] = hi
            self._release()

    def release_all(self) -> None:
        """Release every held trade in id order (on shutdown)."""
        for tid in sorted(self._held):
            self._emit_ordered(self._held.pop(tid))
        if self._cursor is not None:
            self._skips = {max(lo, self._cursor + 1): hi for lo, hi in self._skips.items()
                           if hi > self._cursor}
        self._stuck_since = None

    # ------------------------------------------------------------------ queries
    def missing(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The sub-ranges of lo..hi not seen yet."""
        out, at = [], lo if self._floor is None else max(lo, self._floor + 1)
        for rlo, rhi in self._runs:
            if at > hi:
                break
            if rhi < at:
                continue
            if rlo > at:
                out.append((at, min(rlo - 1, hi)))
            at = rhi + 1
        if at <= hi:
            out.append((at, hi))
        return out

    def open_gaps(self) -> list[tuple[int, int]]:
        if self._floor is None or self._frontier is None:
            return []
        return self.missing(self._floor + 1, self._frontier)

    # ------------------------------------------------------------------ internals
    def _contains(self, tid: int) -> bool:
        i = bisect.bisect_right(self._runs, tid, key=_first) - 1
        return i >= 0 and self._runs[i][1] >= tid

    def _mark(self, lo: int, hi: int) -> None:
        """Add lo..hi to the seen set."""
        if self._floor is None or lo <= self._floor + 1:
            self._floor = hi if self._floor is None else max(self._floor, hi)
            while self._runs and self._runs[0][0] <= self._floor + 1:
                self._floor = max(self._floor, self._runs.pop(0)[1])
            return
        runs = self._runs
        start = end = bisect.bisect_right(runs, lo, key=_first)
        if start > 0 and runs[start - 1][1] >= lo - 1:
            start -= 1
            lo, hi = runs[start][0], max(hi, runs[start][1])
        while end < len(runs) and runs[end][0] <= hi + 1:
            hi = max(hi, runs[end][1])
            end += 1
        runs[start:end] = [[lo, hi]]

    def _declare(self, lo: int, hi: int, detected_by: str) -> None:
        if lo == self.bootstrap_from and self.bootstrap_to is None:
            detected_by, self.bootstrap_to = "bootstrap", hi
        self._gaps.inc()
        log.info("gap in %s trade ids %d..%d (%d trades), detected by %s", self.product_id, lo,
                 hi, hi - lo + 1, detected_by)
        for fn in self._gap_listeners:
            fn(lo, hi, detected_by)

    def _emit_ordered(self, trade: Trade) -> None:
        self._cursor = trade.trade_id
        for fn in self._ordered:
            _call(fn, trade)

    def _release(self) -> None:
        held = self._held
        while True:
            nxt = self._cursor + 1
            if nxt in held:
                self._emit_ordered(held.pop(nxt))
            elif nxt in self._skips:
                hi = self._skips.pop(nxt)
                for tid in sorted(t for t in held if t <= hi):
                    self._emit_ordered(held.pop(tid))
                self._cursor = max(self._cursor, hi)
            else:
                break
        self._check_hold(self._clock() if held else 0.0)

    def _check_hold(self, now: float) -> None:
        if not self._held:
            self._stuck_since = None
            return
        if self._stuck_since is None:
            self._stuck_since = now
        patience = self.bootstrap_hold if self.bootstrapping else self.hold_seconds
        if now - self._stuck_since >= patience or len(self._held) > self.max_held:
            if self.hold_seconds > 0:
                log.warning("released %d held %s trades past an unfilled hole after %.1fs",
                            len(self._held), self.product_id, now - self._stuck_since)
            self.release_all()


def by_product(tapes: Mapping[str, Tape] | Tape, product: str) -> dict[str, Tape]:
    """A source's tapes by product id; a lone tape is `product`'s (the one-product form)."""
    return dict(tapes) if isinstance(tapes, Mapping) else {product: tapes}


def _call(fn: Callable[[Trade], None], trade: Trade) -> None:
    try:
        fn(trade)
    except Exception:  # noqa: BLE001 - one bad listener must not stop the feed
        _limited.warning(f"listener {fn!r}", "tape listener %r failed", fn, exc_info=True)
