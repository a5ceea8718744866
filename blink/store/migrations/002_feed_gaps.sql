-- Every hole found in the trade ids, how it was found, and whether backfill closed it.
CREATE TABLE IF NOT EXISTS feed_gaps (
    id           bigserial   PRIMARY KEY,
    product_id   text        NOT NULL,
    from_id      bigint      NOT NULL,
    to_id        bigint      NOT NULL,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    filled_at    timestamptz,
    filled_count integer     NOT NULL DEFAULT 0,
    detected_by  text        NOT NULL,
    note         text
);
CREATE INDEX IF NOT EXISTS feed_gaps_open ON feed_gaps (product_id) WHERE filled_at IS NULL;
