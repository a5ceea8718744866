"""Shared by the scoring tests: calm synthetic trade streams and a small served model."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from blink.features import FEATURE_NAMES, batch
from blink.model.served import ServedModel, threshold_for, training_stats
from tests.support.trades import calm


def make_served(seed: int = 1, n: int = 12_000) -> ServedModel:
    """An IsolationForest fitted on a calm stream's features, threshold by the 0.995 rule."""
    ts, p, size, tb = calm(n, seed=seed)
    X = batch(ts, p, size, tb, min_history_seconds=300, min_trades=30)
    X = X[~np.isnan(X).any(axis=1)]
    model = IsolationForest(n_estimators=50, random_state=0).fit(X)
    scores = model.score_samples(X)
    return ServedModel.from_sklearn(model, FEATURE_NAMES, threshold_for(scores, 0.995),
                                    training_stats(X, scores), "blink_iforest@production v1",
                                    "1", "2023-11-14T22:00:00Z")


class Recorder:
    """Stands in for the Broadcaster: keeps what was published."""

    subscribers = 1  # as a Broadcaster with a reader: ticks are built

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []

    def publish(self, kind: str, payload: dict) -> None:
        self.messages.append((kind, payload))

    def kinds(self, kind: str) -> list[dict]:
        return [p for k, p in self.messages if k == kind]
