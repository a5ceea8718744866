"""Every setting, declared once: its default, TOML key, environment name and help line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOURCES = ("coinbase", "replay", "synthetic")
ROLES = ("all", "ingest", "api", "train")


class ConfigError(ValueError):
    """A setting has a bad value; the message names the key and the value."""


def _s(default: Any, env: str, toml: str, help: str, choices: tuple = ()) -> Any:
    return field(default=default, metadata={"env": env, "toml": toml, "help": help,
                                            "choices": choices})


@dataclass(frozen=True, slots=True)
class Settings:
    # --- service ---
    pair: str = _s("BTC-USD", "PAIR", "pair", "Product to ingest and score (one).")
    pairs: tuple[str, ...] = _s((), "PAIRS", "pairs",
                                "Products to ingest and score, a comma list (the first is the "
                                "default of the API and the dashboard); empty = `pair` alone. "
                                "PAIR and PAIRS together are an error.")
    data_dir: Path = _s(Path("data"), "BLINK_DATA_DIR", "data_dir",
                        "Embedded PostgreSQL, MLflow store, spill files.")
    host: str = _s("127.0.0.1", "BLINK_HOST", "http.host", "Address the HTTP server binds.")
    port: int = _s(8000, "BLINK_PORT", "http.port", "HTTP port.")
    role: str = _s("all", "BLINK_ROLE", "role",
                   "Tasks to run: all, or a comma list of ingest, api, train.")
    log_level: str = _s("INFO", "LOG_LEVEL", "log.level", "DEBUG, INFO, WARNING or ERROR.")
    log_format: str = _s("plain", "LOG_FORMAT", "log.format", "plain or json (with extra fields).",
                         ("plain", "json"))
    api_token: str = _s("", "BLINK_API_TOKEN", "http.api_token",
                        "If set, data routes need 'Authorization: Bearer <token>'.")
    max_score_rows: int = _s(1000, "BLINK_MAX_SCORE_ROWS", "http.max_score_rows",
                             "Most rows one POST /score may carry.")
    max_body_bytes: int = _s(1_048_576, "BLINK_MAX_BODY_BYTES", "http.max_body_bytes",
                             "Largest request body accepted (413 above).")
    # --- storage ---
    pg_dsn: str = _s("", "PG_DSN", "db.pg_dsn",
                     "PostgreSQL DSN; empty starts an embedded PostgreSQL in data_dir.")
    retention_days: int = _s(0, "BLINK_RETENTION_DAYS", "db.retention_days",
                             "Delete trades/features older than this many days (0 keeps all).")
    redis_url: str = _s("", "REDIS_URL", "redis.url", "Redis URL; wins over host/port.")
    redis_host: str = _s("", "REDIS_HOST", "redis.host", "Redis host; empty means no Redis.")
    redis_port: int = _s(6379, "REDIS_PORT", "redis.port", "Redis port.")
    redis_prefix: str = _s("", "BLINK_REDIS_PREFIX", "redis.prefix",
                           "Prefix for Blink's Redis keys (share one Redis between Blinks).")
    # --- feed ---
    source: str = _s("coinbase", "BLINK_SOURCE", "feed.source",
                     "Trade source: coinbase, replay or synthetic.", SOURCES)
    replay_file: str = _s("", "BLINK_REPLAY", "feed.replay", "CSV played by the replay source.")
    speed: float = _s(1.0, "BLINK_SPEED", "feed.speed",
                      "Replay/synthetic pace as a multiple of real time; 0 = as fast as possible.")
    seed: int = _s(7, "BLINK_SEED", "feed.seed", "Seed of the synthetic source.")
    coinbase_ws_url: str = _s("wss://ws-feed.exchange.coinbase.com", "BLINK_COINBASE_WS_URL",
                              "feed.coinbase_ws_url", "Coinbase Exchange websocket.")
    coinbase_rest_url: str = _s("https://api.exchange.coinbase.com", "BLINK_COINBASE_REST_URL",
                                "feed.coinbase_rest_url", "Coinbase Exchange REST (backfill).")
    watchdog_seconds: float = _s(15.0, "BLINK_WATCHDOG_SECONDS", "feed.watchdog_seconds",
                                 "Reconnect when no frame (heartbeats included) for this long.")
    heartbeat_grace_seconds: float = _s(3.0, "BLINK_HEARTBEAT_GRACE_SECONDS",
                                        "feed.heartbeat_grace_seconds",
                                        "How long a heartbeat may stay ahead of the tape.")
    backfill_horizon_hours: float = _s(24.0, "BLINK_BACKFILL_HORIZON_HOURS",
                                       "feed.backfill_horizon_hours",
                                       "Longest downtime refilled from REST on start-up.")
    rest_rate: float = _s(4.0, "BLINK_REST_RATE", "feed.rest_rate",
                          "REST requests per second during backfill (Coinbase allows 10).")
    reconnect_base_seconds: float = _s(1.0, "BLINK_RECONNECT_BASE_SECONDS",
                                       "feed.reconnect_base_seconds",
                                       "First reconnect backoff (full jitter, doubling).")
    reconnect_cap_seconds: float = _s(30.0, "BLINK_RECONNECT_CAP_SECONDS",
                                      "feed.reconnect_cap_seconds", "Longest reconnect backoff.")
    hold_seconds: float = _s(10.0, "BLINK_HOLD_SECONDS", "feed.hold_seconds",
                             "Longest wait for a hole to fill before features move past it.")
    # --- first start (time to the first score) ---
    # 3 h: the first fit needs `train_min_rows` warm rows; counted one per event-time second
    # that is 5,000 s (1.4 h) after the 10-minute windows warm up, so 3 h leaves ~2x margin for
    # quiet seconds and the held-out 10 %. From REST it is ~75,000 trades = ~76 pages: ~20 s at
    # `rest_rate` 4/s (~8 s at Coinbase's 10/s), far inside the 3-minute target.
    bootstrap_hours: float = _s(3.0, "BLINK_BOOTSTRAP_HOURS", "feed.bootstrap_hours",
                                "History loaded before the first score on an empty tape (live: "
                                "from REST; synthetic/replay: played at once); 0 turns it off.")
    # --- tape writer ---
    writer_batch: int = _s(1000, "BLINK_WRITER_BATCH", "writer.batch", "Trades per DB batch.")
    writer_flush_ms: int = _s(100, "BLINK_WRITER_FLUSH_MS", "writer.flush_ms",
                              "Longest wait before a partial batch is written.")
    writer_queue: int = _s(100_000, "BLINK_WRITER_QUEUE", "writer.queue",
                           "Trades buffered in memory before spilling to disk.")
    # --- features / scoring ---
    feature_cadence_seconds: float = _s(1.0, "BLINK_FEATURE_CADENCE_SECONDS",
                                        "features.cadence_seconds",
                                        "Event-time interval between stored feature rows.")
    min_trades: int = _s(30, "BLINK_MIN_TRADES", "features.min_trades",
                         "Trades needed in the longest window before scoring.")
    min_history_seconds: float = _s(300.0, "BLINK_MIN_HISTORY_SECONDS",
                                    "features.min_history_seconds",
                                    "Event time the longest window must span before scoring.")
    feature_scale: float = _s(1.0, "BLINK_FEATURE_SCALE", "features.scale",
                              "Multiply every feature window (backtests on slower series).")
    # --- model / training ---
    mlflow_tracking_uri: str = _s("", "MLFLOW_TRACKING_URI", "model.mlflow_tracking_uri",
                                  "MLflow store; empty means sqlite in data_dir.")
    model_name: str = _s("blink_iforest", "MODEL_NAME", "model.name",
                         "Registered model name; the alias 'production' is served.")
    train_hours: float = _s(12.0, "BLINK_TRAIN_HOURS", "model.train_hours",
                            "Hours of tape each retrain uses.")
    train_min_rows: int = _s(5000, "BLINK_TRAIN_MIN_ROWS", "model.train_min_rows",
                             "Feature rows needed before the first fit.")
    retrain_seconds: float = _s(3600.0, "BLINK_RETRAIN_SECONDS", "model.retrain_seconds",
                                "Event-time interval between retrains.")
    n_estimators: int = _s(100, "BLINK_N_ESTIMATORS", "model.n_estimators", "Trees in the forest.")
    max_samples: int = _s(256, "BLINK_MAX_SAMPLES", "model.max_samples", "Rows per tree.")
    max_features: float = _s(1.0, "BLINK_MAX_FEATURES", "model.max_features",
                             "Fraction of features per tree.")
    random_state: int = _s(42, "BLINK_RANDOM_STATE", "model.random_state", "Fit seed.")
    alerts_per_day: float = _s(2.0, "BLINK_ALERTS_PER_DAY", "model.alerts_per_day",
                               "Alert budget: the threshold gives this many anomaly events a "
                               "day on the calibration window (tail modelled: holds out of "
                               "sample).")
    calibration_hours: float = _s(24.0, "BLINK_CALIBRATION_HOURS", "model.calibration_hours",
                                  "Hours of tape the threshold is calibrated on (at least "
                                  "train_hours are read).")
    trim_fraction: float = _s(0.05, "BLINK_TRIM_FRACTION", "model.trim_fraction",
                              "Most of the training rows dropped as past anomaly events.")
    model_features: tuple[str, ...] = _s((), "BLINK_MODEL_FEATURES", "model.features",
                                         "Features the model uses (empty: all); backtests of "
                                         "bars and series pick their own.")
    holdout_fraction: float = _s(0.1, "BLINK_HOLDOUT_FRACTION", "model.holdout_fraction",
                                 "Most recent share of training rows held out for the checks.")
    max_holdout_rate_factor: float = _s(10.0, "BLINK_MAX_HOLDOUT_RATE_FACTOR",
                                        "model.max_holdout_rate_factor",
                                        "No promotion if the held-out events exceed (Poisson "
                                        "99.9 %) this multiple of the alert budget.")
    registry_poll_seconds: float = _s(30.0, "BLINK_REGISTRY_POLL_SECONDS",
                                      "model.registry_poll_seconds",
                                      "How often the served alias is re-resolved.")
    event_gap_seconds: float = _s(120.0, "BLINK_EVENT_GAP_SECONDS", "model.event_gap_seconds",
                                  "Anomalous scores closer than this form one anomaly event.")
    # --- alerts ---
    alert_webhooks: tuple[str, ...] = _s((), "BLINK_ALERT_WEBHOOKS", "alerts.webhooks",
                                         "URLs POSTed a JSON message when an event starts/ends.")
    public_url: str = _s("", "BLINK_PUBLIC_URL", "alerts.public_url",
                         "Dashboard base URL put in alerts (default http://host:port).")

    # ---------------------------------------------------------------- derived
    @property
    def mlflow_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.data_dir.resolve() / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> str:
        return (self.data_dir.resolve() / "mlartifacts").as_uri()

    @property
    def redis_dsn(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/0"
        return ""

    @property
    def roles(self) -> frozenset[str]:
        parts = {r.strip() for r in self.role.split(",") if r.strip()}
        return frozenset({"ingest", "api", "train"} if "all" in parts else parts)

    def model_name_for(self, product: str) -> str:
        """The registered model of `product`: `model_name` for the first product (with one
        product, exactly `model_name`, as always), `<model_name>-<product>` for the others."""
        return self.model_name if product == self.pairs[0] else f"{self.model_name}-{product}"

    def for_product(self, product: str) -> Settings:
        """The settings one product's pipeline sees: that product alone, its model's name."""
        if product not in self.pairs:
            raise ConfigError(f"PAIRS={','.join(self.pairs)!r}: no product {product!r}")
        return dataclasses.replace(self, pair=product, pairs=(product,),
                                   model_name=self.model_name_for(product))

    @property
    def schema(self) -> str:
        """Live trades live in `public`; replayed and synthetic ones in their own schema."""
        return "public" if self.source == "coinbase" else self.source
