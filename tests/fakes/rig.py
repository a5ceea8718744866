"""A Blink ingest app (executor, database, HTTP client, ingest pipeline) against the fake
exchange, which the tests can stop and start again, and compare with the generated tape.

With several products (`pairs=...` in the settings, a fake serving them), `stored`, `expected`
and `gaps` take a product (default: the first) and `assert_complete` checks every product's
tape; `first_id` applies to every product (the fake starts them all at the same id)."""

from __future__ import annotations

import contextlib

import asyncpg
from aiohttp import web

from blink.detect.latest import Latest
from blink.runtime import keys
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.runtime.warmup import Warmup
from blink.service import resources
from blink.service.ingest import ingest_ctx
from blink.store import db
from tests.fakes import rest_url, ws_url
from tests.fakes.coinbase import FakeCoinbase
from tests.support.metrics import total
from tests.support.waiting import wait_until


def blink_app(settings) -> web.Application:
    """The ingest part of Blink's app: executor, database, HTTP client, ingest pipeline."""
    app = web.Application()
    app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS] = settings, Health(), Metrics()
    app[keys.LATEST] = Latest(product_id=settings.pair, source=settings.source)
    app[keys.WARMUP] = Warmup()
    app.cleanup_ctx.extend([resources.executor_ctx, resources.database_ctx, resources.http_ctx,
                            ingest_ctx])
    return app


class Rig:
    """A fake exchange plus a Blink ingest app that can be stopped and started again."""

    def __init__(self, fake, server, make_settings, pg_dsn, **overrides) -> None:
        self.fake, self.pg_dsn = fake, pg_dsn
        self.settings = make_settings(**{
            "pg_dsn": pg_dsn, "coinbase_ws_url": ws_url(server),
            "coinbase_rest_url": rest_url(server), "watchdog_seconds": 0.5,
            "heartbeat_grace_seconds": 0.3, "reconnect_base_seconds": 0.05,
            "reconnect_cap_seconds": 0.2, "rest_rate": 200, "hold_seconds": 2,
            "bootstrap_hours": 0.0,  # (tests of the bootstrap turn it on)
            **overrides})
        self.runner: web.AppRunner | None = None
        self.first_id: int | None = None

    async def start(self) -> web.Application:
        self.runner = web.AppRunner(blink_app(self.settings))
        await self.runner.setup()
        if self.first_id is None:
            self.first_id = self.fake.trades[-1].trade_id  # the last_match it will get
        await wait_until(lambda: all(t.newest is not None for t in self.tapes.values()),
                         "the feed delivered a trade of every product")
        return self.app

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.runner = None

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def tape(self):
        return self.app[keys.TAPE]

    def metric(self, name: str, **labels) -> float:
        return total(self.app[keys.METRICS].registry.collect(), name, **labels)

    @property
    def tapes(self) -> dict:
        return self.app[keys.TAPES]

    def expected(self, product: str | None = None) -> list[tuple]:
        return [(t.trade_id, t.time, t.price, t.size, t.side)
                for t in self.fake.tapes[product or self.settings.pair]
                if t.trade_id >= self.first_id]

    async def stored(self, product: str | None = None) -> list[tuple]:
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            rows = await conn.fetch("SELECT trade_id, time, price, size, side FROM trades"
                                    " WHERE product_id = $1 ORDER BY trade_id",
                                    product or self.settings.pair)
        finally:
            await conn.close()
        return [tuple(r) for r in rows]

    async def seed(self, trades) -> None:
        """Store trades directly (a tape left by an earlier run)."""
        pool = await db.create_pool(self.pg_dsn)
        try:
            await pool.executemany(
                "INSERT INTO trades (product_id, trade_id, time, price, size, side)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                [(t.product_id, t.trade_id, t.time, t.price, t.size, t.side) for t in trades])
        finally:
            await pool.close()

    async def assert_complete(self, trades=None) -> None:
        """Wait until every product's stored tape equals its generated tape (or the first
        product's equals `trades`); fail showing the difference."""
        if trades is not None:
            return await self.assert_tape(self.settings.pair, [
                (t.trade_id, t.time, t.price, t.size, t.side) for t in trades])
        for product in self.settings.pairs:
            await self.assert_tape(product, self.expected(product))

    async def assert_tape(self, product: str, want: list[tuple]) -> None:
        """Wait until the product's stored tape is `want` (trade_id, time, price, size, side)."""
        async def same() -> bool:
            if self.runner is not None:
                await self.app[keys.WRITER].wait_flushed()
            return await self.stored(product) == want

        try:
            await wait_until(same, f"stored {product} tape == generated tape", limit=15,
                             step=0.05)
        except AssertionError:
            got = await self.stored(product)
            missing = sorted({r[0] for r in want} - {r[0] for r in got})
            extra = sorted({r[0] for r in got} - {r[0] for r in want})
            diff = [(a, b) for a, b in zip(got, want, strict=False) if a != b][:3]
            raise AssertionError(f"{product}: missing {missing[:20]} extra {extra[:20]} "
                                 f"diff {diff}") from None

    async def gaps_closed(self, product: str | None = None) -> None:
        async def closed() -> bool:  # at least one gap recorded, and every one settled
            rows = await self.gaps(product)
            return bool(rows) and all(g["filled_at"] or g["note"] for g in rows)

        await wait_until(closed, "every feed_gaps row filled or noted")

    async def gaps(self, product: str | None = None) -> list[asyncpg.Record]:
        """The product's feed_gaps rows (default: the first product's)."""
        conn = await asyncpg.connect(self.pg_dsn)
        try:
            return await conn.fetch("SELECT * FROM feed_gaps WHERE product_id = $1"
                                    " ORDER BY from_id", product or self.settings.pair)
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def rigs(aiohttp_server, make_settings, pg_dsn):
    """Yields `build(fake=None, start=True, **setting_overrides) -> Rig`; stops them all."""
    made = []

    async def build(fake: FakeCoinbase | None = None, start: bool = True, **overrides) -> Rig:
        fake = fake or FakeCoinbase(history=200, heartbeat_interval=0.1)
        server = await aiohttp_server(fake.app)
        r = Rig(fake, server, make_settings, pg_dsn, **overrides)
        made.append(r)
        if start:
            await r.start()
        return r

    try:
        yield build
    finally:
        for r in made:
            if r.runner is not None:
                await r.stop()


async def slow_consumer(r) -> None:
    """The fault: Blink reads slower than the server sends; the server's backlog for it passes
    its limit (Coinbase's slow-consumer error, then a close); Blink reconnects; more trades."""
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.slow_consume_limit = 20
    r.fake.emit(100)  # the server's backlog passes its limit: error, close
    r.fake.slow_consume_limit = 1_000_000
    await wait_until(lambda: r.fake.connections >= 2, "reconnected")
    r.fake.emit(10)
