-- Anomaly events: consecutive anomalous scores folded into one event.
CREATE TABLE IF NOT EXISTS anomalies (
    id            bigserial   PRIMARY KEY,
    product_id    text        NOT NULL,
    start_time    timestamptz NOT NULL,
    end_time      timestamptz NOT NULL,
    peak_time     timestamptz NOT NULL,
    peak_score    double precision NOT NULL,
    threshold     double precision NOT NULL,
    model_version text,
    explanation   jsonb       NOT NULL DEFAULT '[]',
    points        integer     NOT NULL DEFAULT 1,
    UNIQUE (product_id, start_time)
);
CREATE INDEX IF NOT EXISTS anomalies_time ON anomalies (product_id, start_time DESC);
