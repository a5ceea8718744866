"""The `feed_gaps` rows (one per hole found in the trade ids) and the resume queries.

A row is inserted when a gap is detected; `filled` stamps filled_at and filled_count when the
backfill closed it; `unfilled` leaves filled_at empty and says why in `note` (REST could not
return the ids, or they lie past the backfill horizon).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg


class GapStore:
    def __init__(self, pool: asyncpg.Pool, product_id: str) -> None:
        self.pool, self.product_id = pool, product_id

    async def insert(self, lo: int, hi: int, detected_by: str, detected_at: datetime,
                     note: str | None = None) -> int:
        return await self.pool.fetchval(
            "INSERT INTO feed_gaps (product_id, from_id, to_id, detected_at, detected_by, note)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            self.product_id, lo, hi, detected_at, detected_by, note)

    async def filled(self, gap_id: int, count: int) -> None:
        await self.pool.execute(
            "UPDATE feed_gaps SET filled_at = now(), filled_count = $2 WHERE id = $1",
            gap_id, count)

    async def unfilled(self, gap_id: int, count: int, note: str) -> None:
        await self.pool.execute(
            "UPDATE feed_gaps SET filled_count = $2, note = $3 WHERE id = $1",
            gap_id, count, note)

    async def narrow(self, gap_id: int, lo: int) -> None:
        """The part of the gap below `lo` was split off (recorded as its own unfilled row)."""
        await self.pool.execute("UPDATE feed_gaps SET from_id = $2 WHERE id = $1", gap_id, lo)

    async def close_interrupted(self) -> int:
        """Gaps a previous run left open: noted as interrupted (start-up re-detects the holes)."""
        status = await self.pool.execute(
            "UPDATE feed_gaps SET note = 'interrupted by a restart; re-detected at start-up'"
            " WHERE product_id = $1 AND filled_at IS NULL AND note IS NULL", self.product_id)
        return int(status.split()[-1])


async def resume_id(pool: asyncpg.Pool, product_id: str) -> int | None:
    """The highest stored trade id for the product (None for an empty tape)."""
    return await pool.fetchval("SELECT max(trade_id) FROM trades WHERE product_id = $1",
                               product_id)


async def stored_holes(pool: asyncpg.Pool, product_id: str,
                       since: datetime) -> list[tuple[int, int]]:
    """Holes in the stored ids among trades newer than `since` (left by a crash or a kill)."""
    rows = await pool.fetch(
        "SELECT prev + 1 AS lo, trade_id - 1 AS hi FROM ("
        " SELECT trade_id, lag(trade_id) OVER (ORDER BY trade_id) AS prev"
        " FROM trades WHERE product_id = $1 AND time >= $2) s"
        " WHERE trade_id - prev > 1 ORDER BY lo", product_id, since)
    return [(r["lo"], r["hi"]) for r in rows]
