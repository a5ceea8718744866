"""Several products on one websocket: 10 products at 10x the live rate each, beside one.

The fake exchange (`bench/feed.py`, its own process) paces every product's trades at `SPEED`
times the live rate (~7.3 trades/s each, sweeps of several fills at once included) over ONE
websocket into Blink's real ingest pipeline in this process (Coinbase source -> one tape per
product -> one writer -> PostgreSQL; `tests/fakes/rig.py`'s ingest app, no detector: scoring
per product belongs to the detection side and `bench latency`). Side by side in one run, each
on a fresh database: ONE product at the same per-product rate. The clock starts when
`CoinbaseSource.frame` gets the frame. `BLINK_BENCH_PRODUCTS_SECONDS` (default 30) sets the
length of each run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

from aiohttp import web

from bench.pipeline import FeedServer
from bench.report import pct, table, write_section
from bench.service import scratch_database
from blink import config
from blink.feeds.coinbase import CoinbaseSource
from blink.runtime import keys
from tests.fakes.rig import blink_app

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD", "DOGE-USD", "ADA-USD", "AVAX-USD",
            "LINK-USD", "LTC-USD", "DOT-USD")
SPEED = 10.0
RATE = 7.3  # trades/s of one product at the live rate (bench/feed.py)


class Stamps:
    """perf_counter() of each (product, trade id): frame received, taped, committed."""

    def __init__(self) -> None:
        self.now = 0.0
        self.received: dict[tuple, float] = {}
        self.taped: dict[tuple, float] = {}
        self.written: dict[tuple, float] = {}

    def install(self, app: web.Application) -> None:
        real_frame, writer = CoinbaseSource.frame, app[keys.WRITER]
        real_write = writer._write

        def frame(source, data, tapes):
            self.now = time.perf_counter()
            real_frame(source, data, tapes)

        def taped(trade) -> None:
            key = (trade.product_id, trade.trade_id)
            self.received[key], self.taped[key] = self.now, time.perf_counter()

        async def write(rows):
            await real_write(rows)
            now = time.perf_counter()
            for row in rows:
                self.written.setdefault((row[0], row[1]), now)

        CoinbaseSource.frame = frame
        writer._write = write
        self.restore = lambda: setattr(CoinbaseSource, "frame", real_frame)
        for tape in app[keys.TAPES].values():
            tape.subscribe(taped)

    def ms(self, later: dict[tuple, float]) -> list[float]:
        return [(later[k] - t) * 1000 for k, t in self.received.items() if k in later]


async def measure(dsn: str, products: tuple[str, ...], seconds: float) -> tuple[Stamps, dict]:
    server, stamps = FeedServer(history=10, products=products), Stamps()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = config.load(env={}, flags={
                "pg_dsn": dsn, "data_dir": tmp, "coinbase_ws_url": server.ws_url,
                "coinbase_rest_url": f"http://127.0.0.1:{server.port}", "rest_rate": 8,
                "bootstrap_hours": 0, "pairs": ",".join(products)})
            runner = web.AppRunner(blink_app(settings))
            await runner.setup()
            try:
                app = runner.app
                async with asyncio.timeout(60):
                    while not all(t.newest for t in app[keys.TAPES].values()):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                stamps.install(app)
                try:
                    sent = await server.command("products", f"{int(seconds * RATE)} {SPEED}")
                    await app[keys.WRITER].wait_flushed()
                finally:
                    stamps.restore()
            finally:
                await runner.cleanup()
    finally:
        server.close()
    return stamps, sent


def main() -> None:
    seconds = float(os.environ.get("BLINK_BENCH_PRODUCTS_SECONDS", "30"))
    runs = {}
    for products in (PRODUCTS[:1], PRODUCTS):
        with scratch_database() as dsn:
            runs[len(products)] = asyncio.run(measure(dsn, products, seconds))
    rows, p99 = [], {}
    for n, (stamps, sent) in runs.items():
        taped, written = stamps.ms(stamps.taped), stamps.ms(stamps.written)
        assert len(taped) == len(written) == sent["sent"], (len(taped), len(written), sent)
        p99[n] = (pct(taped, 0.99), pct(written, 0.99))
        for what, values in (("frame → tape", taped), ("frame → committed", written)):
            rows.append((f"{n} product{'s' if n > 1 else ''}, {sent['sent'] / sent['seconds']:.0f}"
                         f" trades/s", what, f"{pct(values, 0.5):.2f}", f"{pct(values, 0.99):.2f}",
                         f"{max(values):.2f}"))
    many, one = p99[len(PRODUCTS)], p99[1]
    body = "\n\n".join([
        "## Several products on one websocket\n\n"
        f"{len(PRODUCTS)} products at {SPEED:g}× the live rate each (~{RATE * SPEED:.0f} "
        "trades/s per product) over one websocket from the fake exchange (`bench/feed.py`, its "
        "own process) into Blink's ingest pipeline (one tape per product, one writer, "
        f"PostgreSQL), beside one product at the same rate, {seconds:g} s each. Clock starts "
        "when `CoinbaseSource.frame` gets the frame; *committed* includes the writer's "
        "`writer_flush_ms` wait by design. Scoring per product is not in this path (see "
        "*Latency at the live rate* for frame → score).",
        table(rows, ("run", "what", "p50 ms", "p99 ms", "max ms")),
        f"p99 ratio, {len(PRODUCTS)} products / 1: frame → tape {many[0] / one[0]:.2f}×, "
        f"frame → committed {many[1] / one[1]:.2f}×.",
    ])
    write_section("multifeed", body)
    print(body)


if __name__ == "__main__":
    main()
