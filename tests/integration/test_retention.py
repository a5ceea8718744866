"""Retention on the real PostgreSQL: bounded batches, event-time cutoff, anomalies kept."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blink.runtime import keys
from blink.service.app import create_app
from blink.store import db, retention

NOW = datetime.now(UTC).replace(microsecond=0)


async def _fill(pool, newest: datetime, hours: int, product: str = "BTC-USD",
                first_id: int = 1) -> None:
    """One trade and one feature row per hour, the newest at `newest`; one anomaly, one gap."""
    times = [newest - timedelta(hours=h) for h in range(hours)][::-1]
    await pool.executemany(
        "INSERT INTO trades (product_id, trade_id, time, price, size, side)"
        " VALUES ($1, $2, $3, 100, 0.5, 'buy')",
        [(product, first_id + i, t) for i, t in enumerate(times)])
    await pool.executemany(
        "INSERT INTO features (product_id, time, trade_id, price, vector)"
        " VALUES ($1, $2, $3, 100, $4)",
        [(product, t, first_id + i, json.dumps({"ret_60s": 0.0})) for i, t in enumerate(times)])
    old = times[0]
    await pool.execute(
        "INSERT INTO anomalies (product_id, start_time, end_time, peak_time, peak_score,"
        " threshold) VALUES ($1, $2, $2, $2, 0.7, 0.6)", product, old)
    await pool.execute(
        "INSERT INTO feed_gaps (product_id, from_id, to_id, detected_at, detected_by)"
        " VALUES ($1, 5, 6, $2, 'test')", product, old)


async def _count(pool, table: str, where: str = "true", *args) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {where}", *args)  # noqa: S608


@pytest.fixture
async def pool(pg_dsn):
    p = await db.create_pool(pg_dsn)
    yield p
    await p.close()


async def test_zero_days_keeps_everything(pool):
    await _fill(pool, NOW, 48)
    assert await retention.prune(pool, ["BTC-USD"], 0) == {}
    assert await _count(pool, "trades") == 48 and await _count(pool, "features") == 48


async def test_prunes_older_than_cutoff_in_batches(pool):
    await _fill(pool, NOW, 24 * 10)  # 10 days, hourly
    deleted = await retention.prune(pool, ["BTC-USD"], 3, batch=7)  # many small statements
    before = NOW - timedelta(days=3)
    assert await _count(pool, "trades", "time < $1", before) == 0
    assert await _count(pool, "features", "time < $1", before) == 0
    kept = await _count(pool, "trades")
    assert kept == 24 * 3 + 1  # the hours in [now-3d, now]
    assert deleted == {"trades": 240 - kept, "features": 240 - kept}
    # events and the gap audit trail outlive the tape they came from
    assert await _count(pool, "anomalies") == 1 and await _count(pool, "feed_gaps") == 1
    # a second pass finds nothing left to do
    assert await retention.prune(pool, ["BTC-USD"], 3, batch=7) == {"trades": 0, "features": 0}


async def test_cutoff_is_event_time_and_each_product_its_own(pool):
    newest = datetime(2024, 3, 1, 12, tzinfo=UTC)  # a replayed file: all of it "old"
    await _fill(pool, newest, 72)
    # ETH-USD's feed stopped two days earlier: its own last day stays
    await _fill(pool, newest - timedelta(days=2), 72, product="ETH-USD", first_id=1000)
    await _fill(pool, newest, 72, product="SOL-USD", first_id=5000)  # not served here
    assert await retention.cutoff(pool, "BTC-USD", 1) == newest - timedelta(days=1)
    deleted = await retention.prune(pool, ["BTC-USD", "ETH-USD"], 1)
    assert deleted == {"trades": 2 * 47, "features": 2 * 47}
    for product in ("BTC-USD", "ETH-USD"):
        assert await _count(pool, "trades", "product_id = $1", product) == 25, product
        assert await _count(pool, "features", "product_id = $1", product) == 25, product
        first = await pool.fetchval("SELECT min(time) FROM trades WHERE product_id = $1",
                                    product)
        newest_of = await pool.fetchval("SELECT max(time) FROM trades WHERE product_id = $1",
                                        product)
        assert first == newest_of - timedelta(days=1), product
    # a product another process serves is that process's to prune
    assert await _count(pool, "trades", "product_id = 'SOL-USD'") == 72


async def test_no_tape_no_cutoff(pool):
    assert await retention.cutoff(pool, "BTC-USD", 1) is None
    assert await retention.prune(pool, ["BTC-USD"], 1) == {}


async def test_future_trade_does_not_move_cutoff_past_now(pool):
    await _fill(pool, NOW + timedelta(days=30), 1)  # a bad clock upstream
    before = await retention.cutoff(pool, "BTC-USD", 2)
    assert before <= datetime.now(UTC) - timedelta(days=2)


async def test_only_known_tables(pool):
    with pytest.raises(ValueError, match="anomalies"):
        await retention.delete_before(pool, "anomalies", "BTC-USD", NOW)


async def test_retention_task_runs_in_the_app(aiohttp_client, make_settings, pg_dsn, pool):
    await _fill(pool, NOW, 24 * 4)
    app = create_app(make_settings(pg_dsn=pg_dsn, retention_days=2))  # wired for `ingest`
    client = await aiohttp_client(app)
    component = app[keys.HEALTH]["retention"]
    for _ in range(200):  # the first pass runs at start-up
        if component.ok is not None:
            break
        await asyncio.sleep(0.05)
    assert component.ok is True, component.last_error
    assert await _count(pool, "trades", "time < $1", NOW - timedelta(days=2)) == 0
    assert await _count(pool, "trades") == 24 * 2 + 1
    r = await client.get("/readyz")
    body = await r.json()
    assert body["components"]["retention"]["deleted"] == {"trades": 47, "features": 47}
    pruned = app[keys.METRICS].registry.get_sample_value(
        "blink_rows_pruned_total", {"table": "trades"})
    assert pruned == 47


async def test_retention_off_starts_no_task(aiohttp_client, settings):
    app = create_app(settings)
    await aiohttp_client(app)
    assert "retention" not in app[keys.HEALTH].components
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "retention"]


async def test_partition_recipe_then_retention(pool):
    """docs/partition_trades.sql keeps every row and the dedupe; retention works across it."""
    await _fill(pool, NOW, 24 * 70)  # 70 days: three or four monthly partitions
    recipe = (Path(__file__).parents[2] / "docs" / "partition_trades.sql").read_text()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(recipe)
    assert await pool.fetchval("SELECT relkind FROM pg_class WHERE relname = 'trades'") == b"p"
    assert await _count(pool, "trades") == 24 * 70
    parts = await pool.fetchval("SELECT count(DISTINCT tableoid) FROM trades")
    assert parts >= 3
    # the writer's bare ON CONFLICT DO NOTHING still drops a redelivered trade
    status = await pool.execute(
        "INSERT INTO trades (product_id, trade_id, time, price, size, side)"
        " SELECT product_id, trade_id, time, price, size, side FROM trades ON CONFLICT DO NOTHING")
    assert status == "INSERT 0 0"
    deleted = await retention.prune(pool, ["BTC-USD"], 20, batch=100)
    assert deleted["trades"] == 24 * 70 - (24 * 20 + 1)
    assert await _count(pool, "trades", "time < $1", NOW - timedelta(days=20)) == 0
