"""Inputs for the backtest tests: fast settings and a generated tick file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from blink.feeds import synthetic
from blink.formats import ticks

START = datetime(2026, 1, 1, tzinfo=UTC)
# grid step 0.25 s: the features are ready after READY steps (150 s), the lagged regime
# window fills within the file (the default 1 s step would need 10 of its 15 minutes);
# a budget of 500 events a day is ~5 in the file's 15 minutes (2 a day: none expected)
FAST = {"train_min_rows": 300, "retrain_seconds": 240.0, "n_estimators": 20,
        "max_samples": 64, "min_history_seconds": 60.0, "feature_scale": 0.25,
        "alerts_per_day": 500.0}


def write_tick_file(path: Path) -> Path:
    """15 minutes of synthetic ticks (~6,000 trades, anomalies from minute 2.5 on)."""
    trades, _ = synthetic.generate(5, START, 900)
    ticks.write_ticks(path, trades)
    return path
