"""Blink's real ingest pipeline in this process, fed by `bench.feed` in another, warm and scoring.

`FeedServer(history)` runs the fake exchange in its own process. `pipeline(dsn, server)` seeds
the scratch database with one trade just below the server's history (a Blink restarting after
a short downtime), starts Blink's own cleanup contexts — executor, database, HTTP client, the
detector (features + scoring + feature-row store), a trained model, ingest (Coinbase source →
tape → writer + detector) — and yields the app once the backfilled history has warmed the
features and the first trade was scored. The model is an IsolationForest with Blink's default
hyperparameters, fitted on features of the same kind of generated trades.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from aiohttp import web

from bench.service import free_port
from blink import config
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES, batch
from blink.model import trainer
from blink.model.served import ServedModel
from blink.runtime import keys
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
        self.port = free_port()
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
        app[keys.DETECTOR].set_model(served)
        yield

    app.cleanup_ctx.extend([resources.executor_ctx, resources.database_ctx,
                            resources.redis_ctx, resources.http_ctx, scoring.detector_ctx,
                            model_ctx, ingest.ingest_ctx])
    return app


async def seed(dsn: str, server: FeedServer) -> None:
    """One stored trade just below the server's history: the restart resumes from it."""
    pool = await db.create_pool(dsn)
    try:
        await pool.execute(
            "INSERT INTO trades (product_id, trade_id, time, price, size, side)"
            " VALUES ('BTC-USD', $1, $2, $3, $4, 'buy')", server.info["first"] - 1,
            datetime.fromisoformat(server.info["time"]) - timedelta(seconds=1),
            Decimal("84000.00"), Decimal("0.001"))
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def pipeline(dsn: str, server: FeedServer, served: ServedModel, **flags):
    """Yields the running app, warm: history backfilled, stored, features ready, scored."""
    await seed(dsn, server)
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(dsn, server, tmp, **flags)
        runner = web.AppRunner(app_for(settings, served))
        await runner.setup()
        try:
            app = runner.app
            latest, tape, last = app[keys.LATEST], app[keys.TAPE], server.info["last"]
            async with asyncio.timeout(120):
                while latest.score_raw is None or tape.contiguous_id < last:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await app[keys.WRITER].wait_flushed()
            yield app
        finally:
            await runner.cleanup()
