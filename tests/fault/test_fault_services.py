"""Side services failing under a running Blink app (the real `create_app`):

- a Redis of the test's own (`redis-server` on its own port) killed and restarted: scoring and
  the API go on, the `latest_features` mirror resumes by itself, each failing component logs
  once (not once per retry);
- the MLflow store unreachable during retrains: the current model keeps serving, every
  scheduled retrain is attempted and fails visibly (/readyz `training`,
  `blink_training_runs_total{outcome="error"}`), and the next one after the store is back
  promotes.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from blink.features import FEATURE_NAMES
from blink.model import registry
from blink.runtime import keys
from blink.service import retrain, watcher
from blink.service.app import create_app
from tests.support.faultkit import RedisInstance, free_port
from tests.support.models import make_served
from tests.support.trades import walk_rows
from tests.support.training import insert_trades
from tests.support.waiting import wait_until


@pytest.fixture
def own_redis():
    r = RedisInstance()
    r.start()
    yield r
    r.kill()


def messages(caplog, text: str) -> int:
    return sum(text in rec.getMessage() for rec in caplog.records)


async def test_after_a_redis_restart_no_call_fails_on_a_dead_pooled_connection(own_redis):
    # the pool's idle connections die with the server; each used once after it came back had
    # failed its call (the relay logged "relay failing" again right after "relay recovered")
    from blink.outputs.mirror import connect

    client = connect(own_redis.url)
    try:
        async with client.pipeline(transaction=False) as a, client.pipeline(
                transaction=False) as b:  # two connections in the pool
            a.set("k", "1")
            b.get("k")
            assert await a.execute() == [True] and await b.execute() == [b"1"]
        own_redis.kill()
        own_redis.start()  # empty: no persistence
        for i in range(3):  # every pooled connection is used once more
            assert await client.get("k") == (None if i == 0 else b"2")
            async with client.pipeline(transaction=False) as pipe:
                pipe.set("k", "2")
                assert await pipe.execute() == [True]
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_redis_outage_scoring_goes_on_and_the_mirror_resumes(own_redis, pg_dsn,
                                                                   make_settings,
                                                                   aiohttp_client, caplog):
    caplog.set_level(logging.INFO, logger="blink.runtime.health")
    settings = make_settings(pg_dsn=pg_dsn, role="ingest,api", source="synthetic", speed=20,
                             redis_url=own_redis.url, redis_prefix="t:",
                             min_history_seconds=20, min_trades=10)
    app = create_app(settings)
    app.cleanup_ctx.remove(watcher.watcher_ctx)  # the model comes from the test, not MLflow
    app[keys.MODEL] = registry.ModelSlot()
    client = await aiohttp_client(app)
    watcher.swap(app, make_served(), "blink_iforest@production v1")
    check = aioredis.from_url(own_redis.url)
    health = app[keys.HEALTH]

    async def mirrored() -> bool:
        try:
            return bool(await check.hget("t:latest_features", "as_of"))
        except (OSError, RedisError):  # the check's own connection died with the server
            return False

    async def answers() -> dict:
        r = await client.get("/score")
        body = await r.json()
        assert r.status == 200 and body["ready"] is True, body
        r = await client.post("/score", json={"features": body["features"]})
        scored = await r.json()
        assert r.status == 200 and scored["model"] == "blink_iforest@production v1", scored
        return body

    try:
        await wait_until(lambda: app[keys.LATEST].score_raw is not None, "scoring", limit=30)
        await wait_until(mirrored, "latest_features written", limit=30, step=0.1)
        await answers()
        own_redis.kill()
        await wait_until(lambda: health["redis"].ok is False, "redis failure seen")
        before = (await answers())["as_of"]
        await asyncio.sleep(3)  # several failed retries
        after = await answers()  # scoring went on with the features moving
        assert after["as_of"] > before
        ready = await (await client.get("/readyz")).json()
        assert ready["ready"] is True and ready["components"]["redis"]["ok"] is False
        errors = app[keys.METRICS].registry.get_sample_value("blink_redis_errors_total")
        assert errors >= 3  # retried...

        own_redis.start()  # same port, empty (no persistence): the hash must come back
        await wait_until(mirrored, "latest_features written again", limit=30, step=0.1)
        await wait_until(lambda: health["redis"].ok is True, "redis recovered")
    finally:
        await check.aclose()
    # ...but logged once per failing component (the mirror's "redis", the relay's "relay")
    assert messages(caplog, "redis failing") == 1 and messages(caplog, "redis recovered") == 1
    assert messages(caplog, "relay failing") <= 1


@pytest.mark.slow
async def test_mlflow_unreachable_during_retrains(ml_settings, pg_dsn, redis_url,
                                                  aiohttp_client, monkeypatch):
    """The store goes away by pointing the running app's settings at a closed port (the same
    path as a tracking server that went down: connection refused, in the training worker and
    in the watcher). The frozen settings are changed in place, as a running app's must be."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # inherited by the worker
    monkeypatch.setattr(retrain, "TICK_SECONDS", 0.2)
    rows = walk_rows(2500)
    await insert_trades(pg_dsn, rows)
    url, prefix = redis_url
    settings = ml_settings(pg_dsn=pg_dsn, role="api,train", redis_url=url, redis_prefix=prefix,
                           train_hours=1.0, retrain_seconds=600)
    app = create_app(settings)
    client = await aiohttp_client(app)
    slot, training = app[keys.MODEL], app[keys.HEALTH]["training"]
    v1 = f"{settings.model_name}@production v1"
    await wait_until(lambda: slot.label == v1, "first model trained and served", limit=90,
                     step=0.1)

    def errors() -> float:
        return app[keys.METRICS].registry.get_sample_value(
            "blink_training_runs_total", {"outcome": "error", "product": settings.pair}) or 0

    async def still_serving() -> None:
        r = await client.post("/score", json={"features": {n: 0.0 for n in FEATURE_NAMES}})
        assert r.status == 200 and (await r.json())["model"] == v1

    down = f"http://127.0.0.1:{free_port()}"
    store = settings.mlflow_tracking_uri
    object.__setattr__(settings, "mlflow_tracking_uri", down)
    end = rows[-1][2]
    for attempt in (1, 2):  # two scheduled retrains while the store is down
        end += timedelta(seconds=601)
        app[keys.LATEST].as_of = end
        await wait_until(lambda n=attempt: errors() == n, f"failed retrain {attempt} counted",
                         limit=60)
        body = await (await client.get("/readyz")).json()
        shown = body["components"]["training"]
        assert shown["ok"] is False and down.removeprefix("http://") in shown["last_error"]
        assert shown["last_attempt"] == end.isoformat()
        metrics = await (await client.get("/metrics")).text()
        series = f'blink_training_runs_total{{outcome="error",product="{settings.pair}"}}'
        assert f"{series} {attempt}.0" in metrics
        await still_serving()
        await asyncio.sleep(1.0)  # no retry before the next scheduled time
        assert errors() == attempt and slot.label == v1

    object.__setattr__(settings, "mlflow_tracking_uri", store)  # the store is back: the next
    # scheduled retrain promotes
    app[keys.LATEST].as_of = end + timedelta(seconds=601)
    await wait_until(lambda: slot.label == f"{settings.model_name}@production v2",
                     "retrain after the outage promoted and served", limit=60)
    assert training.ok is True and errors() == 2
