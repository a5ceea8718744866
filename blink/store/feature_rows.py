"""Flush the detector's buffered feature rows and anomaly events into PostgreSQL.

Once a second (wall time) everything buffered is written in ONE transaction: feature rows as
one `unnest` upsert keyed by (product_id, time), anomaly events upserted by
(product_id, start_time) so an open event's end, peak and explanation follow it. A failed
write puts the batch back into the detector's bounded buffer (oldest rows dropped and counted
beyond the bound) and raises, so `supervise` records the "features_store" failure (logged
once) and retries with backoff. Scoring never waits for this.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncpg
import orjson

from blink.runtime.health import Component
from blink.times import utc

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0

UPSERT_FEATURES = """
INSERT INTO features (product_id, time, trade_id, price, vector, score_raw, anomaly,
                      model_version)
SELECT $1, r.time, r.trade_id, r.price, r.vector, r.score_raw, r.anomaly, r.model_version
FROM unnest($2::timestamptz[], $3::bigint[], $4::float8[], $5::jsonb[], $6::float8[],
            $7::boolean[], $8::text[])
     AS r(time, trade_id, price, vector, score_raw, anomaly, model_version)
ON CONFLICT (product_id, time) DO UPDATE SET
    trade_id = EXCLUDED.trade_id, price = EXCLUDED.price, vector = EXCLUDED.vector,
    score_raw = EXCLUDED.score_raw, anomaly = EXCLUDED.anomaly,
    model_version = EXCLUDED.model_version
"""

UPSERT_EVENT = """
INSERT INTO anomalies (product_id, start_time, end_time, peak_time, peak_score, threshold,
                       model_version, explanation, points)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)
ON CONFLICT (product_id, start_time) DO UPDATE SET
    end_time = EXCLUDED.end_time, peak_time = EXCLUDED.peak_time,
    peak_score = EXCLUDED.peak_score, explanation = EXCLUDED.explanation,
    points = EXCLUDED.points
"""


async def write(conn: asyncpg.Connection, product_id: str, rows: list, events: list) -> None:
    """Upsert one batch in the caller's connection (wrap it in a transaction)."""
    if rows:
        await conn.execute(
            UPSERT_FEATURES, product_id,
            [r.time for r in rows], [r.trade_id for r in rows], [r.price for r in rows],
            [_json(r.vector) for r in rows], [r.score_raw for r in rows],
            [r.anomaly for r in rows], [r.model_version for r in rows])
    if events:
        await conn.executemany(UPSERT_EVENT, [
            (ev.product_id, utc(ev.start), utc(ev.end), utc(ev.peak_time), ev.peak_score,
             ev.threshold, ev.model_version, _json(ev.explanation), ev.points)
            for ev in events])


class RowSource(Protocol):
    """What the flusher drains (the detector): rows with time, trade_id, price, vector,
    score_raw, anomaly, model_version; events with the `anomalies` columns."""

    product_id: str
    rows: list

    def drain(self) -> tuple[list, list]: ...
    def requeue(self, rows: list, events: list) -> None: ...


class FeatureRowFlusher:
    def __init__(self, pool: asyncpg.Pool, detector: RowSource, health: Component,
                 interval: float = FLUSH_SECONDS) -> None:
        self.pool, self.detector, self.health, self.interval = pool, detector, health, interval
        self.rows_written = 0

    async def flush(self) -> int:
        """Write everything buffered now; returns the feature rows written."""
        rows, events = self.detector.drain()
        if not rows and not events:
            return 0
        try:
            async with self.pool.acquire(timeout=10) as conn, conn.transaction():
                await write(conn, self.detector.product_id, rows, events)
        except BaseException:
            self.detector.requeue(rows, events)
            raise
        self.rows_written += len(rows)
        self.health.success(rows_written=self.rows_written, buffered=len(self.detector.rows))
        return len(rows)

    async def run(self) -> None:
        """The loop body for `supervise`: flush every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()


def _json(value) -> str:
    """orjson (~10x json.dumps; jsonb stores the same numbers; a NaN would become null)."""
    return orjson.dumps(value).decode()

