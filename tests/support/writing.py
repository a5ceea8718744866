"""A tape writer running on its own pool, as the ingest context runs it."""

from __future__ import annotations

import asyncio
import contextlib

from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.store import db
from blink.store.writer import Writer
from blink.trade import Trade


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


class GatedPool:
    """The real pool behind a gate: every `acquire` (one write) waits for a permit."""

    def __init__(self, pool) -> None:
        self.pool, self.gate, self.waiting = pool, asyncio.Semaphore(0), 0

    @contextlib.asynccontextmanager
    async def acquire(self):
        self.waiting += 1
        try:
            await self.gate.acquire()
        finally:
            self.waiting -= 1
        async with self.pool.acquire() as conn:
            yield conn

    async def close(self) -> None:
        await self.pool.close()


class Harness:
    """A writer running on its own pool, as ingest_ctx runs it."""

    def __init__(self, settings, pool, **writer_kw):
        self.pool, self.metrics, self.health = pool, Metrics(), Health()
        self.writer = Writer(pool, settings, self.metrics, self.health["writer"],
                             **{"retry_base": 0.01, "retry_cap": 0.05, "close_timeout": 1.0,
                                **writer_kw})
        self.task = asyncio.create_task(self.writer.run())

    @classmethod
    async def start(cls, settings, **pool_kw) -> Harness:
        return cls(settings, await db.create_pool(settings.pg_dsn, settings.schema, **pool_kw))

    def submit(self, tape: list[Trade]) -> None:
        for t in tape:
            self.writer.submit(t)

    async def flushed(self) -> None:
        async with asyncio.timeout(30):
            await self.writer.wait_flushed()

    async def stop(self) -> None:
        await self.writer.close()
        assert self.task.done()
        await self.pool.close()
