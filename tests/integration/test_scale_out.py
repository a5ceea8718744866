"""Scale out by product: two `--role ingest` processes split the products (`--pairs A,B` and
`--pairs C`) against one fake exchange and one PostgreSQL; after faults on every product at
once (dropped ids on the wire, both sockets cut mid-stream), every product's stored tape is
complete and exact. Each process subscribes to its own products only, on one socket.

Every process is a real `python -m blink run` (see test_roles.py for the api side)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import asyncpg
import pytest

from tests.conftest import create_database, drop_database
from tests.fakes import rest_url, serve_fake, ws_url
from tests.integration.test_roles import Proc, all_healthy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

SPLIT = (("BTC-USD", "ETH-USD"), ("SOL-USD",))


async def stored(dsn: str, product: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT trade_id, time, price, size, side FROM trades"
                                " WHERE product_id = $1 ORDER BY trade_id", product)
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def test_two_ingest_processes_split_the_products_and_every_tape_is_complete(
        aiohttp_server, tmp_path):
    products = tuple(p for part in SPLIT for p in part)
    fake, server = await serve_fake(  # each product its own id range, as on Coinbase
        aiohttp_server, products=products, history=50, heartbeat_interval=0.2, compress=False,
        start_ids={"BTC-USD": 1_100_000_000, "ETH-USD": 650_000_000, "SOL-USD": 90_000_000})
    dsn = await create_database()
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("BLINK_", "PG_", "REDIS_", "MLFLOW_", "PAIR"))}
    base |= {"PG_DSN": dsn, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
             "MLFLOW_DISABLE_TELEMETRY": "true", "LOG_LEVEL": "WARNING",
             "BLINK_COINBASE_WS_URL": ws_url(server), "BLINK_COINBASE_REST_URL": rest_url(server),
             "BLINK_REST_RATE": "8", "BLINK_BOOTSTRAP_HOURS": "0",
             "BLINK_WATCHDOG_SECONDS": "2", "BLINK_HEARTBEAT_GRACE_SECONDS": "1",
             "BLINK_RECONNECT_BASE_SECONDS": "0.1", "BLINK_RECONNECT_CAP_SECONDS": "0.5"}
    procs = [Proc({**base, "BLINK_DATA_DIR": str(tmp_path / f"data{i}")},  # own spill files
                  "run", "--role", "ingest", "--pairs", ",".join(part))
             for i, part in enumerate(SPLIT)]
    try:
        for p in procs:
            await p.start(tmp_path)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def up() -> bool:
                return (await all_healthy(http, procs) and len(fake.conns) == 2
                        and all(c.subs.get("matches") for c in fake.conns))
            await wait_until(up, "both ingest processes up and subscribed", limit=120, step=0.2)
        assert sorted(sorted(m["product_ids"]) for m in fake.received) == sorted(
            sorted(part) for part in SPLIT)  # each its own products, on one socket
        firsts = {p: fake.tapes[p][-1].trade_id for p in products}  # the last_match each got

        fake.drop = {firsts[p] + k for p in products for k in (5, 6, 30)}  # on every wire
        for _ in range(5):
            fake.emit(20)
            await fake.wait_sent()
            await asyncio.sleep(0.05)
        fake.abort_all()  # both sockets cut (1006): each process reconnects on its own
        fake.emit(30)  # made while they reconnect
        await wait_until(lambda: fake.connections >= 4, "both reconnected", limit=60)
        fake.emit(10)

        async def complete() -> bool:
            for p in products:
                want = [(t.trade_id, t.time, t.price, t.size, t.side) for t in fake.tapes[p]
                        if t.trade_id >= firsts[p]]
                if await stored(dsn, p) != want:
                    return False
            return True
        try:
            await wait_until(complete, "every product's tape complete", limit=90, step=0.5)
        except AssertionError:
            got = {p: [r[0] for r in await stored(dsn, p)] for p in products}
            raise AssertionError({p: (ids[:3], ids[-3:], len(ids)) for p, ids in got.items()}
                                 ) from None
    finally:
        errs = [await p.stop() for p in procs if p.proc is not None]
        await drop_database(dsn)
    for err in errs:
        assert "Traceback" not in err, err[-3000:]
