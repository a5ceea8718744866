"""Rolling event-time features: ONE implementation for serving, training and backtests.

`FeatureEngine.update(ts, price, size, taker_buy)` folds one trade in O(1) amortised time
(running sums and Welford moments over event-time windows, pointers into one shared history
compacted in bulk); `values()` reads the features after the newest trade. The state machine
is C (`blink/_features.c`, `Engine`: the per-trade cost bounds ingest and backtests, see
docs/features.md "Cost"); this module names its constants and adds the conveniences.
`batch(...)` runs the very same engine over arrays (`Engine.run`, one C loop), so training
and serving cannot diverge. docs/features.md has the long form; windows are EVENT time,
multiplied by `scale`; a window (t-w, t] holds the trades later than t-w; the as-of price at
t-w is the last trade at or before t-w.

- ``ret_1s/5s/30s/300s`` = R(p_t, p_asof(t-w)): returns from microstructure jumps (1 s) to
  trends (5 min).
- ``vol_60s/600s`` = sqrt(sum r_i^2), r_i = R(p_i, p_i-1), trades in the window: realised
  volatility now vs its regime.
- ``z_30s/300s`` = (p_t - mean p) / std p over the window (0 when every price is equal): the
  distance from the rolling mean in units of recent noise.
- ``ewma_dev_30s`` = R(p_t, m), m the exact EWMA (tau 30 s) of the last-price path: the
  stationary successor of the seed's ``ewma_30s`` (a raw price level).
- ``intensity_60s`` = log(rate_60 / rate_600) of trade counts, ``volume_60s`` the same on size
  (floored at log(1e-3)): activity against its 10-minute baseline.
- ``imbalance_60s`` = (taker-buy - taker-sell size) / size: one-sided aggression (the taker
  bought when Coinbase's maker ``side`` is "sell": `Trade.taker_buy`).

While history is shorter than a window, vol and rates divide by the event time covered (vol
scaled by sqrt(w / covered)): a half-full window must not look like a quiet market.
R(a, b) = log(a / b) for positive prices; a pair with a value <= 0 (metric series, issue 6)
gets (a - b) / max(L, |a|, |b|), L the EWMA of |price| (tau 600 s): scale-free, bounded by 2.
Non-finite input is counted (`rejected`) and skipped; time going backwards is clamped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the engine's constants, defined once in the C source (seconds, multiplied by `scale`)
from blink._features import (  # noqa: F401 (re-exported)
    BASE_WINDOW,  # vol_600s and the baseline of the ratios: the longest window
    COMPACT,  # history entries dropped in bulk once no window points below this
    EWMA_TAU,
    FLAT,  # a window whose std is below FLAT * |mean| is flat: z = 0
    FLOW_WINDOW,  # vol_60s, intensity, volume, imbalance
    LEVEL_TAU,  # robust level L used by R() for non-positive series
    N_FEATURES,
    RATIO_FLOOR,
    RETURN_WINDOWS,
    Z_WINDOWS,
    Engine,
)

FEATURE_NAMES = ("ret_1s", "ret_5s", "ret_30s", "ret_300s", "vol_60s", "vol_600s", "z_30s",
                 "z_300s", "ewma_dev_30s", "intensity_60s", "volume_60s", "imbalance_60s")
assert len(FEATURE_NAMES) == N_FEATURES
WINDOWS = dict(zip(FEATURE_NAMES, (*RETURN_WINDOWS, FLOW_WINDOW, BASE_WINDOW, *Z_WINDOWS,
                                   EWMA_TAU, FLOW_WINDOW, FLOW_WINDOW, FLOW_WINDOW), strict=True))


def windows(scale: float = 1.0) -> dict[str, float]:
    """Feature name -> the event-time window it uses, in seconds (for MLflow params)."""
    return {name: w * scale for name, w in WINDOWS.items()}


class FeatureEngine(Engine):
    """Incremental features over event-time windows (see the module docstring).

    `FeatureEngine(scale=1.0, min_history_seconds=300.0, min_trades=30)`. From the C type:
    `update(ts, price, size, taker_buy)` (positional), `values()` (list in FEATURE_NAMES
    order, NaN before any trade), `not_ready()` (None or "no_features": the longest window
    must span `min_history_seconds` of event time and hold `min_trades` trades),
    `run(ts, price, size, taker, out, rate=None)` (update + values over arrays), and
    `scale`, `min_history`, `min_trades`, `rejected`, `trade_rate`, `last_ts`.
    """

    __slots__ = ()

    @classmethod
    def from_settings(cls, settings) -> FeatureEngine:
        return cls(settings.feature_scale, settings.min_history_seconds, settings.min_trades)

    @property
    def ready(self) -> bool:
        return self.not_ready() is None

    def vector(self) -> np.ndarray:
        return np.array(self.values(), dtype=np.float64)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values(), strict=True))


def batch(ts: Sequence[float], price: Sequence[float], size: Sequence[float],
          taker_buy: Sequence[bool], *, engine: FeatureEngine | None = None,
          **engine_kw) -> np.ndarray:
    """The feature vector after each trade (n x k float64; NaN rows while not ready).

    Runs the engine itself (a fresh one from `engine_kw`, or `engine` to continue from a warm
    state) through `Engine.run`, which equals update() + values() per trade bit for bit.
    """
    eng = engine if engine is not None else FeatureEngine(**engine_kw)
    cols = [np.ascontiguousarray(a, dtype=np.float64) for a in (ts, price, size)]
    flags = np.ascontiguousarray(taker_buy, dtype=bool)
    if len({len(c) for c in (*cols, flags)}) > 1:
        raise ValueError("ts, price, size and taker_buy must have the same length")
    out = np.empty((len(flags), N_FEATURES), dtype=np.float64)
    eng.run(*cols, flags, out)
    return out
