"""First start on an empty tape: load `bootstrap_hours` of history from REST before scoring.

The Coinbase source calls `Bootstrap.begin(tapes)` with the products whose tape is empty before
it first connects (never for a product with a stored tape: that resumes and backfills as
usual). The products' searches run at once, each with its own backfill's REST client, all
within the one shared REST budget:

1. `find_start` finds the first trade id of the last `bootstrap_hours` with the backfill's REST
   client (same pacing, 429 handling and parsing): the newest page gives the newest id and the
   recent trade rate, an estimate of how far back the hours reach is probed (doubling until a
   trade older than the cut-off is found), then `Backfill.first_since` bisects that bracket;
2. `tape.begin_at(id)`: when the first websocket trade (the `last_match`) arrives, the tape
   declares the ids in between ONE gap, detected by "bootstrap", and the backfill fills it as
   it fills any hole: pages oldest first, `rest_rate`, 429-aware, recorded in `feed_gaps`. The
   history therefore joins the live stream with no hole, by the machinery that refills a
   downtime, and reaches the feature engine in id order before the live trades held after it;
3. `watch(tapes)` reports the loading of every product, summed, to `Warmup` (rows loaded, share,
   ETA) until all are settled.

When REST does not answer within `SEARCH_TIMEOUT`, the source starts live without history
(logged once, shown in /readyz); the first model then waits for live trades as before. With
several products, each has its own `SEARCH_TIMEOUT`: one REST does not answer for (or has no
trades of) starts live alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from blink.feeds.backfill import PAGE, Backfill
from blink.runtime.warmup import Warmup
from blink.tape import Tape

log = logging.getLogger(__name__)

SEARCH_TIMEOUT = 60.0  # seconds for finding the first id before starting without history
WATCH_SECONDS = 0.5  # how often the loading is measured (the log is paced by Warmup)


class Bootstrap:
    def __init__(self, backfills: Mapping[str, Backfill], hours: float, warmup: Warmup) -> None:
        self.backfills, self.hours, self.warmup = backfills, hours, warmup

    async def begin(self, tapes: Mapping[str, Tape]) -> bool:
        """Point each empty tape at the first id of the last `hours`; False without history."""
        self.warmup.history_begin("coinbase_rest", self.hours)
        products = list(tapes)
        found = await asyncio.gather(*(self._start_of(self.backfills[p]) for p in products))
        for product, (first, why) in zip(products, found, strict=True):
            if first is None:
                if len(products) > 1:  # (one product: Warmup says it, below)
                    log.warning("bootstrap: %s starts without history (%s)", product, why)
                continue
            tapes[product].begin_at(first)
            log.info("bootstrap: the %s tape starts at trade id %d (%g h ago); the backfill "
                     "loads it up to the first live trade", product, first, self.hours)
        if all(first is None for first, _ in found):
            self.warmup.history_done(f"{found[0][1]}: starting without history")
            return False
        return True

    async def _start_of(self, backfill: Backfill) -> tuple[int | None, str]:
        """(the first id, or None and why) for one product, within `SEARCH_TIMEOUT`."""
        try:
            async with asyncio.timeout(SEARCH_TIMEOUT):
                first = await self.find_start(backfill)
        except TimeoutError:
            return None, f"REST did not answer within {SEARCH_TIMEOUT:g} s"
        return first, "" if first is not None else "REST returned no trades"

    async def find_start(self, backfill: Backfill) -> int | None:
        """The first trade id not older than `hours` (None: REST has no trades)."""
        cutoff = datetime.now(UTC) - timedelta(hours=self.hours)
        page = backfill.page
        newest = await page(after=None, limit=PAGE)
        if not newest:
            return None
        top = newest[-1].trade_id  # the oldest of the newest page
        if newest[-1].time < cutoff:
            return min((t.trade_id for t in newest if t.time >= cutoff),
                       default=newest[0].trade_id + 1)
        span = max(1.0, (newest[0].time - newest[-1].time).total_seconds())
        step = max(PAGE, round(len(newest) / span * self.hours * 3600))
        while True:
            guess = max(1, top - step)
            probe = await page(after=guess + 1, limit=1)
            if not probe or probe[0].time < cutoff:
                lo = probe[0].trade_id + 1 if probe else guess
                return await backfill.first_since(cutoff, lo, top)
            top = probe[0].trade_id
            if guess == 1:
                return top  # the product's whole history is younger than the cut-off
            step *= 2

    async def watch(self, tapes: Mapping[str, Tape]) -> None:
        """Report the loading, summed over the products, until every bootstrap range is all
        in (or given up)."""
        booting = [t for t in tapes.values() if t.bootstrap_from is not None]
        while any(t.bootstrapping for t in booting):
            loaded, total = _loaded(booting)
            if total:
                self.warmup.history_progress(loaded, loaded / total, total)
            await asyncio.sleep(WATCH_SECONDS)
        _, total = _loaded(booting)
        if total:
            self.warmup.history_progress(total, 1.0, total)
        self.warmup.history_done()


def _loaded(tapes: list[Tape]) -> tuple[int, int]:
    """(trades loaded, trades to load) over the tapes whose bootstrap range is known."""
    loaded = total = 0
    for tape in tapes:
        start, end = tape.bootstrap_from, tape.bootstrap_to
        if start is None or end is None:
            continue
        total += end - start + 1
        loaded += end - start + 1 - sum(hi - lo + 1 for lo, hi in tape.missing(start, end))
    return loaded, total
