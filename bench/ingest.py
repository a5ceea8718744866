"""End-to-end ingest throughput from the local fake exchange, side by side in one run.

For each burst size (`BLINK_BENCH_INGEST_TRADES`, default "100000,200000"):
- **Blink end-to-end**: the fake exchange (`bench.feed`, its own process) sends the burst as
  fast as the socket takes it to a warm Blink pipeline in this process: websocket, parse,
  tape, writer (batched into PostgreSQL) and the detector (features + compiled-forest score
  on every trade, with a trained model, feature rows stored). Timed from the first burst
  trade's arrival to the last one scored ("tape + scoring") and to every trade committed
  ("stored + scored");
- **tape only**: the same burst into a bare `CoinbaseSource` + `Tape` (no listeners): the
  feed's own ceiling;
- **raw asyncpg COPY** of the very rows Blink stored, into a twin table (the database's
  ceiling for the same data).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import aiohttp

from bench.pipeline import FeedServer, pipeline, train_model
from bench.report import table, write_section
from bench.service import scratch_database
from blink import config
from blink.feeds.coinbase import CoinbaseSource
from blink.runtime import keys
from blink.runtime.batching import StepBatch
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.tape import Tape

COLUMNS = ["product_id", "trade_id", "time", "price", "size", "side", "received_at"]


class Clock:
    """Arrival of the first trade above `after` (wall and CPU time), and the moment trade
    `last` went past (subscribe `passed` after the detector: the moment it was scored)."""

    def __init__(self, after: int, last: int) -> None:
        self.after, self.last = after, last
        self.first_at = self.last_at = self.cpu_at = 0.0
        self.done = asyncio.Event()

    def arrived(self, trade) -> None:
        if not self.first_at and trade.trade_id > self.after:
            self.first_at, self.cpu_at = time.perf_counter(), time.process_time()

    def passed(self, trades) -> None:
        if trades[-1].trade_id == self.last:
            self.last_at = time.perf_counter()
            self.done.set()


async def blink_burst(dsn: str, n: int, served) -> dict:
    server = FeedServer()
    try:
        async with pipeline(dsn, server, served) as app:
            tape, writer = app[keys.TAPE], app[keys.WRITER]
            after = server.info["last"]
            clock = Clock(after, after + n)
            tape.subscribe(clock.arrived)
            tape.subscribe_ordered(StepBatch(clock.passed).add)  # after the detector's
            sent = asyncio.create_task(server.command("burst", n))
            await clock.done.wait()
            backlog = writer.queued
            await writer.wait_flushed()
            stored_at, cpu = time.perf_counter(), time.process_time() - clock.cpu_at
            sent = await sent
            spilled = app[keys.METRICS].registry.get_sample_value(
                "blink_writer_spilled_total") or 0
            pool = app[keys.POOL]
            rows = await pool.fetch("SELECT product_id, trade_id, time, price, size, side,"
                                    " received_at FROM trades WHERE trade_id > $1"
                                    " ORDER BY trade_id", after)
            copy = await raw_copy(pool, rows)
    finally:
        server.close()
    assert len(rows) == n, f"stored {len(rows)} of {n}"
    return {"scored": n / (clock.last_at - clock.first_at),
            "stored": n / (stored_at - clock.first_at), "copy": copy,
            "sent": n / sent["seconds"], "spilled": spilled, "cpu_us": cpu / n * 1e6,
            "backlog": backlog}


async def raw_copy(pool, rows) -> float:
    """Rows/s of `copy_records_to_table` of `rows` into an empty twin of `trades`."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE trades_copy (LIKE trades INCLUDING ALL)")
        t0 = time.perf_counter()
        await conn.copy_records_to_table("trades_copy", records=[tuple(r) for r in rows],
                                         columns=COLUMNS)
        return len(rows) / (time.perf_counter() - t0)


async def tape_only(n: int) -> float:
    server = FeedServer(history=10)
    settings = config.load(env={}, flags={"coinbase_ws_url": server.ws_url,
                                          "data_dir": "/tmp/blink-bench"})
    metrics = Metrics()
    after = server.info["last"]
    tape = Tape(settings.pair, metrics, "coinbase")
    clock = Clock(after, after + n)
    tape.subscribe(clock.arrived)
    tape.subscribe(lambda t: clock.passed([t]))
    try:
        async with aiohttp.ClientSession() as session:
            source = CoinbaseSource(settings, metrics, Health(), session)
            task = asyncio.create_task(source._connect_loop(tape))  # no backfill needed
            while tape.newest is None:  # noqa: ASYNC110 - polls the tape, no event
                await asyncio.sleep(0.01)
            await server.command("burst", n)
            await clock.done.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        server.close()
    return n / (clock.last_at - clock.first_at)


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BLINK_BENCH_INGEST_TRADES",
                                            "100000,200000").split(",")]
    served = train_model(config.load(env={}, flags={"data_dir": "/tmp/blink-bench"}))
    rows = []
    for n in sizes:
        with scratch_database() as dsn:
            r = asyncio.run(blink_burst(dsn, n, served))
        bare = asyncio.run(tape_only(n))
        print(n, r, bare, flush=True)
        rows.append((f"{n:,}", f"**{r['stored']:,.0f}**", f"{r['scored']:,.0f}",
                     f"{bare:,.0f}", f"{r['copy']:,.0f}", f"{r['stored'] / r['copy']:.2f}",
                     f"{r['cpu_us']:.0f} µs", f"{r['spilled']:,.0f}"))
    body = "\n\n".join([
        "## Ingest throughput\n\nA burst of generated BTC-USD matches from the fake exchange "
        "(`bench/feed.py`, its own process, raw uncompressed frames) into a warm Blink "
        "(`bench/pipeline.py`: Blink's own contexts; model: IsolationForest 100 trees × 256 "
        "samples). trades/s, one run; *stored + scored* is the target figure (≥ 30,000/s): "
        "websocket → parse → tape → writer → PostgreSQL committed, and features + score on "
        "every trade. *tape + scoring*: until the last trade was scored. *tape only*: a bare "
        "source + tape, no listeners (also shows the fake server is not the bottleneck). "
        "*raw COPY*: `copy_records_to_table` of the same rows into an empty twin table, same "
        "run. *CPU/trade*: the Blink process's CPU time over the burst, per trade (less "
        "sensitive to a busy machine than trades/s). *spilled*: trades the writer moved to "
        "its spill file (over `writer_queue`).",
        table(rows, ("burst", "stored + scored", "tape + scoring", "tape only",
                     "raw asyncpg COPY", "stored / COPY", "CPU/trade", "spilled")),
    ])
    write_section("ingest", body)
    print(body)


if __name__ == "__main__":
    main()
