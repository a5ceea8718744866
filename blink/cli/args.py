"""The arguments of each subcommand (kept here, light, so `--help` imports nothing heavy)."""

from __future__ import annotations

import argparse


def add(command: str, p: argparse.ArgumentParser) -> None:
    if command == "settings":
        p.add_argument("--table", action="store_true", help="markdown table for the README")
    if command == "record":
        p.add_argument("out", metavar="OUT.csv", help="tick CSV to write (Blink's replay format)")
        p.add_argument("--duration", type=float, metavar="SECONDS", default=None,
                       help="stop after this many seconds (default: until interrupted)")
    if command == "backtest":
        p.add_argument("input", metavar="INPUT", nargs="+",
                       help="files or folders of ticks, OHLCV bars or a series (CSV, .csv.gz, "
                            "Parquet; - for standard input)")
    if command == "evaluate":
        p.add_argument("input", metavar="INPUT", help="ticks, OHLCV bars or a series (CSV, "
                       ".csv.gz, Parquet; - for standard input)")
    if command in ("backtest", "evaluate"):
        p.add_argument("--format", choices=("ticks", "bars", "series"), default=None,
                       help="read the input as this (default: guessed from its columns)")
        p.add_argument("--column", metavar="NAME", default=None,
                       help="the series' value column (default: the only numeric column, "
                            "else close, price or value)")
        p.add_argument("--scale", type=float, default=None, help="feature window scale "
                       "(default: 1 for ticks, from the sampling interval for bars/series)")
        p.add_argument("--retrain-seconds", type=float, default=None, metavar="S",
                       help="event time between retrains (default: the setting, or the rule)")
        p.add_argument("--train-hours", type=float, default=None, metavar="H",
                       help="event time each retrain uses (default: the setting, or the rule)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if command == "backtest":
        p.add_argument("--out", required=True, metavar="OUT",
                       help="scores CSV to write; with several inputs or a folder: a folder, "
                            "one NAME.scores.csv per input")
        p.add_argument("--store", action="store_true",
                       help="also write tape, features and events to the schema 'backtest' "
                            "(one input only)")
        p.add_argument("--mlflow", action="store_true",
                       help="log every fit to MLflow as <model_name>_backtest (one input only)")
    if command == "evaluate":
        p.add_argument("--labels", required=True, metavar="LABELS",
                       help="anomaly windows: JSON [{start, end, kind}] or CSV start,end[,kind]")
        p.add_argument("--report", default=None, metavar="DIR",
                       help="write report.md and report.png here")
        p.add_argument("--baseline", action="store_true",
                       help="score with the rolling z-score baseline instead of the forest")
    if command == "train":
        from blink.trade import parse_time  # light: the Trade type's ISO-8601 parser

        p.add_argument("--end", type=parse_time, metavar="TIME", default=None,
                       help="train on the tape up to this event time, ISO-8601 with a zone "
                            "(default: the newest stored trade)")
