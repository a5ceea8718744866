"""Blink's real ingest pipeline in this process, fed by `bench.feed` in another, warm and scoring.

`FeedServer(history, products)` runs the fake exchange in its own process. `pipeline(dsn,
server, served)` seeds the scratch database with one trade of every product just below the
server's history (a Blink restarting after a short downtime), starts Blink's own cleanup
contexts — executor, database, HTTP client, the detectors (one per product of the server:
features + scoring + feature-row store), each its own copy of the trained model, ingest
(Coinbase source → one tape per product → writer + detectors) — and yields the app once every
product's backfilled history has warmed its features and its first trade was scored. The
model is an IsolationForest fitted by Blink's trainer on features of the same kind of
generated trades (fit once; every product gets a copy, as N registered models would be).

`Stamps` stamps `time.perf_counter()` per (product, trade id) from wrappers installed on the
running app (nothing is added to Blink's hot path): *received* when `CoinbaseSource.frame` is
handed the frame holding the trade (before parsing), *taped* when a tape listener sees it,
*scored* when a listener subscribed after the product's detector sees it (its score and
`Latest` are updated by then), *written* when the writer's INSERT holding it returned; and
the process's garbage-collection pauses meanwhile (`gc.callbacks`: they explain the outliers).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import gc
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from aiohttp import web

from bench.service import free_port
from blink import config
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES, batch
from blink.feeds.coinbase import CoinbaseSource
from blink.model import trainer
from blink.model.served import ServedModel
from blink.runtime import keys
from blink.runtime.batching import StepBatch
from blink.runtime.broadcast import Broadcaster
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.service import detection as scoring
from blink.service import ingest, resources
from blink.store import db
from tests.fakes.trades import TradeGen

ROOT = Path(__file__).resolve().parents[1]
HISTORY = 3_000  # ~7 min of trades at the live rate: more than the 300 s readiness window


class FeedServer:
    """`python -m bench.feed` in its own process; `await command("burst", n)`."""

    def __init__(self, history: int = HISTORY, products: tuple[str, ...] = ("BTC-USD",)) -> None:
        self.port, self.products = free_port(), products
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.feed", str(self.port), str(history),
             ",".join(products)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def command(self, verb: str, n: int | str) -> dict:
        self.proc.stdin.write(f"{verb} {n}\n")
        self.proc.stdin.flush()
        return json.loads(await asyncio.to_thread(self.proc.stdout.readline))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def train_model(settings, n: int = 30_000, seed: int = 2) -> ServedModel:
    """A model fitted by the trainer itself, on generated trades like the feed's."""
    trades = TradeGen(seed, rate=7.0, start_time=datetime(2026, 1, 1, tzinfo=UTC)).trades(n)
    ts = np.array([t.ts for t in trades])
    X = batch(ts, [float(t.price) for t in trades],
              [float(t.size) for t in trades], [t.taker_buy for t in trades])
    r = trainer.fit(X, dataclasses.replace(settings, train_min_rows=1000), FEATURE_NAMES, ts=ts)
    return ServedModel(r.forest, FEATURE_NAMES, r.threshold, "bench v1", "1", "bench",
                       r.train_stats)


def make_settings(dsn: str, server: FeedServer, data_dir: str, **flags):
    return config.load(env={}, flags={
        "pg_dsn": dsn, "data_dir": data_dir, "coinbase_ws_url": server.ws_url,
        "coinbase_rest_url": f"http://127.0.0.1:{server.port}", "rest_rate": 8, **flags})


def app_for(settings, served: ServedModel) -> web.Application:
    app = web.Application()
    app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS] = settings, Health(), Metrics()
    app[keys.LATEST] = Latest(product_id=settings.pair, source=settings.source)
    app[keys.EVENTS] = Broadcaster()

    async def model_ctx(app: web.Application):
        for detector in app[keys.DETECTORS].values():  # each product its own model
            detector.set_model(copy.deepcopy(served))
        yield

    app.cleanup_ctx.extend([resources.executor_ctx, resources.database_ctx,
                            resources.redis_ctx, resources.http_ctx, scoring.detector_ctx,
                            model_ctx, ingest.ingest_ctx])
    return app


