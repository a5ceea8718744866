"""The baseline the model must beat: a rolling z-score of returns, same budget, same events.

The score is the largest |z_h| over the four return horizons (z_1, z_5, z_30, z_300: each
return already divided by the current volatility the feature engine estimates), negated so
that it follows Blink's convention (score_raw: lower = more anomalous). It reads the SAME
feature vector the detector computes and is served as a `ServedModel`, with the same
threshold rule (the alert budget, `blink.model.budget`, on the same calibration rows), the
same `anomaly_score`, event folding and evaluation: only the scoring function differs (no
forest, no calibrated tails, no volume or flow, no trim).

Use it with `Backtest(settings, fit=baseline.fit, serve=baseline.serve)` or
`python -m blink evaluate ... --baseline`.
"""

from __future__ import annotations

import numpy as np

from blink.features import FEATURE_NAMES
from blink.model import budget, served
from blink.model.trainer import FitResult, Window, prepare

RETURNS = ("z_1", "z_5", "z_30", "z_300")


class ZScore:
    """The scoring function, shaped like `CompiledForest` (`score_one`, `score_samples`)."""

    def __init__(self, names=FEATURE_NAMES) -> None:
        names = list(names)
        self.ret = [names.index(n) for n in RETURNS]
        self.n_features = len(names)

    def score_one(self, x) -> float:
        return float(self.score_samples(x)[0])

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return 0.0 - np.abs(X[:, self.ret]).max(axis=1)  # 0.0 - 0.0 is +0.0


def fit(X: np.ndarray | Window, settings, feature_names=FEATURE_NAMES, ts=None) -> FitResult:
    """The baseline's "training": its budget threshold on the window's calibration rows."""
    w = X if isinstance(X, Window) else prepare(X, settings, ts)
    model = ZScore(feature_names)
    scores = model.score_samples(w.X)
    z, info = budget.threshold(w.ts, -scores, settings.event_gap_seconds,
                               settings.alerts_per_day)
    return FitResult(forest=model, feature_names=tuple(feature_names),
                     threshold=-z,
                     train_stats=served.training_stats(scores, scale=settings.feature_scale),
                     metrics={"rows_calibration": float(len(w.X)), "threshold": -z, **info},
                     params={"baseline": "max |z_h| of returns",
                             "alerts_per_day": settings.alerts_per_day},
                     promote_ok=True, reason="baseline (no promotion checks)",
                     example=w.X[-5:].copy())


def serve(result: FitResult, version: str, end: float) -> served.ServedModel:
    return served.ServedModel(result.forest, result.feature_names, result.threshold,
                              label=f"baseline v{version}", version=version,
                              trained_at=str(end), train_stats=result.train_stats)
