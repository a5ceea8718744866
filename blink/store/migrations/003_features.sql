-- Feature vectors (and the score they got) at a fixed event-time cadence.
CREATE TABLE IF NOT EXISTS features (
    product_id    text        NOT NULL,
    time          timestamptz NOT NULL,
    trade_id      bigint      NOT NULL,
    price         double precision NOT NULL,
    vector        jsonb       NOT NULL,
    score_raw     double precision,
    anomaly       boolean,
    model_version text,
    PRIMARY KEY (product_id, time)
);
