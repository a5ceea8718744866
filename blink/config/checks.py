"""The rules a resolved Settings must meet (ranges, URL schemes, roles)."""

from __future__ import annotations

import dataclasses
import re

from blink.config.declared import ROLES, ConfigError, Settings

PRODUCT = re.compile(r"[A-Z0-9]{2,10}-[A-Z0-9]{2,10}")  # Coinbase product ids: BTC-USD, ETH-USDC


def validate(s: Settings) -> None:
    def bad(name: str, why: str) -> ConfigError:
        f = next(f for f in dataclasses.fields(Settings) if f.name == name)
        value = getattr(s, name)
        value = ",".join(value) if isinstance(value, tuple) else value
        return ConfigError(f"{f.metadata['env']}={value!r}: {why}")

    for product in s.pairs:
        if not PRODUCT.fullmatch(product):
            raise bad("pairs", f"{product!r} is not a product id like BTC-USD")
    if len(set(s.pairs)) != len(s.pairs):
        raise bad("pairs", "a product is listed twice")
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
    if not s.alerts_per_day > 0:
        raise bad("alerts_per_day", "must be positive")
    if not 0 <= s.trim_fraction < 0.5:
        raise bad("trim_fraction", "must be in [0, 0.5)")
    if not s.calibration_hours > 0:
        raise bad("calibration_hours", "must be positive")
    if not 0 < s.holdout_fraction < 0.5:
        raise bad("holdout_fraction", "must be in (0, 0.5)")
    if s.max_holdout_rate_factor < 1:
        raise bad("max_holdout_rate_factor", "must be at least 1")
    if not 0 <= s.bootstrap_hours <= s.backfill_horizon_hours:
        raise bad("bootstrap_hours", "must be between 0 and feed.backfill_horizon_hours "
                  f"({s.backfill_horizon_hours:g}): older history is never fetched")
    if s.source == "replay" and not s.replay_file:
        raise bad("replay_file", "the replay source needs a file (--replay FILE)")
