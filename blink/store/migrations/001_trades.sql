-- The trade tape: one row per Coinbase trade, keyed by the per-product consecutive trade id.
CREATE TABLE IF NOT EXISTS trades (
    product_id  text        NOT NULL,
    trade_id    bigint      NOT NULL,
    time        timestamptz NOT NULL,
    price       numeric     NOT NULL,
    size        numeric     NOT NULL,
    side        text        NOT NULL CHECK (side IN ('buy', 'sell')),
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, trade_id)
);
CREATE INDEX IF NOT EXISTS trades_product_time ON trades (product_id, time);
