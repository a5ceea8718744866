"""Retention: keep the last `BLINK_RETENTION_DAYS` days of `trades` and `features` (0 keeps all).

The age is measured in event time, like the rest of the pipeline, and per product: a product's
cutoff is its own newest trade (never later than now) minus N days, and only its own rows go.
Live, that is wall time; a replayed 2024 file keeps its own last N days instead of being wiped
for being old; a product whose feed stopped a week ago keeps its last N days; and a process
prunes only the products it serves (with `--role ingest --pairs` split over processes, each
its own; a product no process serves any more is left as it is).

Rows go in bounded batches (`BATCH` per statement, each its own short transaction, located by
`ctid` so PostgreSQL uses a TID scan), so retention never holds long locks or bloats one
transaction. `anomalies` and `feed_gaps` are kept: one small row per event or hole, they
are the history of what Blink saw, and the dashboard's past markers.

It also works on a `trades` partitioned by month (docs/partition_trades.sql); at that scale,
dropping whole old partitions is cheaper still (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

TABLES = ("trades", "features")  # pruned by their `time` column
BATCH = 10_000  # rows per DELETE statement
INTERVAL = 3600.0  # seconds between passes (housekeeping: wall time)


async def cutoff(pool: asyncpg.Pool, product_id: str, days: float) -> datetime | None:
    """The instant before which rows are deleted, or None when there is no tape yet."""
    newest, now = await pool.fetchrow(
        "SELECT max(time), now() FROM trades WHERE product_id = $1", product_id)
    return None if newest is None else min(newest, now) - timedelta(days=days)


async def delete_before(pool: asyncpg.Pool, table: str, product_id: str, before: datetime,
                        batch: int = BATCH) -> int:
    """Delete every row of `table` for `product_id` with `time < before`, `batch` rows per
    statement (both tables are indexed on (product_id, time))."""
    if table not in TABLES:
        raise ValueError(f"retention does not prune {table!r}")
    # the condition twice: a ctid is only unique within one partition of a partitioned table
    sql = (f"DELETE FROM {table} WHERE product_id = $3 AND time < $1"  # noqa: S608 - TABLES
           f" AND ctid = ANY(ARRAY(SELECT ctid FROM {table}"
           " WHERE product_id = $3 AND time < $1 LIMIT $2))")
    total = 0
    while True:
        status = await pool.execute(sql, before, batch, product_id)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # let the loop breathe between batches


async def prune(pool: asyncpg.Pool, products: Sequence[str], days: float,
                batch: int = BATCH) -> dict[str, int]:
    """One retention pass over `products`, each against its own cutoff: rows deleted per
    table (nothing when `days` is 0 or no product has a tape)."""
    deleted: dict[str, int] = {}
    if days <= 0:
        return deleted
    for product_id in products:
        before = await cutoff(pool, product_id, days)
        if before is None:
            continue
        for table in TABLES:
            deleted[table] = deleted.get(table, 0) + await delete_before(
                pool, table, product_id, before, batch)
    return deleted
