import asyncio

import asyncpg
import pytest

from blink.store import db
from tests.support.waiting import wait_until


async def test_migrations_apply_twice_without_harm(pg_dsn):
    conn = await asyncpg.connect(pg_dsn)
    try:
        first = await db.migrate(conn)
        assert first[0].startswith("001_trades")
        assert await db.migrate(conn) == []
        cols = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'trades' AND table_schema = 'public' ORDER BY ordinal_position")
        assert [(c["column_name"], c["data_type"]) for c in cols] == [
            ("product_id", "text"), ("trade_id", "bigint"),
            ("time", "timestamp with time zone"), ("price", "numeric"), ("size", "numeric"),
            ("side", "text"), ("received_at", "timestamp with time zone")]
        pk = await conn.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'public.trades'::regclass AND contype = 'p'")
        assert pk == "PRIMARY KEY (product_id, trade_id)"
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        assert [v["version"] for v in versions] == [m[0] for m in db.migrations()]
    finally:
        await conn.close()


async def test_concurrent_migrations_and_separate_schemas(pg_dsn):
    conns = [await asyncpg.connect(pg_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(db.migrate(c, "synthetic") for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(db.migrations())]
        pool = await db.create_pool(pg_dsn, "synthetic")
        async with pool.acquire() as c:
            assert await c.fetchval("SELECT current_schema()") == "synthetic"
            assert await c.fetchval("SELECT count(*) FROM trades") == 0
        await pool.close()
        has_public = await conns[0].fetchval("SELECT to_regclass('public.trades')")
        assert has_public is None  # the synthetic tape did not touch the live schema
    finally:
        for c in conns:
            await c.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
async def test_embedded_postgres_starts_and_stops(tmp_path):
    pg, dsn = await db.start_embedded(tmp_path / "data")
    try:
        pool = await db.create_pool(dsn)
        async with pool.acquire() as c:
            assert (await c.fetchval("SHOW server_version")).startswith("16")
            await c.execute("INSERT INTO trades (product_id, trade_id, time, price, size, side)"
                            " VALUES ('BTC-USD', 1, now(), 1.5, 0.1, 'buy')")
        await pool.close()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pg.stop)
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(dsn, timeout=2)
    # data survives a restart of the embedded server
    pg2, dsn2 = await db.start_embedded(tmp_path / "data")
    try:
        c = await asyncpg.connect(dsn2)
        assert await c.fetchval("SELECT count(*) FROM trades") == 1
        await c.close()
    finally:
        await asyncio.get_running_loop().run_in_executor(None, pg2.stop)


async def test_close_pool_does_not_wait_forever_on_a_connection_never_released(pg_dsn,
                                                                               caplog):
    """A connection held by a stuck task would make `Pool.close` wait forever (the shutdown
    hangs): `close_pool` terminates the pool after its bound and says so once."""
    pool = await db.create_pool(pg_dsn)
    held = await pool.acquire()  # never released, as by a task stuck mid-query
    await db.close_pool(pool, bound=0.5)
    with pytest.raises(asyncpg.InterfaceError):  # terminated: the proxy is detached
        await held.fetchval("SELECT 1")
    admin = await asyncpg.connect(pg_dsn)
    try:  # and the server lets go of it
        await wait_until(lambda: admin.fetchval(
            "SELECT count(*) = 0 FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'blink'"), "the held connection's backend ended")
    finally:
        await admin.close()
    assert [r.getMessage() for r in caplog.records if "not closed within" in r.getMessage()]
    free = await db.create_pool(pg_dsn)  # the usual case: closed gracefully, nothing said
    async with free.acquire() as c:
        assert await c.fetchval("SELECT 1") == 1
    caplog.clear()
    await db.close_pool(free, bound=0.5)
    assert not caplog.records
