"""`python -m blink settings [--table]`: every setting, resolved (secrets masked)."""

from __future__ import annotations

import argparse

from blink import config


def main(settings: config.Settings, args: argparse.Namespace) -> int:
    if args.table:
        print(table_markdown())
        return 0
    for name in config.FIELDS:
        value = getattr(settings, name)
        if name in ("api_token",) and value:
            value = "***"
        if name in ("pg_dsn", "redis_url", "mlflow_tracking_uri"):
            value = config.redact(str(value))
        print(f"{name} = {value}")
    return 0


def table_markdown() -> str:
    """The README's settings table, generated from the declarations (`blink.config.declared`)."""
    rows = ["| key (config.toml) | environment | default | what it does |",
            "|---|---|---|---|"]
    for f in config.FIELDS.values():
        default = f.default if not isinstance(f.default, tuple) else ",".join(f.default)
        rows.append(f"| `{f.metadata['toml']}` | `{f.metadata['env']}` | `{default}` | "
                    f"{f.metadata['help']} |")
    return "\n".join(rows)