async def seed(dsn: str, server: FeedServer) -> None:
    """One stored trade of every product just below the server's history (the fake starts
    every product at the same id): the restart resumes from it."""
    pool = await db.create_pool(dsn)
    try:
        await pool.executemany(
            "INSERT INTO trades (product_id, trade_id, time, price, size, side)"
            " VALUES ($1, $2, $3, $4, $5, 'buy')",
            [(p, server.info["first"] - 1,
              datetime.fromisoformat(server.info["time"]) - timedelta(seconds=1),
              Decimal("84000.00"), Decimal("0.001")) for p in server.products])
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def pipeline(dsn: str, server: FeedServer, served: ServedModel, **flags):
    """Yields the running app, warm: history backfilled, stored, features ready, scored."""
    await seed(dsn, server)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(dsn, server, tmp, pairs=",".join(server.products), **flags)
        runner = web.AppRunner(app_for(settings, served))
        await runner.setup()
        try:
            app = runner.app
            last = server.info["last"]

            def warm() -> bool:
                return all(d.latest.score_raw is not None for d in app[keys.DETECTORS].values()) \
                    and all(t.contiguous_id >= last for t in app[keys.TAPES].values())

            async with asyncio.timeout(300):
                while not warm():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await app[keys.WRITER].wait_flushed()
            yield app
        finally:
            await runner.cleanup()


class Stamps:
    """perf_counter() per (product, trade id): received, taped, scored, written (see above)."""

    def __init__(self) -> None:
        self.now = 0.0  # when the frame being parsed was received
        self.received: dict[tuple, float] = {}
        self.taped: dict[tuple, float] = {}
        self.scored: dict[tuple, float] = {}
        self.written: dict[tuple, float] = {}
        self.gc_ms: list[float] = []  # the process's garbage-collection pauses meanwhile
        self._undo: list = []

    def install(self, app: web.Application) -> None:
        real_frame, writer = CoinbaseSource.frame, app[keys.WRITER]
        real_write = writer._write

        def frame(source, data, tapes):
            self.now = time.perf_counter()
            real_frame(source, data, tapes)

        def taped(trade) -> None:
            key = (trade.product_id, trade.trade_id)
            self.received[key], self.taped[key] = self.now, time.perf_counter()

        def scorer(latest):
            def scored(trades) -> None:  # stamped only if the detector scored the batch
                now = time.perf_counter()
                if latest.trade_id == trades[-1].trade_id and latest.not_ready is None:
                    for t in trades:
                        self.scored[(t.product_id, t.trade_id)] = now
            return scored

        async def write(rows):
            await real_write(rows)
            now = time.perf_counter()
            for row in rows:
                self.written.setdefault((row[0], row[1]), now)

        def collected(phase, info) -> None:
            if phase == "start":
                self._gc_start = time.perf_counter()
            else:
                self.gc_ms.append((time.perf_counter() - self._gc_start) * 1000)

        CoinbaseSource.frame = frame
        writer._write = write
        gc.callbacks.append(collected)
        self._undo = [lambda: setattr(CoinbaseSource, "frame", real_frame),
                      lambda: gc.callbacks.remove(collected)]
        for product, tape in app[keys.TAPES].items():
            tape.subscribe(taped)
            if keys.DETECTORS in app:  # after the detector's batch: its trades are scored
                tape.subscribe_ordered(StepBatch(scorer(app[keys.DETECTORS][product].latest)).add)

    def restore(self) -> None:
        for undo in self._undo:
            undo()

    def ms(self, later: dict[tuple, float]) -> list[float]:
        return [(later[k] - t) * 1000 for k, t in self.received.items() if k in later]


async def taken(app, last: dict[str, int], bound: float = 60.0) -> None:
    """Until every product's tape has taken its trades up to `last` (its id)."""
    async with asyncio.timeout(bound):
        while any((app[keys.TAPES][p].contiguous_id or 0) < i  # noqa: ASYNC110 - polled
                  for p, i in last.items()):
            await asyncio.sleep(0.001)


async def stamped(dsn: str, server: FeedServer, served, command: str, arg
                  ) -> tuple[Stamps, dict]:
    """One run: a warm pipeline on `dsn` fed by `server`, the stamps installed while the
    server plays `command arg` and the writer flushes; -> (stamps, what the server sent)."""
    stamps = Stamps()
    try:
        async with pipeline(dsn, server, served) as app:
            stamps.install(app)
            try:
                sent = await server.command(command, arg)
                await taken(app, sent["last"])  # before restore(): a sweep parsed after it
                await app[keys.WRITER].wait_flushed()  # would be dated by the last frame
            finally:
                stamps.restore()
    finally:
        server.close()
    return stamps, sent
