"""The ingest context: replayed/synthetic sessions start afresh; synthetic labels reach Latest."""

from datetime import UTC, datetime

import asyncpg

from blink.runtime import keys
from blink.service.app import create_app
from blink.store.db import create_pool
from blink.store.spill import spill_path
from tests.support.waiting import wait_until


async def test_synthetic_session_starts_afresh(aiohttp_client, make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, source="synthetic", speed=0, role="ingest")
    # a previous session's leftovers: a trade with id 1 and a spill file of the same schema
    pool = await create_pool(pg_dsn, "synthetic")
    await pool.execute("INSERT INTO trades (product_id, trade_id, time, price, size, side)"
                       " VALUES ('BTC-USD', 1, $1, 1.0, 1.0, 'buy')",
                       datetime(2020, 1, 1, tzinfo=UTC))
    await pool.close()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    spill = spill_path(settings.data_dir, "synthetic")
    spill.write_text("product_id,trade_id,time,price,size,side,received_at\n"
                     "BTC-USD,2,2020-01-01T00:00:00Z,1.0,1.0,buy,2020-01-01T00:00:00Z\n")

    app = create_app(settings)
    await aiohttp_client(app)
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": "synthetic"})
    try:
        async def stored() -> bool:
            return await conn.fetchval("SELECT count(*) FROM trades") >= 500
        await wait_until(stored, "500 synthetic trades stored", limit=30)
        old = await conn.fetch("SELECT trade_id FROM trades WHERE price = 1.0 AND size = 1.0")
        assert old == []  # the old rows are gone; ids 1 and 2 hold this session's trades
        first = await conn.fetchrow("SELECT time FROM trades WHERE trade_id = 1")
        assert first["time"].year >= 2026
        assert app[keys.LATEST].source == "synthetic"

        async def labelled() -> bool:  # the injected anomalies reach the dashboard's state
            return len(app[keys.LATEST].labels) >= 1
        await wait_until(labelled, "a labelled anomaly", limit=60)
        assert {"kind", "start", "end"} <= set(app[keys.LATEST].labels[0])
    finally:
        await conn.close()
    assert not spill.exists()
    live = await asyncpg.connect(pg_dsn)
    try:  # the live schema was never touched
        assert await live.fetchval("SELECT to_regclass('public.trades')") is None
    finally:
        await live.close()


class StubDetector:
    """Records what the tape hands it, as `Detector.on_trades` gets it."""

    def __init__(self) -> None:
        self.trades: list = []

    def on_trades(self, trades) -> None:
        self.trades.extend(trades)


async def test_one_tape_per_product_one_writer_each_tape_to_its_detector(
        aiohttp_client, make_settings, pg_dsn):
    """Interface 1: a context before ingest fills DETECTORS; ingest builds TAPES (TAPE = the
    first), subscribes each product's detector to its own tape, and one writer stores all."""
    from tests.fakes.rig import blink_app

    settings = make_settings(pg_dsn=pg_dsn, source="synthetic", speed=0, role="ingest",
                             pairs="SOL-USD,BTC-USD", bootstrap_hours=0.2)
    app = blink_app(settings)
    stubs = {p: StubDetector() for p in settings.pairs}

    async def detectors_ctx(app):
        app[keys.DETECTORS] = stubs
        yield

    app.cleanup_ctx.insert(len(app.cleanup_ctx) - 1, detectors_ctx)  # before ingest
    await aiohttp_client(app)
    tapes = app[keys.TAPES]
    assert list(tapes) == ["SOL-USD", "BTC-USD"] and app[keys.TAPE] is tapes["SOL-USD"]
    await wait_until(lambda: all(len(s.trades) > 2000 for s in stubs.values()),
                     "both detectors fed", limit=60)
    for product, stub in stubs.items():
        ids = [t.trade_id for t in stub.trades]
        assert {t.product_id for t in stub.trades} == {product}
        assert ids == list(range(1, len(ids) + 1))  # its own tape, in id order
    await app[keys.WRITER].wait_flushed()
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": "synthetic"})
    try:
        rows = await conn.fetch("SELECT product_id, count(*) AS n, min(trade_id) AS lo,"
                                " max(trade_id) AS hi FROM trades GROUP BY 1 ORDER BY 1")
    finally:
        await conn.close()
    assert [r["product_id"] for r in rows] == ["BTC-USD", "SOL-USD"]
    assert all(r["lo"] == 1 and r["n"] == r["hi"] for r in rows)  # every id, once
    assert app[keys.LATEST].source == "synthetic"
    labels = app[keys.LATEST].labels  # the first product's (a list the source fills)
    await wait_until(lambda: any(len(lb["products"]) == 2 for lb in labels),
                     "a market-wide anomaly labelled", limit=60)
    assert all("SOL-USD" in lb["products"] for lb in labels)
