"""Feature rows and anomaly events reach PostgreSQL; a database outage loses nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import asyncpg
import pytest
from aiohttp import web

from blink.detect.detector import Detector
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES
from blink.runtime import keys
from blink.runtime.broadcast import Broadcaster
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import supervise
from blink.service import resources
from blink.service.detection import detector_ctx
from blink.store import db
from blink.store.feature_rows import FeatureRowFlusher
from tests.support.models import make_served
from tests.support.trades import calm, from_arrays


@pytest.fixture(scope="module")
def served():
    served = make_served()  # threshold at the lowest training score: calm streams stay normal
    return dataclasses.replace(served, threshold=served.train_stats["score_quantiles"][0])


@pytest.fixture
async def pool(pg_dsn):
    p = await db.create_pool(pg_dsn, "public")
    yield p
    await p.close()


def detector(settings) -> Detector:
    return Detector(settings, Latest(product_id=settings.pair), Metrics(), Broadcaster())


async def test_rows_and_an_event_are_upserted(settings, pool, served):
    det = detector(settings)
    det.set_model(served)
    health = Health()
    flusher = FeatureRowFlusher(pool, det, health["features_store"])
    stream = from_arrays(*calm(4000, seed=2))  # ~1000 s: ready after READY (600) steps
    for t in stream:
        det.on_trade(t)
    buffered = len(det.rows)
    assert buffered > 100
    assert await flusher.flush() == buffered
    assert health["features_store"].ok is True
    rows = await pool.fetch("SELECT * FROM features ORDER BY time")
    assert len(rows) == buffered
    vec = json.loads(rows[-1]["vector"])
    assert sorted(vec) == sorted(FEATURE_NAMES)  # jsonb keeps no key order
    assert rows[-1]["model_version"] == "1" and rows[-1]["score_raw"] < 0
    # an event, flushed while open, then extended and flushed again: one row, updated
    why = [{"feature": "z_1", "value": 9.0, "surprise": 7.5, "text": "1-s return +9.0σ"}]
    for ts, score in [(stream[-1].ts + 1, -0.9), (stream[-1].ts + 2, -0.95)]:
        for kind, ev in det.tracker.observe(ts, score, True, served.threshold, "1",
                                            lambda: why):
            det._event(kind, ev)
        det.dirty[det.tracker.current.start] = det.tracker.current
        await flusher.flush()
    got = await pool.fetch("SELECT * FROM anomalies")
    assert len(got) == 1
    assert got[0]["points"] == 2 and got[0]["peak_score"] == -0.95
    assert (got[0]["end_time"] - got[0]["start_time"]).total_seconds() == pytest.approx(1.0)
    assert json.loads(got[0]["explanation"])[0]["feature"] == "z_1"


async def test_database_outage_requeues_and_recovers(settings, pool, served):
    det = detector(settings)
    det.set_model(served)
    health = Health()["features_store"]
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0)
    flusher = FeatureRowFlusher(dead, det, health, interval=0.01)
    task = asyncio.create_task(supervise(flusher.run, health, base=0.01, cap=0.05))
    stream = from_arrays(*calm(4000, seed=3))  # ready after ~600 s (~2400 trades)
    for t in stream[:3000]:
        det.on_trade(t)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if health.failures >= 2:
            break
    assert health.ok is False and health.failures >= 2
    assert len(det.rows) > 0  # nothing lost while the database is away
    flusher.pool = pool  # the database is back
    for t in stream[3000:]:
        det.on_trade(t)
    for _ in range(300):
        await asyncio.sleep(0.01)
        if health.ok:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await dead.close()
    assert health.ok is True
    await flusher.flush()
    stored = await pool.fetchval("SELECT count(*) FROM features")
    assert 0 < stored <= len({int(t.ts) for t in stream}) and not det.rows  # <= 1 per second
    assert stored == flusher.rows_written


async def test_detector_ctx_flushes_on_cleanup(settings, served):
    app = web.Application()
    app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS] = settings, Health(), Metrics()
    app[keys.LATEST], app[keys.EVENTS] = Latest(product_id=settings.pair), Broadcaster()
    app.cleanup_ctx.extend([resources.executor_ctx, resources.database_ctx,
                            resources.redis_ctx, detector_ctx])
    runner = web.AppRunner(app)
    await runner.setup()
    det = app[keys.DETECTOR]
    det.set_model(served)
    for t in from_arrays(*calm(3200, seed=4)):
        det.on_trade(t)
    buffered = len(det.rows)
    await runner.cleanup()  # the flusher's 1 s tick may not have come: cleanup must flush
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM features") == buffered > 0
    finally:
        await conn.close()
