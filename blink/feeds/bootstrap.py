"""First start on an empty tape: load `bootstrap_hours` of history from REST before scoring.

The Coinbase source calls `Bootstrap.begin(tape)` before it first connects when the tape is
empty (never on a restart with a stored tape: that resumes and backfills as usual):

1. `find_start` finds the first trade id of the last `bootstrap_hours` with the backfill's REST
   client (same pacing, 429 handling and parsing): the newest page gives the newest id and the
   recent trade rate, an estimate of how far back the hours reach is probed (doubling until a
   trade older than the cut-off is found), then `Backfill.first_since` bisects that bracket;
2. `tape.begin_at(id)`: when the first websocket trade (the `last_match`) arrives, the tape
   declares the ids in between ONE gap, detected by "bootstrap", and the backfill fills it as
   it fills any hole: pages oldest first, `rest_rate`, 429-aware, recorded in `feed_gaps`. The
   history therefore joins the live stream with no hole, by the machinery that refills a
   downtime, and reaches the feature engine in id order before the live trades held after it;
3. `watch(tape)` reports the loading to `Warmup` (rows loaded, share, ETA) until it is settled.

When REST does not answer within `SEARCH_TIMEOUT`, the source starts live without history
(logged once, shown in /readyz); the first model then waits for live trades as before.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from blink.feeds.backfill import PAGE, Backfill
from blink.runtime.warmup import Warmup
from blink.tape import Tape

log = logging.getLogger(__name__)

SEARCH_TIMEOUT = 60.0  # seconds for finding the first id before starting without history
WATCH_SECONDS = 0.5  # how often the loading is measured (the log is paced by Warmup)


class Bootstrap:
    def __init__(self, backfill: Backfill, hours: float, warmup: Warmup) -> None:
        self.backfill, self.hours, self.warmup = backfill, hours, warmup

    async def begin(self, tape: Tape) -> bool:
        """Point the empty tape at the first id of the last `hours`; False without history."""
        self.warmup.history_begin("coinbase_rest", self.hours)
        try:
            first = await asyncio.wait_for(self.find_start(), SEARCH_TIMEOUT)
        except TimeoutError:
            first, why = None, f"REST did not answer within {SEARCH_TIMEOUT:g} s"
        else:
            why = "REST returned no trades"
        if first is None:
            self.warmup.history_done(f"{why}: starting without history")
            return False
        tape.begin_at(first)
        log.info("bootstrap: the tape starts at trade id %d (%g h ago); the backfill loads it"
                 " up to the first live trade", first, self.hours)
        return True

    async def find_start(self) -> int | None:
        """The first trade id not older than `hours` (None: REST has no trades)."""
        cutoff = datetime.now(UTC) - timedelta(hours=self.hours)
        page = self.backfill.page
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
                return await self.backfill.first_since(cutoff, lo, top)
            top = probe[0].trade_id
            if guess == 1:
                return top  # the product's whole history is younger than the cut-off
            step *= 2

    async def watch(self, tape: Tape) -> None:
        """Report the loading until the bootstrap range is all in (or given up)."""
        start = tape.bootstrap_from
        while tape.bootstrapping:
            end = tape.bootstrap_to
            if start is not None and end is not None:
                total = end - start + 1
                left = sum(hi - lo + 1 for lo, hi in tape.missing(start, end))
                self.warmup.history_progress(total - left, (total - left) / total, total)
            await asyncio.sleep(WATCH_SECONDS)
        end = tape.bootstrap_to
        if start is not None and end is not None:
            self.warmup.history_progress(end - start + 1, 1.0, end - start + 1)
        self.warmup.history_done()
