"""The tape writer: a bounded buffer drained in batches into `trades`, spilling to disk.

`submit` (sync, O(1)) stamps `received_at` and appends to an in-memory buffer. The `run` task
writes batches of `writer_batch` rows (or whatever arrived within `writer_flush_ms`), one
transaction each: COPY into a temporary staging table (emptied at commit), then
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` into `trades` — never a transaction per trade,
and writing a row twice is harmless. COPY costs the event loop ~4 µs a trade against ~8 for
one `unnest` statement of arrays (asyncpg checks every array element's type). Prices and
sizes travel as their exact decimal text and `received_at` as epoch seconds, cast by the
INSERT (the stored values are the same).

When PostgreSQL fails (or falls behind a burst), the writer keeps buffering up to
`writer_queue` trades, then moves the oldest trades over that bound to the spill file
(`spill.py`, fsync'd per append); on failure it retries with capped, jittered backoff
(health component "writer": logged once failing, once recovered). The spill file always holds
the oldest trades and the buffer the newest, so once the database answers the file is written
first, in order, then deleted. A spill left by a crash (or by `close`) is drained at start.

`close` stops in bounded time whatever the backlog (a container runtime allows ~10 s after
SIGTERM): `run` stops between batches, the write in flight gets `close_timeout` at most, then
the buffer is written while that budget lasts — unless the spill file already holds older
trades: those are on disk already, so the buffer is appended after them — and whatever is left
goes to the spill file. Nothing is drained from the spill file at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from itertools import islice

import asyncpg

from blink.config import Settings
from blink.runtime.health import Component
from blink.runtime.logs import RateLimited
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import backoff_delays
from blink.store.spill import Row, Spill, spill_path
from blink.trade import Trade

log = logging.getLogger(__name__)
DEEP_BATCHES = 10  # batches per statement while the queue is deep (a burst)

STAGING = "blink_trades_in"  # per connection (temporary), emptied at every commit
STAGE = ("CREATE TEMP TABLE IF NOT EXISTS blink_trades_in (p text, i bigint, t timestamptz, "
         "px text, sz text, sd text, r float8) ON COMMIT DELETE ROWS")
INSERT = (
    "INSERT INTO trades (product_id, trade_id, time, price, size, side, received_at) "
    "SELECT p, i, t, px::numeric, sz::numeric, sd, to_timestamp(r) FROM blink_trades_in "
    "ON CONFLICT DO NOTHING"
)


class Writer:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, metrics: Metrics,
                 health: Component, *, retry_base: float = 0.1, retry_cap: float = 5.0,
                 write_timeout: float = 10.0, close_timeout: float = 3.0) -> None:
        self.pool, self.metrics, self.health = pool, metrics, health
        self.batch = settings.writer_batch
        self.flush_s = settings.writer_flush_ms / 1000
        self.bound = settings.writer_queue
        self.spill = Spill(spill_path(settings.data_dir, settings.schema))
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.write_timeout, self.close_timeout = write_timeout, close_timeout
        self._buf: deque[Row] = deque()
        self._has_data = asyncio.Event()  # something was submitted
        self._full = asyncio.Event()  # a whole batch is waiting
        self._urgent = asyncio.Event()  # buffer over the bound, or closing
        self._progress = asyncio.Event()  # rows reached the database
        self._submitted = 0  # trades submitted by this process
        self._stored = 0  # of those, written to the database (in submission order)
        self._spilled = False  # the spill file holds rows not yet in the database
        self._spill_rows = 0  # rows in the spill file not drained yet
        self._uncounted = 0  # rows of a leftover spill (earlier process) not drained yet
        self._adopted = False
        self._closing = False
        self._closed = False
        self._deadline: float | None = None  # loop time by which `close` must be done
        self._inflight: asyncio.Timeout | None = None  # the running write's timeout
        self._task: asyncio.Task | None = None
        self._rl = RateLimited(log)

    @property
    def queued(self) -> int:
        """Trades not in the database yet (memory + spill file)."""
        return len(self._buf) + self._spill_rows

    # ------------------------------------------------------------------ producer side
    def submit(self, trade: Trade) -> None:
        """Queue one trade; sync, never blocks on the database, never raises."""
        try:
            row = (trade.product_id, trade.trade_id, trade.time, trade.price, trade.size,
                   trade.side, time.time())
            self._submitted += 1
            if self._closed:  # after close(): straight to disk (shutdown race only)
                self.spill.append([row])
                self._spilled = True
                return
            self._buf.append(row)
            self._has_data.set()
            n = len(self._buf)
            if n >= self.batch:
                self._full.set()
            if n > self.bound:
                self._urgent.set()
        except Exception as e:  # noqa: BLE001 - the feed must never die here
            self.metrics.writer_errors.inc()
            self._rl.warning("submit", "writer could not queue a trade: %s", e)

    async def wait_flushed(self) -> None:
        """Return once every trade submitted so far is in the database."""
        target = self._submitted
        while self._stored < target:
            self._progress.clear()
            await self._progress.wait()

    # ------------------------------------------------------------------ the drain task
    async def run(self) -> None:
        """Drain loop; run it as a task. Ends when `close` is called."""
        self._task = asyncio.current_task()
        await self._adopt_leftover()
        delays = None
        while not self._closing:
            await self._has_data.wait()
            if len(self._buf) < self.batch and not self._spilled and not self._closing:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_s):
                        await self._full.wait()
            if self._closing:
                break
            self._has_data.clear()
            self._full.clear()
            try:
                await self._flush()
                delays = None
            except Exception as e:  # noqa: BLE001 - database down or slow: retry, spill
                if self._closing:  # the shutdown deadline cut the write in flight short
                    break
                self._has_data.set()
                self.metrics.writer_errors.inc()
                self.health.failure(e, queued=self.queued, spilled=self._spill_rows)
                delays = delays or backoff_delays(self.retry_base, self.retry_cap)
                await self._pause(next(delays))

    async def close(self) -> None:
        """Stop `run`; write what is in memory while `close_timeout` lasts, spill the rest.

        Bounded whatever the backlog: the spill file is never drained here (its trades are on
        disk already; the next start writes them), and while it holds trades the buffer, newer
        than all of them, is appended to it rather than written."""
        self._deadline = asyncio.get_running_loop().time() + self.close_timeout
        self._closing = True
        for event in (self._has_data, self._full, self._urgent):
            event.set()
        if self._inflight is not None:  # the write in flight gets the shutdown budget at most
            self._inflight.reschedule(min(self._inflight.when(), self._deadline))
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
        self._task = None
        await self._adopt_leftover()
        try:
            async with asyncio.timeout_at(self._deadline):
                while self._buf and not self._spilled:
                    await self._step()
        except Exception as e:  # noqa: BLE001 - includes the deadline
            log.warning("shutdown: could not write %d trades within %.1f s (%s)",
                        len(self._buf), self.close_timeout, str(e) or type(e).__name__)
        if self._buf:
            try:
                await self._spill_buffer(keep=0)
            except OSError:
                log.exception("could not spill %d trades: they are LOST", len(self._buf))
        if self._spilled:
            log.info("shutdown: %d trades wait in %s for the next start", self._spill_rows,
                     self.spill.path)
        self._closed = True
        self._gauge()

    # ------------------------------------------------------------------ internals
    async def _adopt_leftover(self) -> None:
        if self._adopted:
            return
        self._adopted = True
        if await asyncio.to_thread(self.spill.path.exists):
            n = await asyncio.to_thread(self.spill.count)
            self._spilled, self._spill_rows, self._uncounted = True, n, n
            self._has_data.set()
            log.info("draining %d trades spilled by an earlier run from %s", n, self.spill.path)

    async def _flush(self) -> None:
        """Write the spill file, then the buffer, until both are empty or `close` began."""
        while (self._spilled or self._buf) and not self._closing:
            await self._step()

    async def _step(self) -> None:
        """Write one batch: from the spill file while it holds trades, else from the buffer."""
        if self._spilled:
            rows, end = await asyncio.to_thread(self.spill.read, self.batch)
            if rows:
                await self._write(rows)
            self.spill.offset = end
            fresh = len(rows) - min(self._uncounted, len(rows))
            self._uncounted -= len(rows) - fresh
            self._spill_rows = max(0, self._spill_rows - len(rows))
            self._credit(fresh)
            if not rows:  # drained
                await asyncio.to_thread(self.spill.remove)
                self._spilled, self._spill_rows, self._uncounted = False, 0, 0
                log.info("spill file %s drained and removed", self.spill.path)
        else:  # a queue a tenth of the way to its bound goes in fewer, bigger statements
            deep = len(self._buf) > self.bound // 10
            n = min(self.batch * (DEEP_BATCHES if deep else 1), len(self._buf))
            await self._write(list(islice(self._buf, n)))
            for _ in range(n):
                self._buf.popleft()
            self._credit(n)
        if len(self._buf) > self.bound:
            await self._spill_buffer()
        self._gauge()

    async def _write(self, rows: list[Row]) -> None:
        start = time.perf_counter()
        when = asyncio.get_running_loop().time() + self.write_timeout
        if self._deadline is not None:
            when = min(when, self._deadline)
        records = [(p, i, t, str(px), str(sz), sd, r) for p, i, t, px, sz, sd, r in rows]
        async with asyncio.timeout_at(when) as self._inflight:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(STAGE)
                    await conn.copy_records_to_table(STAGING, records=records)
                    await conn.execute(INSERT)
            finally:
                self._inflight = None
        self.metrics.db_write_seconds.observe(time.perf_counter() - start)
        self.health.success(queued=self.queued, spilled=self._spill_rows)

    async def _spill_buffer(self, keep: int | None = None) -> None:
        """Move the oldest buffered trades to the spill file, keeping the newest `keep`
        (default: the bound) in memory."""
        buf, keep = self._buf, self.bound if keep is None else keep
        rows = [buf.popleft() for _ in range(max(0, len(buf) - keep))]
        try:
            await asyncio.to_thread(self.spill.append, rows)
        except Exception:
            self._buf.extendleft(reversed(rows))
            raise
        self._spilled = True
        self.health.detail.pop("spill_error", None)
        self._spill_rows += len(rows)
        self.metrics.writer_spilled.inc(len(rows))
        self._rl.warning("spill", "spilled %d trades to %s (%d waiting on disk)",
                         len(rows), self.spill.path, self._spill_rows)

    async def _pause(self, delay: float) -> None:
        """Back off for `delay` s, spilling whenever the buffer goes over its bound."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self._closing and (left := deadline - loop.time()) > 0:
            self._urgent.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._urgent.wait()
            if len(self._buf) > self.bound:
                try:
                    await self._spill_buffer()
                except OSError as e:
                    self._spill_failed(e)  # disk full or read-only: no retry before the
                    await asyncio.sleep(max(0.0, deadline - loop.time()))  # backoff is over
            self._gauge()

    def _spill_failed(self, e: OSError) -> None:
        self.metrics.writer_errors.inc()
        self.health.failure(e, queued=self.queued, spill_error=f"{self.spill.path}: {e}")
        self._rl.warning("spill_failed", "cannot spill to %s: %s; %d trades kept in memory,"
                         " retrying with backoff", self.spill.path, e, len(self._buf))

    def _credit(self, n: int) -> None:
        if n:
            self._stored += n
            self._progress.set()

    def _gauge(self) -> None:
        self.metrics.writer_queue_depth.set(self.queued)
