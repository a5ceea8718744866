"""Rolling event-time features: ONE implementation for serving, training and backtests.

`FeatureEngine.update(ts, price, size, taker_buy)` folds one trade in O(1) (plus O(1) per grid
step crossed); `values()` reads the features after the newest trade. The state machine is C
(`blink/_features_engine.h`, the `Engine` type in `blink/_features.c`); `batch(...)` runs the
very same engine over arrays (`Engine.run`, one C loop), so training and serving cannot
diverge. docs/features.md has every formula; in short, on an event-time grid of step g =
`scale` seconds (k = the newest trade's step, P_s the closing log price of step s, R() the
return rule below):

- ``z_1/5/30/300`` = R(P_k, P_{k-h}) / sigma_h: the h-step return in units of the CURRENT
  volatility. sigma_h from bipower variation BV_h = (pi/2) mean |r_h(s)| |r_h(s-h)| over the
  regime window s in (k-LAG-REGIME, k-LAG] (LAGGED: a jump inflates neither bipower nor its
  own yardstick); sigma_30 = sqrt(BV_30), sigma_300 = sigma_30 sqrt(10), sigma_1/5 =
  max(sqrt(BV_h), sigma_30 sqrt(h/30)).
- ``volratio_60`` = max(0, 1/2 log(mean r_1^2 over the last FLOW steps / sigma_1^2)): a
  volatility burst, as log of "short volatility / usual".
- ``volume_surprise_60`` = max(0, log(V_60 + 1e-8) - regime mean of log(V_60 + 1e-8)):
  volume against its own lagged regime; ``count_surprise_60`` the same on trade counts
  (log(N_60 + 1)) against the RECENT steps before the flow window: a surge of activity
  (none of those windows overlapping a silence).
- ``imbalance_60`` = (taker-buy - taker-sell volume) / volume over the last FLOW steps.

R(a, b) = log(a / b) for positive prices; a pair with a value <= 0 (metric series) gets
(a - b) / max(L, |a|, |b|), L the EWMA of |price| (tau LEVEL_TAU steps): scale-free.
Non-finite input is counted (`rejected`) and skipped; time going backwards is clamped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the engine's constants, defined once in the C source (in grid steps of `scale` seconds)
from blink._features import (  # noqa: F401 (re-exported)
    BV_HORIZONS,  # bipower is measured at the first BV_HORIZONS horizons
    CAP,  # a bipower product enters the regime window capped at CAP x the window's mean
    CAP_MIN,  # once the window holds CAP_MIN products
    EPS_VOLUME,
    FLOW,
    FORMULAS,  # bumped in the C source on every change of meaning the constants do not show
    H_REF,
    HORIZONS,
    LAG,
    LEVEL_TAU,
    N_FEATURES,
    READY,
    RECENT,  # the count's yardstick: the RECENT steps before the flow window
    REGIME,
    RING,
    Engine,
)

FEATURE_NAMES = ("z_1", "z_5", "z_30", "z_300", "volratio_60", "volume_surprise_60",
                 "count_surprise_60", "imbalance_60")
assert len(FEATURE_NAMES) == N_FEATURES
# the price columns: every input has them; the flow columns need real volume and sides
PRICE_FEATURES = FEATURE_NAMES[:5]
# what the features mean, as one string: logged with every model (run meta, MLflow param
# `feature_engine`) and compared at load (`blink.model.registry`): a model trained on another
# engine is not served, even when the feature names are the same
ENGINE = " ".join([
    f"formulas={FORMULAS}", "horizons=" + "/".join(f"{h:g}" for h in HORIZONS),
    *(f"{k}={v:g}" for k, v in (("bv", BV_HORIZONS), ("h_ref", H_REF), ("regime", REGIME),
                                ("lag", LAG), ("cap", CAP), ("cap_min", CAP_MIN),
                                ("flow", FLOW), ("recent", RECENT), ("ready", READY),
                                ("eps_volume", EPS_VOLUME), ("level_tau", LEVEL_TAU)))])
TWO_SIDED = frozenset({"z_1", "z_5", "z_30", "z_300", "imbalance_60"})  # the rest are >= 0
WINDOWS = dict(zip(FEATURE_NAMES, (*HORIZONS, FLOW, FLOW, FLOW, FLOW), strict=True))


def windows(scale: float = 1.0) -> dict[str, float]:
    """Feature name -> the event-time window it uses, in seconds (for MLflow params)."""
    return {name: w * scale for name, w in WINDOWS.items()}


def meta(scale: float = 1.0) -> dict:
    """What a model's run records about its features (checked again when it is loaded)."""
    return {"feature_names": list(FEATURE_NAMES), "feature_engine": ENGINE,
            "feature_windows": windows(scale)}


class FeatureEngine(Engine):
    """Incremental features on the event-time grid (see the module docstring).

    `FeatureEngine(scale=1.0, min_history_seconds=300.0, min_trades=30)`. From the C type:
    `update(ts, price, size, taker_buy)` (positional), `values()` (list in FEATURE_NAMES
    order, NaN before any trade), `not_ready()` (None or "no_features": READY grid steps must
    have closed, `min_history_seconds` of event time passed and `min_trades` trades arrived),
    `run(ts, price, size, taker, out, rate=None)` (update + values over arrays), and
    `scale`, `min_history`, `min_trades`, `rejected`, `trades`, `trade_rate`, `last_ts`.
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


def grid_rows(ts: np.ndarray, step: float) -> np.ndarray:
    """Indexes of the last row of each grid step (ts ascending): one row per step of event
    time, what training and calibration use (busy periods must not outweigh calm ones)."""
    k = np.floor(np.asarray(ts, dtype=np.float64) / step)
    return np.flatnonzero(np.append(k[1:] != k[:-1], True)) if len(k) else np.arange(0)
