-- Convert Blink's `trades` into monthly range partitions on `time` (PostgreSQL 13+).
-- See docs/scaling.md for when and why. Stop the ingest process first, then, in the schema
-- Blink uses (`public` for the live tape; add `SET search_path TO replay;` for another one):
--
--   psql "$PG_DSN" -v ON_ERROR_STOP=1 --single-transaction -f docs/partition_trades.sql
--
-- The primary key becomes (product_id, trade_id, time): PostgreSQL requires the partition key
-- in every unique constraint of a partitioned table. Blink's writer uses a bare
-- `ON CONFLICT DO NOTHING`, which works unchanged against the new key.

ALTER TABLE trades RENAME TO trades_unpartitioned;
ALTER TABLE trades_unpartitioned RENAME CONSTRAINT trades_pkey TO trades_unpartitioned_pkey;
ALTER INDEX trades_product_time RENAME TO trades_unpartitioned_product_time;

-- same columns, defaults, NOT NULLs and CHECKs as the migrations made them
CREATE TABLE trades (
    LIKE trades_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (product_id, trade_id, time)
) PARTITION BY RANGE (time);
CREATE INDEX trades_product_time ON trades (product_id, time);

-- one partition per UTC month, from the oldest trade to two months ahead
DO $$
DECLARE
    m timestamp;
BEGIN
    FOR m IN SELECT generate_series(
            date_trunc('month', coalesce((SELECT min(time) FROM trades_unpartitioned), now())
                                AT TIME ZONE 'UTC'),
            date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months',
            interval '1 month')
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF trades FOR VALUES FROM (%L) TO (%L)',
                       'trades_' || to_char(m, 'YYYY_MM'),
                       m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');
    END LOOP;
END $$;
-- catches a trade outside every month (a clock far off); should stay empty
CREATE TABLE trades_default PARTITION OF trades DEFAULT;

INSERT INTO trades SELECT * FROM trades_unpartitioned;
DROP TABLE trades_unpartitioned;
ANALYZE trades;
