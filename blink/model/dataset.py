"""The training matrix: a range of the stored tape, through the one feature implementation.

The trades are read with one binary `COPY (SELECT ...) TO STDOUT`: every row has the same four
fixed-width NOT NULL columns, so the whole answer is parsed by numpy as one structured array,
without building 300,000 Python records or Decimals (COPY binary: a 19-byte header, then per
row an int16 field count and, per field, an int32 length and the big-endian value).
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import numpy as np

from blink import __version__, features

TAPE_QUERY = (
    "SELECT extract(epoch FROM time)::float8, price::float8, size::float8, side = 'sell',"
    " trade_id FROM trades WHERE product_id = $1 AND time > $2 AND time <= $3 ORDER BY trade_id"
)
ROW = np.dtype([("n", ">i2"), ("l0", ">i4"), ("ts", ">f8"), ("l1", ">i4"), ("price", ">f8"),
                ("l2", ">i4"), ("size", ">f8"), ("l3", ">i4"), ("taker_buy", "?"),
                ("l4", ">i4"), ("trade_id", ">i8")])
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def parse_copy_binary(data: bytes) -> np.ndarray:
    """Rows of a binary COPY of TAPE_QUERY as a structured array (see ROW)."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a binary COPY stream")
    ext = int.from_bytes(data[15:19], "big")
    body = data[19 + ext:-2]  # the stream ends with the int16 -1 trailer
    if len(body) % ROW.itemsize:
        raise ValueError(f"COPY body of {len(body)} bytes is not whole rows of {ROW.itemsize}")
    rows = np.frombuffer(body, ROW)
    if len(rows) and (rows["n"] != 5).any():
        raise ValueError("unexpected field count in COPY stream")
    return rows


async def read_tape(pool, product_id: str, start: datetime, end: datetime) -> np.ndarray:
    """Trades with start < time <= end, in trade-id order, as a structured array."""
    buf = io.BytesIO()
    async with pool.acquire() as conn:
        await conn.copy_from_query(TAPE_QUERY, product_id, start, end, output=buf,
                                   format="binary")
    return parse_copy_binary(buf.getvalue())


async def newest_trade_time(pool, product_id: str) -> datetime | None:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT max(time) FROM trades WHERE product_id = $1",
                                   product_id)


def feature_matrix(rows: np.ndarray, settings) -> np.ndarray:
    """`features.batch` over the rows (blocking, CPU-bound: run it in an executor)."""
    engine = features.FeatureEngine.from_settings(settings)
    return features.batch(rows["ts"], rows["price"], rows["size"], rows["taker_buy"],
                          engine=engine)


async def read_range(pool, settings, end_time: datetime) -> tuple[np.ndarray, dict]:
    """The last `train_hours` of tape before `end_time` (event time): (rows, meta).

    meta describes the data for MLflow params (reproducible from them alone).
    """
    end = end_time.astimezone(UTC)
    start = end - timedelta(hours=settings.train_hours)
    rows = await read_tape(pool, settings.pair, start, end)
    meta = {
        "product_id": settings.pair,
        "schema": settings.schema,
        "source": settings.source,
        "data_start": start.isoformat(),
        "data_end": end.isoformat(),
        "trades": int(len(rows)),
        "first_trade_id": int(rows["trade_id"][0]) if len(rows) else None,
        "last_trade_id": int(rows["trade_id"][-1]) if len(rows) else None,
        "feature_names": list(features.FEATURE_NAMES),
        "feature_windows": features.windows(settings.feature_scale),
        "feature_min_history_seconds": settings.min_history_seconds,
        "feature_min_trades": settings.min_trades,
        "blink_version": __version__,
    }
    return rows, meta


def warm(X: np.ndarray) -> np.ndarray:
    """The rows of X with every feature defined (the windows are warm); X itself when all
    are (the per-row pass only then: 5x the cost of the whole-array check)."""
    X = np.asarray(X, dtype=np.float64)
    if np.isfinite(X).all():
        return X
    return X[np.isfinite(X).all(axis=1)]


def warm_rows(X: np.ndarray) -> int:
    return len(warm(X))


async def load_training_matrix(pool, settings, end_time: datetime,
                               executor=None) -> tuple[np.ndarray, dict]:
    """The feature rows of the last `train_hours` of tape before `end_time` (event time).

    Returns (X, meta): X is n_trades x k in trade-id order with NaN rows while the windows
    warm up (the first minutes of the range); meta as `read_range`, plus `feature_rows`.
    """
    rows, meta = await read_range(pool, settings, end_time)
    X = await asyncio.get_running_loop().run_in_executor(executor, feature_matrix, rows,
                                                         settings)
    return X, {**meta, "feature_rows": warm_rows(X)}
