"""`python -m blink settings [--table]`: every setting, resolved (secrets masked)."""

from __future__ import annotations

import argparse

from blink import config


def main(settings: config.Settings, args: argparse.Namespace) -> int:
    if args.table:
        print(config.table_markdown())
        return 0
    for name in config.FIELDS:
        value = getattr(settings, name)
        if name in ("api_token",) and value:
            value = "***"
        if name in ("pg_dsn", "redis_url", "mlflow_tracking_uri"):
            value = config.redact(str(value))
        print(f"{name} = {value}")
    return 0
