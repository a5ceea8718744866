"""Emptying the tapes that are not the live one: a replay or synthetic session's schema, and a
backtest's rows for its product. The live tape (`public`) is never emptied here."""

from __future__ import annotations

import asyncpg

BACKTEST_TABLES = ("trades", "features", "anomalies")


async def empty_session(pool: asyncpg.Pool, schema: str) -> None:
    """Every row of a replay/synthetic session's schema (the pool's search_path)."""
    if schema == "public":
        raise ValueError("the live tape is never truncated")
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE trades, features, anomalies, feed_gaps")


async def delete_product(pool: asyncpg.Pool, product_id: str) -> None:
    """A backtest's rows of `product_id` (its schema is the pool's search_path)."""
    async with pool.acquire() as conn:
        for table in BACKTEST_TABLES:  # table names are constants: no injection
            await conn.execute(f"DELETE FROM {table} WHERE product_id = $1",  # noqa: S608
                               product_id)
