"""Window lengths and retrain cadence of a backtest, from the input's sampling interval.

Live ticks (and Tardis ticks) keep the configured settings: the feature windows are seconds of
event time (`feature_scale` 1), retrains hourly on 12 hours. A row stream — OHLCV bars or a
plain `timestamp,value` series, e.g. a metric sampled every 5 minutes — is measured in ROWS
instead. With Δ the median interval between consecutive rows (over the first 1,000 rows):

- **windows**: `scale = SCALE_PER_INTERVAL × Δ` (bars 1/4: one grid step per point of a
  bar's open/low/high/close path, `formats.bars`; series 1: one step per value; on bars z_1
  is a quarter-bar return, z_300 spans 75 bars, the lagged regime window 900 bars);
  `min_history_seconds` is scaled alike;
- **features**: bars' trade counts and sides are made up (four points per bar, the tick
  rule), and so is the timing inside a bar (which of high and low came first, and when), so
  the model uses the price columns that span at least a bar (not `z_1`, a quarter-bar
  return between invented points of that path) and the volume surprise; a plain series has
  no volume either, so the price columns only (`model_features`, logged with the run);
- **events**: anomalous rows fold into one event when closer than `event_gap_seconds`, at
  least GAP_ROWS intervals: the live 120 s is shorter than one sample of a 5-minute series,
  where no two rows could fold and every anomalous sample was an event of its own (each
  counted by the alert budget, each a false alarm when off a window). Not scaled like the
  windows: 120 grid steps (10 h on that series, 30 min on bars) folded separate anomalies
  into events of many hours that "detected" the next window without a fresh alert;
- **retrain**: every `RETRAIN_ROWS × Δ` of event time (hourly for 1-minute bars), on the
  trailing `TRAIN_ROWS × Δ` (at least the configured `train_hours`); the first fit after
  `FIRST_FIT_ROWS` warm rows (10 hours of 1-minute bars) at most — the live default
  (`train_min_rows`, counted in trades at ~7/s) would never be reached by a day of bars.

`--scale`, `--retrain-seconds` and `--train-hours` override the rule, for any input.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections.abc import Iterable

from blink import features
from blink.config import ConfigError, Settings

ROW_STREAMS = ("bars", "series")
SAMPLE_ROWS = 1000
# one grid step per bar path point (formats/bars.py: 4 a bar), one per point of a series
SCALE_PER_INTERVAL = {"bars": 0.25, "series": 1.0}
MODEL_FEATURES = {"bars": (*(f for f in features.PRICE_FEATURES if f != "z_1"),
                           "volume_surprise_60"),
                  "series": features.PRICE_FEATURES}
RETRAIN_ROWS = 60
TRAIN_ROWS = 2400  # 40 hours of 1-minute bars
FIRST_FIT_ROWS = 600
GAP_ROWS = 2


def interval(rows: Iterable) -> float | None:
    """Median positive interval (s) between the first SAMPLE_ROWS rows' first trades (a bar's
    start: a bar of one trade, flat or without volume, has no other point at its end)."""
    ts = [row.trades[0].ts for row in itertools.islice(rows, SAMPLE_ROWS) if row.trades]
    steps = [b - a for a, b in itertools.pairwise(ts) if b > a]
    return statistics.median(steps) if steps else None


def plan(settings: Settings, kind: str, rows: Iterable, *, scale: float | None = None,
         retrain_seconds: float | None = None, train_hours: float | None = None) -> Settings:
    """Settings for backtesting `rows` of format `kind` (the rule above; flags win)."""
    for name, value in (("--scale", scale), ("--retrain-seconds", retrain_seconds),
                        ("--train-hours", train_hours)):
        if value is not None and not value > 0:
            raise ConfigError(f"{name}={value!r}: must be positive")
    derived: dict = {}
    delta = interval(rows) if kind in ROW_STREAMS else None
    if delta:
        auto = SCALE_PER_INTERVAL[kind] * delta
        derived = {"feature_scale": auto,
                   "model_features": settings.model_features or MODEL_FEATURES[kind],
                   "retrain_seconds": RETRAIN_ROWS * delta,
                   "train_hours": max(settings.train_hours, TRAIN_ROWS * delta / 3600),
                   "train_min_rows": min(settings.train_min_rows, FIRST_FIT_ROWS),
                   "event_gap_seconds": max(settings.event_gap_seconds, GAP_ROWS * delta)}
    if scale is not None:
        derived["feature_scale"] = scale
    if retrain_seconds is not None:
        derived["retrain_seconds"] = retrain_seconds
    if train_hours is not None:
        derived["train_hours"] = train_hours
    factor = derived.get("feature_scale", settings.feature_scale) / settings.feature_scale
    derived["min_history_seconds"] = settings.min_history_seconds * factor
    return dataclasses.replace(settings, **derived)


def windows(settings: Settings) -> dict[str, float]:
    return features.windows(settings.feature_scale)


def describe(settings: Settings) -> str:
    w = windows(settings)
    return (f"windows {min(w.values()):g}-{max(w.values()):g} s (scale "
            f"{settings.feature_scale:g}), retrain every {settings.retrain_seconds:g} s on "
            f"{settings.train_hours:g} h, first fit after {settings.train_min_rows} rows")
