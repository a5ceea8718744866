"""Several products in one web app, for the overview's tests (GET /api/products, the
dashboard): per-product latest states and a served model that calibrates its score."""

from __future__ import annotations

from types import SimpleNamespace

from blink.detect.latest import Latest
from blink.runtime import keys
from tests.support.web import FakeModel

PAIRS = "BTC-USD,ETH-USD,SOL-USD"


def per_product(app) -> dict[str, Latest]:
    """`app[keys.LATESTS]`: a Latest for every configured product, LATEST the first's (the app
    factory builds them)."""
    return app[keys.LATESTS]


class CalibratedModel(FakeModel):
    """FakeModel plus `anomaly_score`: 0 at score_raw -0.4, 1 at -0.8 and below, linear."""

    def anomaly_score(self, raw: float) -> float:
        return min(1.0, max(0.0, (-0.4 - raw) / 0.4))


def detectors(app, models: dict) -> None:
    """`app[keys.DETECTORS]`: product -> a stand-in holding only the model it serves."""
    app[keys.DETECTORS] = {p: SimpleNamespace(model=m) for p, m in models.items()}
