"""REST backfill: fill the tape's holes from `GET /products/{id}/trades`, paging with `after`.

For missing ids a..b the request is `after=b+1&limit=b-a+1` (at most 1000 ids), which returns
b down to a; nearby small holes share one request. The tape says what is still missing after
each round; a round that adds nothing counts as a failed attempt, and after `attempts` of them
the rest is given up and noted in `feed_gaps`. Requests are paced at `settings.rest_rate` by a
`Pacer`, which the backfills of several products share (one REST budget in total); HTTP
429, 5xx and network errors are retried after a full-jitter backoff. The part of a gap older
than `backfill_horizon_hours` is not fetched: it is recorded as an unfilled gap with a note.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import aiohttp

from blink.config import Settings
from blink.runtime.health import Component
from blink.runtime.logs import RateLimited
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import backoff_delays
from blink.tape import Tape
from blink.trade import Trade, TradeError, from_coinbase

log = logging.getLogger(__name__)
_limited = RateLimited(log)
PAGE = 1000


class GapLog(Protocol):
    """Where the holes are recorded (handed in by the service: `blink.store.gaps.GapStore`).
    The feed knows nothing of the store; without one, holes are filled but not recorded."""

    async def insert(self, lo: int, hi: int, detected_by: str, detected_at: datetime,
                     note: str | None = None) -> int: ...
    async def filled(self, gap_id: int, count: int) -> None: ...
    async def unfilled(self, gap_id: int, count: int, note: str) -> None: ...
    async def narrow(self, gap_id: int, lo: int) -> None: ...


class BackfillError(RuntimeError):
    """REST refused the request for good (a 4xx other than 429)."""


@dataclass
class Gap:
    lo: int
    hi: int
    detected_by: str
    detected_at: datetime
    row: int | None = None
    filled: int = 0


def plan(missing: list[tuple[int, int]], page: int = PAGE) -> list[tuple[int, int]]:
    """Request ranges of at most `page` ids covering `missing`, oldest first."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(missing):
        if out and lo <= out[-1][0] + page - 1:
            a = out[-1][0]
            out[-1] = (a, max(out[-1][1], min(hi, a + page - 1)))
            lo = max(lo, out[-1][1] + 1)
        while lo <= hi:
            out.append((lo, min(hi, lo + page - 1)))
            lo = out[-1][1] + 1
    return out


