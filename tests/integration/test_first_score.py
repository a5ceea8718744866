"""A first start scores from history: the synthetic source plays `bootstrap_hours` of past
trades at once, the first model trains on them, and /readyz says what it waits for on the way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from blink.runtime import keys
from blink.service.app import create_app
from tests.support.waiting import wait_until

ORDER = ["history", "training", "training_rows", "features", "model", None]
FIELDS = {"waiting_for", "message", "progress", "eta_seconds", "history", "training"}


async def test_the_first_model_trains_on_the_generated_history(aiohttp_client, ml_settings,
                                                                pg_dsn):
    settings = ml_settings(pg_dsn=pg_dsn, source="synthetic", speed=1, bootstrap_hours=0.5,
                           train_min_rows=600, registry_poll_seconds=1)
    started = datetime.now(UTC)
    app = create_app(settings)
    client = await aiohttp_client(app)
    seen: list = []
    while True:  # /readyz while warming up: what it waits for, in the order things happen
        r = await client.get("/readyz")
        body = await r.json()
        assert FIELDS <= set(body["warmup"]), body["warmup"]
        stage = body["warmup"]["waiting_for"]
        if not seen or seen[-1] != stage:
            seen.append(stage)
        if stage is None:
            break
        assert r.status == 503 and body["warmup"]["message"]
        await asyncio.sleep(0.05)
    assert r.status == 200 and body["ready"] is True
    assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen), seen
    history = body["warmup"]["history"]
    assert history["done"] and history["source"] == "synthetic" and history["trades"] > 5000
    training = app[keys.HEALTH]["training"].detail
    assert training["outcome"] == "promoted" and training["rows"] >= 600
    # the model was fitted on the history: its data ends near the start, begins 30 min before
    end = datetime.fromisoformat(training["last_attempt"])
    assert end < started + timedelta(minutes=5)
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": "synthetic"})
    try:
        oldest = await conn.fetchval("SELECT min(time) FROM trades")
    finally:
        await conn.close()
    assert timedelta(minutes=29) < started - oldest < timedelta(minutes=31)
    await wait_until(lambda: app[keys.LATEST].score_raw is not None, "a score")
