"""The baseline the forest must beat: a rolling z-score of returns, same windows, same events.

For each return window w (ret_1s, ret_5s, ret_30s, ret_300s, scaled like every window) the
return is divided by the standard deviation the recent market implies for it: the longest
window's realised volatility (vol_600s, per-trade returns) spread over w,
sigma_w = vol_600s * sqrt(w / 600 s). The score is the largest |z| over the four windows,
negated so that it follows Blink's convention (score_raw: lower = more anomalous). It reads
the SAME feature vector the detector computes and is served as a `ServedModel`, so the
threshold rule (the `1 - threshold_quantile` quantile of the training scores, refitted on the
same event-time schedule), `anomaly_score`, the event folding and the evaluation are all the
forest's: only the scoring function differs.

Use it with `Backtest(settings, fit=baseline.fit, serve=baseline.serve)` or
`python -m blink evaluate ... --baseline`.
"""

from __future__ import annotations

import math

import numpy as np

from blink.features import BASE_WINDOW, FEATURE_NAMES, WINDOWS
from blink.model import served
from blink.model.trainer import FitResult, warm_rows

RETURNS = ("ret_1s", "ret_5s", "ret_30s", "ret_300s")


class ZScore:
    """The scoring function, shaped like `CompiledForest` (`score_one`, `score_samples`)."""

    def __init__(self, names=FEATURE_NAMES) -> None:
        names = list(names)
        self.ret = [names.index(n) for n in RETURNS]
        self.vol = names.index("vol_600s")
        self.factor = [math.sqrt(WINDOWS[n] / BASE_WINDOW) for n in RETURNS]
        self.n_features = len(names)

    def score_one(self, x) -> float:
        return float(self.score_samples(x)[0])

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        sigma = X[:, [self.vol]] * np.asarray(self.factor)
        z = np.divide(np.abs(X[:, self.ret]), sigma, out=np.zeros_like(sigma),
                      where=sigma > 0)
        return 0.0 - z.max(axis=1)  # 0.0 - 0.0 is +0.0, as score_one gives


def fit(X: np.ndarray, settings, feature_names=FEATURE_NAMES) -> FitResult:
    """The baseline's "training": its threshold and score quantiles on the window's rows."""
    X = warm_rows(X, settings)
    model = ZScore(feature_names)
    scores = model.score_samples(X)
    threshold = served.threshold_for(scores, settings.threshold_quantile)
    return FitResult(model=model, forest=model, feature_names=tuple(feature_names),
                     threshold=threshold,
                     train_stats=served.training_stats(X, scores),
                     metrics={"rows_train": float(len(X)), "threshold": threshold},
                     params={"baseline": "rolling z-score of returns",
                             "threshold_quantile": settings.threshold_quantile},
                     promote_ok=True, reason="baseline (no promotion checks)",
                     example=X[-5:].copy())


def serve(result: FitResult, version: str, end: float) -> served.ServedModel:
    return served.ServedModel(result.forest, result.feature_names, result.threshold,
                              label=f"baseline v{version}", version=version,
                              trained_at=str(end), train_stats=result.train_stats)
