"""Every Prometheus metric Blink exposes, in one registry per application (no globals).

Series that belong to one product (scores, anomaly flag, trade rate, anomalies, features, the
served model, retrains) carry a `product` label (the product id, e.g. BTC-USD); the rest are
the process's (the feed's and the tape's counters included).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FAST = (0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05)
DB = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # feed and tape
        self.trades_ingested = Counter("blink_trades_ingested", "Trades accepted into the tape",
                                       ["source", "product"], registry=r)
        self.feed_reconnects = Counter("blink_feed_reconnects", "Websocket reconnects by reason",
                                       ["reason"], registry=r)
        self.feed_gaps = Counter("blink_feed_gaps", "Gaps detected in trade ids", ["product"],
                                 registry=r)
        self.trades_backfilled = Counter("blink_trades_backfilled",
                                         "Trades recovered over REST", ["product"], registry=r)
        self.feed_bad_messages = Counter("blink_feed_bad_messages",
                                         "Frames counted and skipped, by kind", ["kind"],
                                         registry=r)
        self.feed_duplicates = Counter("blink_feed_duplicates", "Trades dropped as duplicates",
                                       ["product"], registry=r)
        self.feed_lag = Gauge("blink_feed_lag_seconds", "Now minus the newest trade time",
                              ["product"], registry=r)
        self.feed_behind = Gauge("blink_feed_behind_seconds",
                                 "Now minus the exchange time of the last heartbeat read "
                                 "(how far reading lags the exchange)", registry=r)
        self.writer_queue_depth = Gauge("blink_writer_queue_depth",
                                        "Trades waiting to be written", registry=r)
        self.writer_spilled = Counter("blink_writer_spilled", "Trades spilled to disk",
                                      registry=r)
        self.writer_errors = Counter("blink_writer_errors", "Failed database writes", registry=r)
        self.db_write_seconds = Histogram("blink_db_write_seconds", "Time per batch write",
                                          buckets=DB, registry=r)
        # scoring and model: the per-product series carry a `product` label
        self.predictions = Counter("blink_predictions", "Feature vectors scored",
                                   ["path", "product"], registry=r)
        self.predict_latency = Histogram("blink_predict_latency_seconds",
                                         "Time spent scoring (compiled forest only)",
                                         buckets=FAST, registry=r)
        self.anomalies = Counter("blink_anomalies", "Anomaly events started", ["product"],
                                 registry=r)
        self.score = Gauge("blink_score_raw", "The latest score_raw (lower = more anomalous)",
                           ["product"], registry=r)
        self.anomaly = Gauge("blink_anomaly", "1 while the latest score is anomalous",
                             ["product"], registry=r)
        self.trade_rate = Gauge("blink_trade_rate", "Trades per second of event time over the "
                                "last minute", ["product"], registry=r)
        self.feature_rows_dropped = Counter("blink_feature_rows_dropped",
                                            "Feature rows dropped (buffer full: database down)",
                                            ["product"], registry=r)
        self.features_age = Gauge("blink_features_age_seconds",
                                  "Wall seconds since the features were last updated",
                                  ["product"], registry=r)
        self.model_info = Gauge("blink_model_info", "The model being served (value 1)",
                                ["product", "version"], registry=r)
        self.model_reloads = Counter("blink_model_reloads", "Models swapped in", ["product"],
                                     registry=r)
        self.training_runs = Counter("blink_training_runs", "Retrains by outcome",
                                     ["outcome", "product"], registry=r)
        self.training_seconds = Histogram("blink_training_seconds", "Retrain duration",
                                          buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
                                          registry=r)
        # side channels
        self.redis_errors = Counter("blink_redis_errors", "Failed Redis writes", registry=r)
        self.alerts_sent = Counter("blink_alerts_sent", "Webhook alerts delivered", registry=r)
        self.alert_failures = Counter("blink_alert_failures", "Webhook deliveries that failed",
                                      registry=r)
        self.http_errors = Counter("blink_http_errors", "HTTP 4xx/5xx answers", ["status"],
                                   registry=r)
        # housekeeping
        self.rows_pruned = Counter("blink_rows_pruned", "Rows deleted by retention", ["table"],
                                   registry=r)
