"""Reading the stored tape fast: one binary `COPY (SELECT ...) TO STDOUT` per range.

Every row has the same fixed-width NOT NULL columns, so the whole answer is parsed by numpy as
one structured array, without building 300,000 Python records or Decimals (COPY binary: a
19-byte header, then per row an int16 field count and, per field, an int32 length and the
big-endian value).
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np

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
