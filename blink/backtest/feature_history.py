"""The feature vectors a backtest keeps for its retrains: event time + one row per trade.

Rows go into preallocated numpy blocks (no per-row Python list kept alive: a 12-hour window of
ticks is ~300,000 rows); `window(start, end)` returns the rows with start < ts <= end and
drops the blocks that lie entirely before `start` (event time only moves forward).
"""

from __future__ import annotations

import numpy as np

BLOCK = 16_384


class FeatureHistory:
    def __init__(self, width: int, block: int = BLOCK) -> None:
        self.width, self.block = width, block
        self.count = 0  # rows ever appended
        self._ts: list[np.ndarray] = []
        self._x: list[np.ndarray] = []
        self._fill = block  # rows used in the newest block

    def append(self, ts: float, values) -> None:
        self.extend((ts,), (values,))

    def extend(self, ts, X) -> None:
        """Append rows at once: `ts` (n,), `X` (n, width), block by block."""
        ts, X = np.asarray(ts, dtype=np.float64), np.asarray(X, dtype=np.float64)
        done, n = 0, len(ts)
        while done < n:
            if self._fill == self.block:
                self._ts.append(np.empty(self.block))
                self._x.append(np.empty((self.block, self.width)))
                self._fill = 0
            i = self._fill
            k = min(n - done, self.block - i)
            self._ts[-1][i:i + k] = ts[done:done + k]
            self._x[-1][i:i + k] = X[done:done + k]
            self._fill, done = i + k, done + k
        self.count += n

    def window(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """(ts, rows) with start < ts <= end, oldest first (blocks before `start` are
        dropped). One copy: blocks wholly inside are taken as they are, the others masked."""
        while len(self._ts) > 1 and self._ts[0][-1] <= start:
            del self._ts[0], self._x[0]
        parts, times = [], []
        for k, (ts, x) in enumerate(zip(self._ts, self._x, strict=True)):
            if k == len(self._ts) - 1:
                ts, x = ts[:self._fill], x[:self._fill]
            if len(ts) and ts.min() > start and ts.max() <= end:
                parts.append(x)
                times.append(ts)
            else:
                inside = (ts > start) & (ts <= end)
                parts.append(x[inside])
                times.append(ts[inside])
        if not parts:
            return np.empty(0), np.empty((0, self.width))
        return np.concatenate(times), np.concatenate(parts)
