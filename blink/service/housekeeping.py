"""The retention task: `blink.store.retention.prune` now and every hour, when
`retention_days` > 0."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from blink.runtime import keys, tasks
from blink.store import retention

log = logging.getLogger(__name__)


async def run(app: web.Application, interval: float = retention.INTERVAL) -> None:
    """Prune now, then every `interval` seconds; failures are retried with backoff."""
    settings = app[keys.SETTINGS]
    health = app[keys.HEALTH]["retention"]
    metrics = app[keys.METRICS]

    async def once() -> None:
        deleted = await retention.prune(app[keys.POOL], settings.pairs,
                                        settings.retention_days)
        for table, n in deleted.items():
            metrics.rows_pruned.labels(table=table).inc(n)
        if any(deleted.values()):
            log.info("retention deleted %s (older than %g days)", deleted,
                     settings.retention_days, extra={"deleted": deleted})
        health.success(days=settings.retention_days, deleted=deleted)
        await asyncio.sleep(interval)

    await tasks.supervise(once, health, base=5.0, cap=300.0)


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the hourly retention task, only when `retention_days` > 0."""
    if app[keys.SETTINGS].retention_days <= 0:
        yield
        return
    async for _ in tasks.background("retention", run)(app):
        yield
