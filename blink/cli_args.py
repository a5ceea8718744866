"""The arguments of each subcommand (kept here, light, so `--help` imports nothing heavy)."""

from __future__ import annotations

import argparse


def add(command: str, p: argparse.ArgumentParser) -> None:
    if command == "settings":
        p.add_argument("--table", action="store_true", help="markdown table for the README")
