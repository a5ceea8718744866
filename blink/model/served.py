"""The model being served: compiled forest + calibrated tails + threshold + explanations.

Score convention (kept everywhere in Blink): `score_raw` HIGHER = MORE NORMAL; a row is
anomalous when `score_raw < threshold`. A trained model (`train_stats["tails"]`, see
`blink.model.tails`) scores a row as

    score_raw = min(0, log10(m) - max_j S_j)

where S_j = -log10 P(as extreme) of each used feature (`columns`) and of the isolation
forest's own anomaly (-score_samples, the walk in C), each against the training rows, m the
number of them: the log10 of the Bonferroni-adjusted smallest tail probability. One number,
one threshold (the alert budget, `blink.model.budget`), the same in the service, the trainer
and the backtest. Without tail tables (the baseline) score_raw is the scorer's own.

`anomaly_score(raw)` maps a score onto [0, 1] with the calibration scores' empirical CDF
(1 - F(raw)): higher = more anomalous, comparable across retrains. `explain(x)` names the
most surprising features in a trader's words (`blink.model.explain`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from blink.model import tails
from blink.model.explain import describe
from blink.model.forest import CompiledForest

QUANTILE_LEVELS = tuple(np.round(np.linspace(0.0, 1.0, 201), 6).tolist())
# an open anomaly event is held by scores past the release level: RELEASE of the way from
# the calibration scores' median to the threshold (on the tails' log10 probabilities, whose
# median is 0, half the threshold: the square root of its probability)
RELEASE = 0.5
# an explanation's terms after the first: in their 1 % tail at least (surprise = -log10 P)
EXPLAIN_MIN = 2.0
FOREST = "forest"  # the name of the forest's own term in the explanations


def training_stats(scores: np.ndarray, tables: dict | None = None,
                   columns: list[int] | None = None, scale: float = 1.0) -> dict:
    """What scoring, explanations and anomaly_score need, JSON-serialisable (logged with the
    run in blink_model.json, next to the threshold)."""
    stats = {
        "quantile_levels": list(QUANTILE_LEVELS),
        "score_quantiles": np.quantile(np.asarray(scores, np.float64), QUANTILE_LEVELS).tolist(),
        "rows": int(len(scores)),
        "scale": float(scale),
    }
    if tables is not None:
        stats["tails"] = tables
        stats["columns"] = list(columns)
    return stats


@dataclass(frozen=True)
class ServedModel:
    forest: CompiledForest  # or any scorer with score_samples / score_one (the baseline)
    feature_names: tuple[str, ...]
    threshold: float  # on score_raw: anomalous when score_raw < threshold
    label: str  # "blink_iforest@production v3" or "run:<run_id>"
    version: str
    trained_at: str
    train_stats: dict = field(default_factory=dict)

    @cached_property
    def _tails(self) -> tuple[tails.Tails, np.ndarray] | None:
        tables = self.train_stats.get("tails")
        if not tables:
            return None
        return tails.Tails(tables), np.asarray(self.train_stats["columns"], dtype=np.int64)

    def _terms(self, X: np.ndarray) -> tuple[tails.Tails, np.ndarray, np.ndarray]:
        """(tails, the used columns of the rows, the forest's score_samples of them)."""
        t, cols = self._tails
        used = np.atleast_2d(np.asarray(X, dtype=np.float64))[:, cols]
        return t, used, self.forest.score_samples(used)

    def surprises(self, X: np.ndarray) -> np.ndarray:
        """S_j of every row: the used features' then the forest's (n x (k + 1))."""
        t, used, forest = self._terms(X)
        return t.surprise(used, forest)

    def score(self, X: np.ndarray) -> np.ndarray:
        """score_raw of every row (n x k, columns in `feature_names` order): the forest's
        walk, then one pass of the tails over each row (both in C: `_forest.c`, `_tails.c`)."""
        if self._tails is None:
            return self.forest.score_samples(X)
        t, used, forest = self._terms(X)
        return t.score(used, forest)

    def score_one(self, x) -> float:
        if self._tails is None:
            return self.forest.score_one(x)
        return float(self.score(np.asarray(x, dtype=np.float64)[None, :])[0])

    def is_anomaly(self, raw: float) -> bool:
        return raw < self.threshold

    @cached_property
    def release(self) -> float:
        """The score below which an open anomaly event is held (hysteresis, `EventTracker`):
        RELEASE of the way from the calibration median to the threshold, so the same rule
        means the same on any scorer's scale (0 for a model without calibration scores)."""
        cdf = self._cdf
        median = float(np.interp(0.5, cdf[1], cdf[0])) if cdf else 0.0
        return median + RELEASE * (self.threshold - median)

    def anomaly_score(self, raw: float) -> float:
        """1 - F_cal(raw): 0 = most normal calibration score, 1 = below all of them.

        F is the linear interpolation of the calibration-score quantiles, computed exactly
        as `np.interp` does (equal to `anomaly_scores`) with `bisect` on Python floats."""
        cdf = self._cdf
        if cdf is None:
            return float(raw < self.threshold)
        q, levels = cdf
        if raw != raw:  # NaN, as np.interp
            return raw
        j = bisect_right(q, raw) - 1
        if j < 0:
            return 1.0 - levels[0]
        if j >= len(q) - 1 or q[j] == raw:
            return 1.0 - levels[j]
        slope = (levels[j + 1] - levels[j]) / (q[j + 1] - q[j])
        return 1.0 - (slope * (raw - q[j]) + levels[j])

    def anomaly_scores(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        cdf = self._cdf
        if cdf is None:
            return (raw < self.threshold).astype(np.float64)
        return 1.0 - np.interp(raw, *cdf)

    @cached_property
    def _cdf(self) -> tuple[list[float], list[float]] | None:
        q = self.train_stats.get("score_quantiles")
        if not q:
            return None
        return [float(v) for v in q], [float(v) for v in self.train_stats["quantile_levels"]]

    def explain(self, x: np.ndarray, top: int = 3) -> list[dict]:
        """The `top` most surprising terms, most surprising first: feature, value, the
        surprise (-log10 tail probability) and the trader's wording (`text`). After the first,
        only terms in their 1 % tail (surprise >= EXPLAIN_MIN): "1-min volatility 1.0× its
        usual" explains nothing."""
        x = np.asarray(x, dtype=np.float64)
        scale = float(self.train_stats.get("scale", 1.0))
        if self._tails is None:
            order = np.argsort(-np.abs(np.nan_to_num(x)), kind="stable")[:top]
            return [{"feature": self.feature_names[i], "value": float(x[i]),
                     "text": describe(self.feature_names[i], float(x[i]), scale)}
                    for i in order]
        cols = self._tails[1]
        s = self.surprises(x)[0]
        names = [self.feature_names[i] for i in cols] + [FOREST]
        forest = float(self.forest.score_samples(x[cols][None, :])[0])
        values = [float(x[i]) for i in cols] + [forest]
        order = np.argsort(-np.nan_to_num(s, nan=-1.0), kind="stable")[:top]
        return [{"feature": names[j], "value": values[j], "surprise": round(float(s[j]), 2),
                 "text": describe(names[j], values[j], scale)}
                for n, j in enumerate(order) if n == 0 or s[j] >= EXPLAIN_MIN]
