"""Cleanup contexts for the shared resources: executor, database, Redis, HTTP client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from blink import __version__
from blink.config import redact
from blink.runtime import keys
from blink.runtime.executor import DaemonExecutor
from blink.store import db

log = logging.getLogger(__name__)


async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
    """Thread pool for blocking work (fitting, MLflow, embedded PostgreSQL start/stop)."""
    pool = DaemonExecutor(max_workers=4)
    app[keys.EXECUTOR] = pool
    yield
    pool.shutdown()  # a call still running does not hold up the exit (see executor.py)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """PG_DSN if configured, else an embedded PostgreSQL in the data directory."""
    settings = app[keys.SETTINGS]
    health = app[keys.HEALTH]["database"]
    embedded = None
    dsn = settings.pg_dsn
    if not dsn:
        loop = asyncio.get_running_loop()
        embedded = db.EmbeddedPostgres(settings.data_dir)
        try:
            dsn = await loop.run_in_executor(app[keys.EXECUTOR], embedded.start)
        except Exception as e:  # a full or read-only data dir, say: one clear line, exit 1
            raise RuntimeError(f"cannot start the embedded PostgreSQL in {embedded.pgdata}: "
                               f"{type(e).__name__}: {e}") from e
        log.info("embedded PostgreSQL running in %s", embedded.pgdata)
    try:
        app[keys.POOL] = await db.create_pool(dsn, settings.schema)
    except Exception as e:
        if embedded:
            await asyncio.get_running_loop().run_in_executor(app[keys.EXECUTOR], embedded.stop)
        raise RuntimeError(f"cannot open database {redact(dsn)}: {e}") from e
    health.success(schema=settings.schema, embedded=embedded is not None)
    yield
    await db.close_pool(app[keys.POOL])
    if embedded:
        await asyncio.get_running_loop().run_in_executor(app[keys.EXECUTOR], embedded.stop)
        log.info("embedded PostgreSQL stopped")


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """A Redis client when configured; None otherwise (state stays in-process)."""
    dsn = app[keys.SETTINGS].redis_dsn
    if not dsn:
        app[keys.REDIS] = None
        yield
        return
    from blink.outputs.mirror import REDIS_TIMEOUT_S, connect

    client = connect(dsn)
    app[keys.REDIS] = client
    health = app[keys.HEALTH]["redis"]
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_S):
            await client.ping()
        health.success()
    except Exception as e:  # noqa: BLE001 - Redis is optional: report, keep going
        health.failure(e)
    yield
    await client.aclose()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session for REST backfill and alert webhooks."""
    session = aiohttp.ClientSession(
        headers={"User-Agent": f"blink/{__version__} (+anomaly detector)"},
        timeout=aiohttp.ClientTimeout(total=20, connect=5),
    )
    app[keys.HTTP] = session
    yield
    await session.close()
