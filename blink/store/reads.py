"""The web layer's SQL: every statement parameterised, read-only.

The dashboard's range is anchored at the newest stored feature row (event time), not at the
wall clock, so replayed and synthetic data (whose event time is not "now") chart the same way.
Long ranges are downsampled in PostgreSQL with `date_bin` to at most MAX_POINTS buckets.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

MAX_POINTS = 2000

LAST_TIME = "SELECT max(time) FROM features WHERE product_id = $1"
FIRST_TIME = "SELECT min(time) FROM features WHERE product_id = $1 AND time > $2"

# One row per bucket: the bucket's last time and price (close), its lowest score (score_raw is
# sklearn's score_samples: LOWER = more anomalous) and whether any row in it was anomalous.
SERIES = """
SELECT max(time) AS time,
       (array_agg(price ORDER BY time DESC))[1] AS price,
       min(score_raw) AS score_raw,
       bool_or(anomaly) AS anomaly
FROM features
WHERE product_id = $1 AND time > $2 AND time <= $3
GROUP BY date_bin(make_interval(secs => $4), time, TIMESTAMPTZ '2000-01-01 00:00:00+00')
ORDER BY 1
"""

EVENTS_IN_RANGE = """
SELECT id, start_time, end_time, peak_time, peak_score, threshold, model_version,
       explanation, points
FROM anomalies
WHERE product_id = $1 AND end_time >= $2 AND start_time <= $3
ORDER BY start_time
LIMIT 500
"""

# Newest first; `before` pages backwards (exclusive), `since` bounds the oldest (inclusive).
EVENTS_PAGE = """
SELECT id, start_time, end_time, peak_time, peak_score, threshold, model_version,
       explanation, points
FROM anomalies
WHERE product_id = $1
  AND ($2::timestamptz IS NULL OR start_time >= $2)
  AND ($3::timestamptz IS NULL OR start_time < $3)
ORDER BY start_time DESC
LIMIT $4
"""


def bin_seconds(span_seconds: float, cadence: float) -> float:
    """Bucket width so that `span_seconds` of rows make at most MAX_POINTS points.

    Buckets are aligned to a fixed origin (stable across refreshes), so a range can straddle
    one more bucket than it spans: hence MAX_POINTS - 1.
    """
    return max(cadence, span_seconds / (MAX_POINTS - 1))


async def series(conn: asyncpg.Connection, product_id: str, minutes: int, cadence: float
                 ) -> tuple[datetime | None, float, list[asyncpg.Record]]:
    """(end, bucket seconds, rows) for the last `minutes` of event time, ending at the newest
    feature row; the buckets are sized on the data actually present (a young tape shown over
    24 h is not squeezed into 43 s buckets)."""
    end = await conn.fetchval(LAST_TIME, product_id)
    if end is None:
        return None, cadence, []
    start = end - timedelta(minutes=minutes)
    first = await conn.fetchval(FIRST_TIME, product_id, start)
    width = bin_seconds((end - first).total_seconds(), cadence)
    return end, width, await conn.fetch(SERIES, product_id, start, end, width)


async def events_in_range(conn: asyncpg.Connection, product_id: str, start: datetime,
                          end: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(EVENTS_IN_RANGE, product_id, start, end)


async def events_page(conn: asyncpg.Connection, product_id: str, since: datetime | None,
                      before: datetime | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(EVENTS_PAGE, product_id, since, before, limit)


# ------------------------------------------------------------------ the products overview
# One round trip for every product each (unnest + LATERAL, on the primary key and the
# anomalies_time index). The sparkline is anchored at each product's own newest feature row,
# like `series`; only scored rows, the lowest score of each bucket.
SPARKS = """
SELECT p.product_id, s.time, s.score_raw
FROM unnest($1::text[]) AS p(product_id)
CROSS JOIN LATERAL (SELECT max(time) AS end_time FROM features
                    WHERE product_id = p.product_id) e
CROSS JOIN LATERAL (
    SELECT max(f.time) AS time, min(f.score_raw) AS score_raw
    FROM features f
    WHERE f.product_id = p.product_id AND f.score_raw IS NOT NULL
      AND f.time > e.end_time - make_interval(secs => $2)
    GROUP BY date_bin(make_interval(secs => $3), f.time, TIMESTAMPTZ '2000-01-01 00:00:00+00')
) s
ORDER BY p.product_id, s.time
"""

LAST_EVENTS = """
SELECT p.product_id, a.start_time, a.end_time, a.peak_score, a.explanation
FROM unnest($1::text[]) AS p(product_id)
CROSS JOIN LATERAL (
    SELECT start_time, end_time, peak_score, explanation FROM anomalies
    WHERE product_id = p.product_id ORDER BY start_time DESC LIMIT 1
) a
"""


async def sparks(conn: asyncpg.Connection, products: list[str], seconds: float, points: int
                 ) -> dict[str, list[asyncpg.Record]]:
    """Per product, its last `seconds` of scores (event time) in at most `points` buckets."""
    width = seconds / (points - 1)  # aligned buckets: a span can straddle one more
    out: dict[str, list[asyncpg.Record]] = {p: [] for p in products}
    for r in await conn.fetch(SPARKS, products, seconds, width):
        out[r["product_id"]].append(r)
    return out


async def last_events(conn: asyncpg.Connection, products: list[str]
                      ) -> dict[str, asyncpg.Record]:
    """Per product that has one, its newest anomaly event."""
    return {r["product_id"]: r for r in await conn.fetch(LAST_EVENTS, products)}
