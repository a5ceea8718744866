"""Stand-in data for training tests: a feature matrix, a synthetic trade tape in PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import numpy as np

from blink.features import FEATURE_NAMES
from blink.store import db

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def feature_rows(n: int = 3000, seed: int = 0, k: int = len(FEATURE_NAMES)) -> np.ndarray:
    """A stand-in feature matrix: correlated Gaussian columns (no NaN)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(k, k)) / math.sqrt(k) + np.eye(k)
    return rng.normal(size=(n, k)) @ mix


def synthetic_trades(n: int, start: datetime = T0, seed: int = 1, product: str = "BTC-USD"):
    """(product_id, trade_id, time, price, size, side) rows: ~1 trade/s, a random walk."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, n)
    gaps[rng.random(n) < 0.2] = 0.0  # bursts at one timestamp
    ts = np.cumsum(gaps)
    price = 60_000 * np.exp(np.cumsum(rng.normal(0, 2e-4, n)))
    size = rng.lognormal(-4, 1, n)
    side = np.where(rng.random(n) < 0.5, "buy", "sell")
    return [(product, 1000 + i, start + timedelta(seconds=float(ts[i])),
             Decimal(f"{price[i]:.2f}"), Decimal(f"{size[i]:.8f}"), str(side[i]))
            for i in range(n)]


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
