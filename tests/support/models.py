"""Shared by the scoring tests: calm synthetic trade streams and a small served model."""

from __future__ import annotations

from blink.config import Settings
from blink.features import FEATURE_NAMES, batch
from blink.model import trainer
from blink.model.served import ServedModel
from tests.support.trades import calm


def make_served(seed: int = 1, n: int = 40_000) -> ServedModel:
    """A model trained by `trainer.fit` on a calm stream's features (default alert budget)."""
    ts, p, size, tb = calm(n, seed=seed)
    X = batch(ts, p, size, tb, min_history_seconds=300, min_trades=30)
    r = trainer.fit(X, Settings(train_min_rows=500, n_estimators=50, random_state=0),
                    FEATURE_NAMES, ts=ts)
    return ServedModel(r.forest, FEATURE_NAMES, r.threshold, "blink_iforest@production v1",
                       "1", "2023-11-14T22:00:00Z", r.train_stats)


class Recorder:
    """Stands in for the Broadcaster: keeps what was published."""

    subscribers = 1  # as a Broadcaster with a reader: ticks are built

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []

    def publish(self, kind: str, payload: dict) -> None:
        self.messages.append((kind, payload))

    def kinds(self, kind: str) -> list[dict]:
        return [p for k, p in self.messages if k == kind]
