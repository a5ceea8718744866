"""Replay a file into the tape at `settings.speed` x real time: any input `blink.formats.files`
reads (ticks, OHLCV bars or a series by their columns; CSV, .csv.gz, Parquet or `-`), its format
guessed and logged in one line when the source is made.

Event time is paced against the wall clock from the first trade: a trade at event offset `d`
is added at wall offset `d / speed` (speed 0: as fast as possible). A silence longer than
`MAX_PAUSE` wall seconds (e.g. the months between the separate days of a bar file) is cut to
`MAX_PAUSE` and logged. The file's first `settings.bootstrap_hours` of event time are played
at once (the history a first model can train on as soon as the file holds enough of it); the
pacing starts after them. The file is parsed in a worker thread, `CHUNK` rows at a time, so the
event loop stays free; the loop also yields after every chunk.

Products: a file with a product column (Blink's tick format: `product_id`, e.g. recorded with
several products) is routed by it, each trade to its product's tape (`run({product: tape})`);
rows of products not in `settings.pairs` are skipped, counted and logged once at the end. Any
other file (bars, series, Tardis or generic ticks) is the first product's: its trades carry
`settings.pair`. When the file ends the source idles (a supervisor must not replay it
again); a bad row stops the replay with one error naming the file, line and problem.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Mapping

from blink.config import Settings
from blink.formats import files
from blink.runtime.warmup import Warmup
from blink.tape import Tape, by_product

log = logging.getLogger(__name__)


class ReplaySource:
    name = "replay"
    CHUNK = 1000  # rows parsed per trip to the worker thread
    MAX_PAUSE = 5.0  # longest wall pause, seconds

    def __init__(self, settings: Settings, warmup: Warmup | None = None) -> None:
        self.warmup = warmup
        self.prefill = settings.bootstrap_hours * 3600  # event seconds played at once
        self.path = settings.replay_file
        self.speed = settings.speed
        self.product, self.products = settings.pair, settings.pairs
        self.reading = files.describe(self.path)  # fails fast (FileFormatError) on a bad file
        self.routed = files.sniff(self.path).flavour == "blink"  # a product_id column
        log.info("replay %s%s", self.reading, ", routed by product_id" if self.routed else "")
        self.added = 0  # trades handed to the tapes
        self.skipped: Counter[str] = Counter()  # trades of products not configured
        self.done = False
        self.finished = asyncio.Event()  # set once the file is played (or stopped by an error)
        self.error: str | None = None

    async def run(self, tapes: Mapping[str, Tape] | Tape) -> None:
        if not self.done:
            try:
                await self._play(by_product(tapes, self.product))
                log.info("replay of %s finished: %d trades", self.path, self.added)
                if self.skipped:
                    log.warning("replay: skipped the trades of products not in PAIRS (%s): %s",
                                ",".join(self.products),
                                ", ".join(f"{p} {n}" for p, n in sorted(self.skipped.items())))
                self._history(None)
            except files.FileFormatError as e:
                self.error = str(e)
                log.error("replay stopped: %s", e)
            self.done = True
            self.finished.set()
        await asyncio.Event().wait()  # idle until cancelled

    async def _play(self, tapes: dict) -> None:
        loop = asyncio.get_running_loop()
        rows = files.read(self.path, None if self.routed else self.product)
        first_tape = tapes[self.product]
        skip = self.added  # a restarted run resumes where it stopped
        wall0 = event0 = None
        first = None  # event time of the file's first trade
        shift = 0.0  # event seconds cut out of long silences
        error = None
        while not error:
            chunk, error = await loop.run_in_executor(None, _take, rows, self.CHUNK)
            if not chunk and not error:
                return
            for row in chunk:
                for trade in row.trades:
                    tape = tapes.get(trade.product_id) if self.routed else first_tape
                    if tape is None:
                        self.skipped[trade.product_id] += 1
                        continue
                    ts = trade.ts
                    if first is None:
                        first = ts
                        if self.warmup is not None and self.warmup.history is None \
                                and self.prefill > 0:
                            self.warmup.history_begin("replay", self.prefill / 3600)
                    if skip:
                        skip -= 1
                        continue
                    if ts - first < self.prefill:  # the history: at once
                        self._history(ts - first)
                    else:
                        self._history(None)
                    if self.speed > 0 and ts - first >= self.prefill:
                        if wall0 is None:
                            wall0, event0 = loop.time(), ts
                        wait = wall0 + (ts - event0 - shift) / self.speed - loop.time()
                        if wait > self.MAX_PAUSE:
                            log.info("replay: %.0f s without trades before %s, cut to %.0f s",
                                     wait * self.speed, trade.time.isoformat(), self.MAX_PAUSE)
                            shift += (wait - self.MAX_PAUSE) * self.speed
                            wait = self.MAX_PAUSE
                        if wait > 0:
                            await asyncio.sleep(wait)
                    tape.add(trade, via="replay")
                    self.added += 1
            await asyncio.sleep(0)
        raise error

    def _history(self, offset: float | None) -> None:
        """Report the at-once part: `offset` event seconds into it, None once past it."""
        w = self.warmup
        if w is None or not w.loading:
            return
        if offset is None:
            w.history_done()
        elif self.added % 1000 == 0:
            w.history_progress(self.added, offset / self.prefill)


def _take(rows, n: int) -> tuple[list, files.FileFormatError | None]:
    """Up to n rows, and the error that stopped the file early (the rows before it count)."""
    out: list = []
    try:
        out.extend(itertools.islice(rows, n))
    except files.FileFormatError as e:
        return out, e
    return out, None
