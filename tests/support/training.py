"""Stand-in data for training tests: a feature matrix, a synthetic trade tape in PostgreSQL."""

from __future__ import annotations

import math

import asyncpg
import numpy as np

from blink.features import FEATURE_NAMES
from blink.store import db


def feature_rows(n: int = 3000, seed: int = 0, k: int = len(FEATURE_NAMES)) -> np.ndarray:
    """A stand-in feature matrix: correlated Gaussian columns (no NaN)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(k, k)) / math.sqrt(k) + np.eye(k)
    return rng.normal(size=(n, k)) @ mix


async def insert_trades(dsn: str, rows, schema: str = "public") -> None:
    """Migrate the database and COPY `rows` into its trades table."""
    conn = await asyncpg.connect(dsn)
    try:
        await db.migrate(conn, schema)
        await conn.copy_records_to_table(
            "trades", records=rows, schema_name=schema,
            columns=["product_id", "trade_id", "time", "price", "size", "side"])
    finally:
        await conn.close()
