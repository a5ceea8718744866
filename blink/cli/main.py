"""Command line: `python -m blink [run|train|record|backtest|evaluate|settings] ...`.

Configuration errors print one line naming the key and the value and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from blink import __version__, config
from blink.cli import args as cli_args
from blink.runtime import logs

log = logging.getLogger(__name__)

# flags shared by every subcommand that builds Settings: flag -> Settings field
COMMON = {
    "--data-dir": "data_dir", "--pair": "pair", "--pairs": "pairs", "--pg-dsn": "pg_dsn",
    "--log-level": "log_level", "--log-format": "log_format",
    "--mlflow-tracking-uri": "mlflow_tracking_uri",
}
RUN = {
    "--host": "host", "--port": "port", "--role": "role", "--source": "source",
    "--replay": "replay_file", "--speed": "speed", "--seed": "seed",
    "--redis-url": "redis_url",
}

# subcommand -> (module with `main(settings, args) -> int`, help)
COMMANDS = {
    "run": ("blink.cli.run", "run the service (default)"),
    "train": ("blink.cli.train", "train once on the stored tape and register the model"),
    "record": ("blink.cli.record", "record the live feed to a tick CSV for replay"),
    "backtest": ("blink.cli.backtest", "replay a file through the live pipeline, write scores"),
    "evaluate": ("blink.cli.evaluate",
                 "backtest, then score detections against labelled windows"),
    "settings": ("blink.cli.settings",
                 "print every setting (resolved values, or --table for markdown)"),
}


def _add_flags(p: argparse.ArgumentParser, table: dict[str, str]) -> None:
    for flag, name in table.items():
        meta = config.FIELDS[name].metadata
        p.add_argument(flag, dest=f"setting_{name}", metavar=name.split("_")[-1].upper(),
                       default=argparse.SUPPRESS,
                       help=f"{meta['help']} (env {meta['env']})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m blink", description="Blink: realtime BTC-USD anomaly detector.")
    parser.add_argument("--version", action="version", version=f"blink {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (default ./config.toml)")
    _add_flags(parser, COMMON | RUN)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                       help="config file (default ./config.toml)")
        _add_flags(p, COMMON | (RUN if name == "run" else {}))
        cli_args.add(name, p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "run"
    flags = {k.removeprefix("setting_"): v for k, v in vars(args).items()
             if k.startswith("setting_")}
    try:
        settings = config.load(getattr(args, "config", None), flags=flags)
    except config.ConfigError as e:
        print(f"blink: config error: {e}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format)
    for secret in (settings.api_token, config.redact_secret(settings.pg_dsn),
                   config.redact_secret(settings.redis_dsn),
                   config.redact_secret(settings.mlflow_tracking_uri)):
        logs.add_secret(secret)
    module = importlib.import_module(COMMANDS[command][0])
    try:
        return int(module.main(settings, args) or 0)
    except config.ConfigError as e:
        print(f"blink: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
