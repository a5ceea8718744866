"""Rolling event-time features: ONE implementation for serving, training and backtests.

`FeatureEngine.update(ts, price, size, taker_buy)` folds one trade in O(1) amortised time
(running sums and Welford moments over event-time windows, pointers into one shared history
compacted in bulk); `values()` reads the features after the newest trade. `batch(...)` loops
the very same engine over arrays, so training and serving cannot diverge. docs/features.md
has the long form; windows are EVENT time, multiplied by `scale`; a window (t-w, t] holds
the trades later than t-w; the as-of price at t-w is the last trade at or before t-w.

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

import math
from collections.abc import Sequence

import numpy as np

FEATURE_NAMES = ("ret_1s", "ret_5s", "ret_30s", "ret_300s", "vol_60s", "vol_600s", "z_30s",
                 "z_300s", "ewma_dev_30s", "intensity_60s", "volume_60s", "imbalance_60s")
RETURN_WINDOWS = (1.0, 5.0, 30.0, 300.0)
FLOW_WINDOW = 60.0  # vol_60s, intensity, volume, imbalance
BASE_WINDOW = 600.0  # vol_600s and the baseline of the ratios: the longest window
Z_WINDOWS = (30.0, 300.0)
EWMA_TAU = 30.0
LEVEL_TAU = 600.0  # robust level L used by R() for non-positive series
RATIO_FLOOR = 1e-3
FLAT = 1e-9  # a window whose std is below FLAT * |mean| is flat: z = 0
COMPACT = 4096  # history entries dropped in bulk once no window points below this
WINDOWS = dict(zip(FEATURE_NAMES, (*RETURN_WINDOWS, FLOW_WINDOW, BASE_WINDOW, *Z_WINDOWS,
                                   EWMA_TAU, FLOW_WINDOW, FLOW_WINDOW, FLOW_WINDOW), strict=True))


def windows(scale: float = 1.0) -> dict[str, float]:
    """Feature name -> the event-time window it uses, in seconds (for MLflow params)."""
    return {name: w * scale for name, w in WINDOWS.items()}


class FeatureEngine:
    """Incremental features over event-time windows (see the module docstring)."""

    def __init__(self, scale: float = 1.0, min_history_seconds: float = 300.0,
                 min_trades: int = 30) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        self.scale = scale
        self.min_history = min(min_history_seconds, BASE_WINDOW * scale)
        self.min_trades = min_trades
        self.rejected = 0
        self._ret_w = [w * scale for w in RETURN_WINDOWS]
        self._z_w = [w * scale for w in Z_WINDOWS]
        self._flow_w, self._base_w = FLOW_WINDOW * scale, BASE_WINDOW * scale
        self._ewma_tau, self._level_tau = EWMA_TAU * scale, LEVEL_TAU * scale
        # history entries: (ts, price, log price or None, r^2 from the previous trade, size,
        # signed taker size); pointers below are indexes into it
        self._hist: list[tuple] = []
        self._asof = [0] * len(RETURN_WINDOWS)
        self._flow = [0, 0.0, 0, 0.0, 0.0]  # tail, sum r2, count, size, signed size
        self._base = [0, 0.0, 0, 0.0, 0.0]
        self._z = [[0, 0, 0.0, 0.0] for _ in Z_WINDOWS]  # tail, n, mean, M2 (Welford)
        self._t0 = self._t = 0.0
        self._dropped = 0  # history entries compacted away (absolute index = index + this)
        self._changed = 0  # absolute index of the newest trade whose price differs from the last
        self._p, self._lp = 0.0, None
        self._ewma = self._level = 0.0

    @classmethod
    def from_settings(cls, settings) -> FeatureEngine:
        return cls(settings.feature_scale, settings.min_history_seconds, settings.min_trades)

    # ------------------------------------------------------------------ update
    def _ret(self, p1: float, lp1: float | None, p0: float, lp0: float | None) -> float:
        if lp1 is not None and lp0 is not None:
            return lp1 - lp0
        d = max(self._level, abs(p0), abs(p1))
        return (p1 - p0) / d if d > 0 else 0.0

    def update(self, ts: float, price: float, size: float, taker_buy: bool) -> None:
        """Fold one trade in (trade-id order; event time `ts` in epoch seconds)."""
        if not (math.isfinite(ts) and math.isfinite(price) and math.isfinite(size)):
            self.rejected += 1
            return
        hist = self._hist
        lp = math.log(price) if price > 0 else None
        if hist:
            if ts < self._t:
                ts = self._t
            dt = ts - self._t
            if dt > 0:  # exact EWMAs of the step path p(t) held since the previous trade
                self._ewma += (1.0 - math.exp(-dt / self._ewma_tau)) * (self._p - self._ewma)
                self._level += (1.0 - math.exp(-dt / self._level_tau)) * (
                    abs(self._p) - self._level)
            r = self._ret(price, lp, self._p, self._lp)
            if price != self._p:
                self._changed = self._dropped + len(hist)
        else:
            self._t0, self._ewma, self._level, r = ts, price, abs(price), 0.0
        r2 = r * r
        signed = size if taker_buy else -size
        hist.append((ts, price, lp, r2, size, signed))
        self._t, self._p, self._lp = ts, price, lp
        last = len(hist) - 1

        asof = self._asof
        for k, w in enumerate(self._ret_w):
            cut, h = ts - w, asof[k]
            while h < last and hist[h + 1][0] <= cut:
                h += 1
            asof[k] = h

        for sw, w in ((self._flow, self._flow_w), (self._base, self._base_w)):
            tail, s_r2, n, vol, signed_vol = sw
            cut = ts - w
            while tail < last and hist[tail][0] <= cut:
                old = hist[tail]
                s_r2, n, vol, signed_vol = s_r2 - old[3], n - 1, vol - old[4], signed_vol - old[5]
                tail += 1
            if tail == last:  # window emptied: restart the sums exactly (no drift)
                s_r2, n, vol, signed_vol = 0.0, 0, 0.0, 0.0
            sw[:] = tail, s_r2 + r2, n + 1, vol + size, signed_vol + signed

        for zw, w in zip(self._z, self._z_w, strict=True):
            tail, n, mean, m2 = zw
            cut = ts - w
            while tail < last and hist[tail][0] <= cut:
                x = hist[tail][1]
                n -= 1
                if n:
                    old_mean = mean
                    mean -= (x - mean) / n
                    m2 -= (x - mean) * (x - old_mean)
                tail += 1
            if tail == last:
                n, mean, m2 = 0, 0.0, 0.0
            n += 1
            if self._changed <= self._dropped + tail:  # one price throughout: exactly flat
                zw[:] = tail, n, price, 0.0
                continue
            d = price - mean
            mean += d / n
            zw[:] = tail, n, mean, m2 + d * (price - mean)

        if self._base[0] > COMPACT:
            self._compact()

    def _compact(self) -> None:
        cut = min(self._base[0], self._flow[0], *self._asof, *(z[0] for z in self._z))
        if cut <= COMPACT:
            return
        del self._hist[:cut]
        self._dropped += cut
        self._asof = [h - cut for h in self._asof]
        for window in (self._base, self._flow, *self._z):
            window[0] -= cut

    # ------------------------------------------------------------------ read
    def not_ready(self) -> str | None:
        """None when ready, else "no_features": the longest window must span
        `min_history_seconds` of event time and hold `min_trades` trades."""
        if not self._hist or self._t - self._t0 < self.min_history \
                or self._base[2] < self.min_trades:
            return "no_features"
        return None

    @property
    def ready(self) -> bool:
        return self.not_ready() is None

    @property
    def trade_rate(self) -> float:
        """Trades per second of event time over the flow window (60 s at scale 1)."""
        return self._flow[2] / self._span(self._flow_w) if self._hist else 0.0

    @property
    def last_ts(self) -> float | None:
        return self._t if self._hist else None

    def values(self) -> list[float]:
        """The features after the newest trade, in FEATURE_NAMES order (valid once ready)."""
        if not self._hist:
            return [math.nan] * len(FEATURE_NAMES)
        hist, p, lp = self._hist, self._p, self._lp
        out = [self._ret(p, lp, hist[h][1], hist[h][2]) for h in self._asof]
        f, b = self._flow, self._base
        span_f, span_b = self._span(self._flow_w), self._span(self._base_w)
        out.append(math.sqrt(f[1] * self._flow_w / span_f) if f[1] > 0 else 0.0)
        out.append(math.sqrt(b[1] * self._base_w / span_b) if b[1] > 0 else 0.0)
        for _, n, mean, m2 in self._z:
            std = math.sqrt(m2 / n) if m2 > 0 else 0.0
            out.append((p - mean) / std if std > FLAT * abs(mean) else 0.0)
        out.append(self._ret(p, lp, self._ewma,
                             math.log(self._ewma) if lp is not None and self._ewma > 0 else None))
        out.append(_log_ratio(f[2] / span_f, b[2] / span_b))
        out.append(_log_ratio(f[3] / span_f, b[3] / span_b))
        out.append(f[4] / f[3] if f[3] > 0 else 0.0)
        return out

    def _span(self, w: float) -> float:
        """Event time a window really covers: w, or less while history is shorter (counted
        from the first trade, and never below min_history_seconds: not ready before that)."""
        span = min(w, max(self._t - self._t0, self.min_history))
        return span if span > 0 else w

    def vector(self) -> np.ndarray:
        return np.array(self.values(), dtype=np.float64)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values(), strict=True))


def _log_ratio(rate: float, baseline: float) -> float:
    return math.log(max(rate / baseline, RATIO_FLOOR)) if baseline > 0 else 0.0


def batch(ts: Sequence[float], price: Sequence[float], size: Sequence[float],
          taker_buy: Sequence[bool], *, engine: FeatureEngine | None = None,
          **engine_kw) -> np.ndarray:
    """The feature vector after each trade (n x k float64; NaN rows while not ready).

    Runs `FeatureEngine.update` itself (a fresh engine from `engine_kw`, or `engine` to
    continue from a warm state), so it equals the incremental path exactly.
    """
    eng = engine if engine is not None else FeatureEngine(**engine_kw)
    cols = [np.asarray(a, dtype=np.float64).tolist() for a in (ts, price, size)]
    flags = np.asarray(taker_buy, dtype=bool).tolist()
    nan_row = [math.nan] * len(FEATURE_NAMES)
    rows = []
    update, values, not_ready = eng.update, eng.values, eng.not_ready
    for t, p, s, tb in zip(*cols, flags, strict=True):
        update(t, p, s, tb)
        rows.append(nan_row if not_ready() else values())
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES))
