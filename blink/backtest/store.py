"""Where a backtest's outputs go, apart from the live ones: PostgreSQL and MLflow.

`--store`: the backtest's tape, feature rows and anomaly events in PostgreSQL.

Everything goes to the schema `backtest` (`SCHEMA`) of the configured database (PG_DSN, else
the embedded server in the data directory), never to `public` where the live tape lives, nor
to the `replay`/`synthetic` schemas of the service. A backtest starts by deleting the rows a
previous backtest left there for the same product (bar and series inputs number their trades
from 1, so two inputs would otherwise collide), then writes with the live code: the tape
`Writer` (batched upserts; its spill file under `<data_dir>/backtest/`) and
`feature_rows.write` for feature rows and events. The trade writer runs as a task; when it
falls more than `BACKLOG` trades behind, the backtest waits for it (it never spills: at most
1.5 x BACKLOG trades wait, under the default `writer_queue`).

`--mlflow`: `mlflow_logger` logs each fit as a run registered under `<model_name>_backtest`,
with params source/schema `backtest`, so neither the live alias nor the registry's fallback
(newest run of the live product and source) can ever pick a backtest model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from blink import features
from blink.config import Settings
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.store import db, feature_rows, sessions
from blink.store.writer import Writer

log = logging.getLogger(__name__)

SCHEMA = "backtest"
BACKLOG = 50_000


class BacktestStore:
    def __init__(self, pool, writer: Writer, product_id: str, embedded=None) -> None:
        self.pool, self.writer, self.product_id, self.embedded = (
            pool, writer, product_id, embedded)
        self.task = asyncio.create_task(writer.run(), name="backtest-writer")

    @classmethod
    async def open(cls, settings: Settings) -> BacktestStore:
        embedded, dsn = None, settings.pg_dsn
        if not dsn:
            embedded, dsn = await db.start_embedded(settings.data_dir)
        pool = await db.create_pool(dsn, SCHEMA)
        await sessions.delete_product(pool, settings.pair)
        own = dataclasses.replace(settings, data_dir=settings.data_dir / SCHEMA)
        writer = Writer(pool, own, Metrics(), Health()["writer"])
        writer.spill.path.unlink(missing_ok=True)  # a crashed backtest's rows are stale
        log.info("backtest store: schema %s (rows of %s replaced)", SCHEMA, settings.pair)
        return cls(pool, writer, settings.pair, embedded)

    async def submit(self, trades) -> None:
        """Queue the tape of a chunk, BACKLOG/2 trades at a time, waiting for the writer
        whenever it is more than BACKLOG behind: a backtest waits rather than spills."""
        step = BACKLOG // 2
        for start in range(0, len(trades), step):
            if self.writer.queued > BACKLOG:
                await self.writer.wait_flushed()
            for trade in trades[start:start + step]:
                self.writer.submit(trade)

    async def write(self, rows: list, events: list) -> None:
        """Feature rows and events in one transaction; wait for the tape writer if behind."""
        if rows or events:
            async with self.pool.acquire() as conn, conn.transaction():
                await feature_rows.write(conn, self.product_id, rows, events)
        if self.writer.queued > BACKLOG:
            await self.writer.wait_flushed()

    async def finish(self) -> None:
        await self.writer.wait_flushed()

    async def close(self) -> None:
        await self.writer.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await db.close_pool(self.pool)
        if self.embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.embedded.stop)


def mlflow_logger(settings: Settings) -> Callable:
    """Log each fit as an MLflow run registered as `<model_name>_backtest` (blocking)."""
    from blink.model import tracking

    isolated = dataclasses.replace(settings, model_name=f"{settings.model_name}_backtest")

    def log_fit(result, end: float) -> str:
        meta = {"product_id": settings.pair, "schema": "backtest", "source": "backtest",
                "data_end": datetime.fromtimestamp(end, UTC).isoformat(),
                **features.meta(settings.feature_scale)}
        return tracking.log_to_mlflow(result, isolated, meta).version

    return log_fit
