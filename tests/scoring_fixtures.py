"""Shared by the scoring tests: calm synthetic trade streams and a small served model."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from sklearn.ensemble import IsolationForest

from blink.features import FEATURE_NAMES, batch
from blink.model.served import ServedModel, threshold_for, training_stats
from blink.trade import Trade

T0 = 1_700_000_000.0


def calm(n: int, seed: int, start: float = T0, price: float = 40_000.0):
    """(ts, price, size, taker_buy) arrays: ~4 trades/s, small Gaussian log returns."""
    rng = np.random.default_rng(seed)
    ts = start + np.cumsum(rng.exponential(0.25, n))
    p = price * np.exp(np.cumsum(rng.normal(0, 5e-5, n)))
    return ts, np.round(p, 2), np.round(rng.lognormal(-4, 1, n), 8) + 1e-8, rng.random(n) < 0.5


def trades(ts, p, size, tb, first_id: int = 1) -> list[Trade]:
    return [Trade("BTC-USD", first_id + i, datetime.fromtimestamp(t, UTC), Decimal(f"{pr:.2f}"),
                  Decimal(f"{s:.8f}"), "sell" if b else "buy")
            for i, (t, pr, s, b) in enumerate(zip(ts, p, size, tb, strict=True))]


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
