"""The in-memory "latest" state the routes read: features, score, model, feed status.

Writers (the detector, the feed, the model watcher) replace fields; handlers only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Latest:
    product_id: str
    source: str = "coinbase"
    as_of: datetime | None = None  # event time of the newest trade seen
    trade_id: int | None = None
    price: float | None = None
    features: dict[str, float] | None = None  # None until the windows are warm
    not_ready: str | None = "no_features"  # why /score cannot answer yet
    score_raw: float | None = None
    anomaly: bool = False
    threshold: float | None = None
    model: str | None = None  # "<name>@production v<N>" or "run:<run_id>"
    model_trained_at: str | None = None
    explanation: list[dict] = field(default_factory=list)
    updated_wall: float | None = None  # time.time() of the last update
    trade_rate: float = 0.0  # trades per second of event time over the last minute
    labels: list[dict] = field(default_factory=list)  # synthetic source: injected anomalies

    def score_payload(self) -> dict:
        """The body of GET /score."""
        if self.not_ready or self.features is None or self.score_raw is None:
            return {"ready": False, "reason": self.not_ready or "no_features",
                    "product_id": self.product_id}
        out = {
            "ready": True,
            "anomaly": self.anomaly,
            "score_raw": self.score_raw,
            "threshold": self.threshold,
            "model": self.model,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "product_id": self.product_id,
            "features": self.features,
        }
        if self.anomaly:
            out["explanation"] = self.explanation
        return out

    def snapshot(self) -> dict:
        """Everything the routes need, JSON-ready (the `api` role reads it from Redis)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["as_of"] = self.as_of.isoformat() if self.as_of else None
        return out

    def restore(self, snap: dict) -> None:
        """Replace this state with a snapshot taken by `snapshot()` in another process."""
        for k, v in snap.items():
            if k in self.__dataclass_fields__:
                setattr(self, k, datetime.fromisoformat(v) if k == "as_of" and v else v)
