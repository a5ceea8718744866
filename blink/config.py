"""One frozen Settings object: built-in defaults < config.toml < environment < flags.

Every setting is declared once below with its TOML key, its environment name and a line of
help; the README table is generated from the same declarations (`python -m blink settings`).
A bad value raises ConfigError naming the key and the value; the CLI prints it and exits 2.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    pair: str = _s("BTC-USD", "PAIR", "pair", "Product to ingest and score.")
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
    threshold_quantile: float = _s(0.999, "BLINK_THRESHOLD_QUANTILE", "model.threshold_quantile",
                                   "Anomaly threshold: this quantile of training anomaly scores.")
    holdout_fraction: float = _s(0.1, "BLINK_HOLDOUT_FRACTION", "model.holdout_fraction",
                                 "Most recent share of training rows held out for the checks.")
    max_holdout_rate_factor: float = _s(10.0, "BLINK_MAX_HOLDOUT_RATE_FACTOR",
                                        "model.max_holdout_rate_factor",
                                        "No promotion if the held-out anomaly rate exceeds this "
                                        "multiple of the expected rate (1 - threshold_quantile).")
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

    @property
    def schema(self) -> str:
        """Live trades live in `public`; replayed and synthetic ones in their own schema."""
        return "public" if self.source == "coinbase" else self.source


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
BY_TOML = {f.metadata["toml"]: f for f in FIELDS.values()}


def _convert(f: dataclasses.Field, raw: Any, origin: str) -> Any:
    label = f"{origin}={raw!r}"
    typ = f.type
    try:
        if typ == "bool":
            value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        elif typ == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif typ == "float":
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        elif typ == "Path":
            value = Path(os.path.expanduser(str(raw)))
        elif typ.startswith("tuple"):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            value = tuple(str(i).strip() for i in items if str(i).strip())
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw
    except (TypeError, ValueError):
        raise ConfigError(f"{label}: expected {typ}") from None
    if f.metadata["choices"] and value not in f.metadata["choices"]:
        raise ConfigError(f"{label}: must be one of {', '.join(f.metadata['choices'])}")
    return value


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in BY_TOML:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def normalize_dsn(dsn: str) -> str:
    """Accept the seed's SQLAlchemy form (postgresql+psycopg2://) and plain libpq URLs."""
    if not dsn:
        return dsn
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        raise ConfigError(f"PG_DSN={redact(dsn)!r}: not a postgresql:// URL")
    base = scheme.split("+", 1)[0]
    if base not in ("postgresql", "postgres"):
        raise ConfigError(f"PG_DSN={redact(dsn)!r}: scheme must be postgresql://")
    try:
        urlsplit(dsn).port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"PG_DSN={redact(dsn)!r}: bad port") from None
    return f"postgresql://{rest}"


def redact(url: str) -> str:
    """Hide the password of a URL (for logs and error messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _validate(s: Settings) -> None:
    def bad(name: str, why: str) -> ConfigError:
        f = FIELDS[name]
        return ConfigError(f"{f.metadata['env']}={getattr(s, name)!r}: {why}")

    if not 0 < s.port < 65536:
        raise bad("port", "port out of range 1-65535")
    if not 0 < s.redis_port < 65536:
        raise bad("redis_port", "port out of range 1-65535")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise bad("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    if not s.roles or not s.roles <= {"ingest", "api", "train"}:
        raise bad("role", f"must be a comma list of {', '.join(ROLES)}")
    for name in ("coinbase_ws_url",):
        if not getattr(s, name).startswith(("ws://", "wss://")):
            raise bad(name, "must start with ws:// or wss://")
    for name in ("coinbase_rest_url",):
        if not getattr(s, name).startswith(("http://", "https://")):
            raise bad(name, "must start with http:// or https://")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise bad("redis_url", "must start with redis://, rediss:// or unix://")
    for name in ("speed", "retention_days", "train_hours", "min_trades"):
        if getattr(s, name) < 0:
            raise bad(name, "must not be negative")
    for name in ("watchdog_seconds", "rest_rate", "writer_batch", "writer_flush_ms",
                 "writer_queue", "feature_cadence_seconds", "retrain_seconds", "n_estimators",
                 "max_samples", "registry_poll_seconds", "max_score_rows", "max_body_bytes"):
        if getattr(s, name) <= 0:
            raise bad(name, "must be positive")
    for name in ("reconnect_base_seconds", "reconnect_cap_seconds", "hold_seconds"):
        if not getattr(s, name) > 0:
            raise bad(name, "must be positive")
    if not s.feature_scale > 0:
        raise bad("feature_scale", "must be positive")
    if not 0 < s.max_features <= 1:
        raise bad("max_features", "must be in (0, 1]")
    if not 0.5 < s.threshold_quantile < 1:
        raise bad("threshold_quantile", "must be in (0.5, 1)")
    if not 0 < s.holdout_fraction < 0.5:
        raise bad("holdout_fraction", "must be in (0, 0.5)")
    if s.max_holdout_rate_factor < 1:
        raise bad("max_holdout_rate_factor", "must be at least 1")
    if s.source == "replay" and not s.replay_file:
        raise bad("replay_file", "the replay source needs a file (--replay FILE)")


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         flags: Mapping[str, Any] | None = None) -> Settings:
    """Build Settings from defaults < TOML file < environment < flags (field name -> value)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    explicit = path is not None or "BLINK_CONFIG" in env
    path = Path(path or env.get("BLINK_CONFIG", "config.toml"))
    if path.exists():
        try:
            table = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        for key, raw in _flatten(table).items():
            if key not in BY_TOML:
                raise ConfigError(f"{path}: unknown key {key!r}")
            values[BY_TOML[key].name] = _convert(BY_TOML[key], raw, f"{path}:{key}")
    elif explicit:
        raise ConfigError(f"--config={str(path)!r}: file not found")
    for f in FIELDS.values():
        name = f.metadata["env"]
        if name in env and env[name] != "":
            values[f.name] = _convert(f, env[name], name)
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in FIELDS:
            raise ConfigError(f"--{name.replace('_', '-')}={raw!r}: unknown setting")
        values[name] = _convert(FIELDS[name], raw, f"--{name.replace('_', '-')}")
    if "pg_dsn" in values:
        values["pg_dsn"] = normalize_dsn(values["pg_dsn"])
    if "log_level" in values:
        values["log_level"] = values["log_level"].upper()
    settings = Settings(**values)
    _validate(settings)
    return settings


def table_markdown() -> str:
    """The README's settings table, generated from the declarations above."""
    rows = ["| key (config.toml) | environment | default | what it does |",
            "|---|---|---|---|"]
    for f in FIELDS.values():
        default = f.default if not isinstance(f.default, tuple) else ",".join(f.default)
        rows.append(f"| `{f.metadata['toml']}` | `{f.metadata['env']}` | `{default}` | "
                    f"{f.metadata['help']} |")
    return "\n".join(rows)


def redact_secret(url: str) -> str:
    """The password inside a URL, or '' (registered with the log filter)."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