class Pacer:
    """At most `rate` requests a second in total, for every caller that shares it: each
    `wait()` takes the next free slot (slots `1 / rate` s apart; an idle pacer starts now)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.requests = 0  # slots taken: the REST requests of every product
        self._next_at = 0.0

    async def wait(self) -> None:
        self.requests += 1
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(now, self._next_at)
        self._next_at = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


class Backfill:
    def __init__(self, tape: Tape, session: aiohttp.ClientSession, settings: Settings,
                 metrics: Metrics, health: Component, gaps: GapLog | None = None, *,
                 attempts: int = 3, pacer: Pacer | None = None,
                 unreachable: Callable[[BaseException], None] | None = None) -> None:
        """`pacer`: the REST budget shared with other products (default: its own);
        `unreachable(error)` is told of network errors (no answer at all)."""
        self.tape, self.session, self.health, self.gaps = tape, session, health, gaps
        self.url = f"{settings.coinbase_rest_url.rstrip('/')}/products/{tape.product_id}/trades"
        self.pacer = pacer or Pacer(settings.rest_rate)
        self.interval = self.pacer.interval
        self.unreachable = unreachable
        self.horizon = timedelta(hours=settings.backfill_horizon_hours)
        self.attempts = attempts
        self.requests = 0
        self._bad = metrics.feed_bad_messages
        self._queue: asyncio.Queue[Gap] = asyncio.Queue()
        tape.on_gap(self._detected)
        for lo, hi in tape.open_gaps():  # holes known before the feed starts (a restart)
            self._detected(lo, hi, "restart")

    def _detected(self, lo: int, hi: int, detected_by: str) -> None:
        self._queue.put_nowait(Gap(lo, hi, detected_by, datetime.now(UTC)))

    async def run(self) -> None:
        """Fill gaps as the tape reports them, until cancelled."""
        while True:
            group = [await self._queue.get()]
            while not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self.fill(group)
            except Exception as e:  # noqa: BLE001 - the backfill must outlive one bad group
                if not isinstance(e, BackfillError):
                    log.exception("backfill of %s failed", self.tape.product_id)
                    self.health.failure(e)
                log.error("backfill of %d %s gap(s) abandoned: %s", len(group),
                          self.tape.product_id, e)
                for g in group:
                    await self._close(g, f"backfill error: {e}")

    async def fill(self, gaps: list[Gap]) -> None:
        for g in gaps:
            g.row = await self._record(self.gaps and self.gaps.insert(
                g.lo, g.hi, g.detected_by, g.detected_at))
        cutoff = datetime.now(UTC) - self.horizon
        checked, failed = False, 0
        while failed < self.attempts:
            missing = [m for g in gaps for m in self.tape.missing(g.lo, g.hi)]
            if not missing:
                break
            progress = False
            for a, b in plan(missing):
                page = await self.page(after=b + 1, limit=b - a + 1)
                if not checked:
                    checked = True
                    if page and page[-1].time < cutoff:
                        boundary = await self._boundary(page, max(g.hi for g in gaps), cutoff)
                        gaps = await self._skip(gaps, boundary)
                        progress = True
                        break
                progress |= self._add(gaps, [t for t in page if a <= t.trade_id <= b])
            failed = 0 if progress else failed + 1
        for g in gaps:
            await self._close(g)

    def _add(self, gaps: list[Gap], trades: list[Trade]) -> bool:
        los = [g.lo for g in gaps]
        added = False
        for t in sorted(trades, key=lambda t: t.trade_id):
            if self.tape.add(t, "rest"):
                added = True
                i = bisect.bisect_right(los, t.trade_id) - 1
                if i >= 0 and t.trade_id <= gaps[i].hi:
                    gaps[i].filled += 1
        return added

    async def _close(self, g: Gap, why: str = "") -> None:
        left = self.tape.missing(g.lo, g.hi)
        if not left and not why:
            log.info("%s gap %d..%d filled (%d trades from REST)", self.tape.product_id, g.lo,
                     g.hi, g.filled)
            await self._record(self.gaps and self.gaps.filled(g.row, g.filled))
            return
        n = sum(hi - lo + 1 for lo, hi in left)
        note = why or f"REST did not return {n} of {g.hi - g.lo + 1} ids after " \
                      f"{self.attempts} attempts"
        log.warning("%s gap %d..%d left unfilled: %s", self.tape.product_id, g.lo, g.hi, note)
        for lo, hi in left:
            self.tape.give_up(lo, hi)
        await self._record(self.gaps and self.gaps.unfilled(g.row, g.filled, note))

    async def _skip(self, gaps: list[Gap], boundary: int) -> list[Gap]:
        """Give up every id below `boundary` (past the horizon) and record it."""
        keep = []
        for g in gaps:
            if g.lo >= boundary:
                keep.append(g)
                continue
            cut = min(g.hi, boundary - 1)
            note = (f"past the {self.horizon.total_seconds() / 3600:g}h backfill horizon:"
                    f" {cut - g.lo + 1} trades not filled")
            log.warning("%s ids %d..%d: %s", self.tape.product_id, g.lo, cut, note)
            self.tape.give_up(g.lo, cut)
            if cut == g.hi:
                await self._record(self.gaps and self.gaps.unfilled(g.row, 0, note))
                continue
            await self._record(self.gaps and self.gaps.insert(
                g.lo, cut, g.detected_by, g.detected_at, note))
            await self._record(self.gaps and self.gaps.narrow(g.row, boundary))
            g.lo = boundary
            keep.append(g)
        return keep

    async def _boundary(self, page: list[Trade], hi: int, cutoff: datetime) -> int:
        """The first id whose trade is not older than `cutoff` (hi + 1 if none)."""
        newer = [t.trade_id for t in page if t.time >= cutoff]
        if newer:
            return min(newer)
        return await self.first_since(cutoff, page[0].trade_id + 1, hi + 1)

    async def first_since(self, cutoff: datetime, lo: int, top: int) -> int:
        """The first id in lo..top-1 whose trade is not older than `cutoff` (`top` if none);
        trade times never fall as ids rise. Bisects with one-trade probes while the range is
        wider than a page, then reads the page that holds the boundary."""
        while lo < top:
            if top - lo <= PAGE:
                page = await self.page(after=top, limit=top - lo)
                newer = [t.trade_id for t in page if t.time >= cutoff and t.trade_id >= lo]
                return min(newer, default=top)
            mid = (lo + top) // 2
            probe = await self.page(after=mid + 1, limit=1)
            if probe and probe[0].time >= cutoff:
                top = mid
            else:
                lo = mid + 1
        return lo

    async def page(self, after: int | None, limit: int) -> list[Trade]:
        """One REST page: trades with id < after (None: the newest), newest first (retried
        until answered)."""
        delays = backoff_delays(self.interval, 30.0)
        params = {"limit": limit} if after is None else {"after": after, "limit": limit}
        while True:
            await self.pacer.wait()
            self.requests += 1
            try:
                async with self.session.get(self.url, params=params) as r:
                    if r.status == 200:
                        items = await r.json()
                        self.health.success(requests=self.pacer.requests)
                        return self._parse(items)
                    body = (await r.text())[:200]
                    if r.status != 429 and r.status < 500:
                        raise BackfillError(f"HTTP {r.status} {body}")
                    wait = float(r.headers.get("Retry-After", 0) or 0) or next(delays)
                    _limited.warning(f"http{r.status}", "backfill: HTTP %d %s; retrying in"
                                     " %.2fs", r.status, body, wait)
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                self.health.failure(e)
                if self.unreachable is not None and isinstance(e, (OSError, TimeoutError)):
                    self.unreachable(e)
                wait = next(delays)
            await asyncio.sleep(wait)

    def _parse(self, items: object) -> list[Trade]:
        if not isinstance(items, list):
            self._bad.labels("rest").inc()
            return []
        out = []
        for item in items:
            try:
                out.append(from_coinbase(item, self.tape.product_id))
            except (TradeError, AttributeError) as e:
                self._bad.labels("rest").inc()
                _limited.warning("rest", "backfill: bad REST trade skipped: %s", e)
        return out

    async def _record(self, coro) -> int | None:
        """A feed_gaps write; a database error is logged, never stops the backfill."""
        if not coro:
            return None
        try:
            return await coro
        except Exception as e:  # noqa: BLE001 - bookkeeping must not lose trades
            _limited.warning("gaps", "feed_gaps write failed: %s", e)
            return None
