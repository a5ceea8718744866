"""Hand-filled state for the web tests: a fake served model, feature rows, anomaly events."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta

import numpy as np
from aiohttp.test_utils import TestServer

from blink.detect.latest import Latest
from blink.model.registry import ModelSlot
from blink.runtime import keys
from blink.service import resources
from blink.service.app import create_app
from blink.web.runner import BlinkRunner
from tests.support.trades import T0

FEATURES = ["ret_1s", "ret_5s", "vol_60s", "z_30s"]


class FakeModel:
    """The ServedModel interface. Like sklearn's score_samples, score_raw is HIGHER = MORE
    NORMAL: -0.4 - 0.1 * sum|x|, anomalous below the threshold -0.6 (sum|x| > 2)."""

    feature_names = tuple(FEATURES)
    threshold = -0.6
    label = "blink_iforest@production v7"
    version = "7"
    trained_at = T0.isoformat()

    def __init__(self) -> None:
        self.calls = 0

    def score(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        return -0.4 - 0.1 * np.abs(X).sum(axis=1)

    def is_anomaly(self, raw: float) -> bool:
        return raw < self.threshold

    def explain(self, x: np.ndarray) -> list[dict]:
        order = np.argsort(-np.abs(x))
        return [{"feature": FEATURES[i], "value": float(x[i]), "z": float(x[i])}
                for i in order[:3]]


def serve(app, model, product: str | None = None) -> None:
    """Put `model` in the registry's slot of `product` (default the first; the app may be
    running already)."""
    slot = app[keys.MODELS][product or app[keys.SETTINGS].pair]
    slot.served, slot.label = model, model.label


def web_app(settings):
    """The real app factory, minus the pipeline's tasks (feed, scoring, watcher, trainer,
    alerts...): routes, middlewares and resources as in production, state filled by the test.
    The model slots (one per product) start empty; `serve()` fills them."""
    app = create_app(settings)
    keep = (resources.executor_ctx, resources.database_ctx, resources.redis_ctx,
            resources.http_ctx)
    for ctx in list(app.cleanup_ctx):
        if ctx not in keep:
            app.cleanup_ctx.remove(ctx)
    app[keys.MODELS] = {p: ModelSlot() for p in settings.pairs}
    app[keys.MODEL] = app[keys.MODELS][settings.pair]
    return app


class BlinkTestServer(TestServer):
    """aiohttp's TestServer on Blink's own runner (serve.py's): its timeouts and its answers
    to requests aiohttp cannot parse."""

    async def _make_runner(self, **kwargs) -> BlinkRunner:
        return BlinkRunner(self.app, **kwargs)


async def start_client(aiohttp_client, settings, model: bool = True):
    """(app, client) for `web_app(settings)` on Blink's runner, with FakeModel served unless
    model=False."""
    app = web_app(settings)
    client = await aiohttp_client(BlinkTestServer(app))
    if model:
        serve(app, FakeModel())
    return app, client


def sample(app, name: str, labels: dict | None = None) -> float:
    """A metric's current value in the app's registry (0 when never set)."""
    return app[keys.METRICS].registry.get_sample_value(name, labels or {}) or 0.0


def fill_latest(latest: Latest, *, anomaly: bool = False, as_of: datetime = T0,
                ready: bool = True) -> None:
    latest.as_of, latest.trade_id, latest.price = as_of, 1234, 97_000.5
    latest.updated_wall = time.time()
    latest.trade_rate = 7.5
    if not ready:
        latest.not_ready, latest.features, latest.score_raw = "no_model", None, None
        return
    latest.features = {name: 0.1 for name in FEATURES}
    latest.not_ready = None
    latest.score_raw = -0.75 if anomaly else -0.45
    latest.anomaly = anomaly
    latest.threshold = FakeModel.threshold
    latest.model = FakeModel.label
    latest.explanation = [{"feature": "ret_5s", "value": 0.01, "z": 5.1}] if anomaly else []


async def insert_features(conn, product_id: str, end: datetime, seconds: int,
                          anomalous: tuple[int, ...] = ()) -> None:
    """One row per second ending at `end`; rows at offsets in `anomalous` (seconds before
    `end`) are flagged and scored above the threshold."""
    rows = []
    for k in range(seconds):
        t = end - timedelta(seconds=k)
        bad = k in anomalous
        price = 97_000 + 40 * math.sin(k / 90) + (120 if bad else 0)
        score = -0.72 if bad else -0.45 + 0.05 * math.sin(k / 17)
        rows.append((product_id, t, 1_000_000 - k, price,
                     json.dumps({n: 0.0 for n in FEATURES}), score, bad, "7"))
    await conn.executemany(
        "INSERT INTO features (product_id, time, trade_id, price, vector, score_raw, anomaly,"
        " model_version) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)", rows)


async def insert_event(conn, product_id: str, start: datetime, seconds: float = 4,
                       peak: float = -0.72) -> int:
    return await conn.fetchval(
        "INSERT INTO anomalies (product_id, start_time, end_time, peak_time, peak_score,"
        " threshold, model_version, explanation, points) VALUES ($1, $2, $3, $4, $5, -0.6,"
        " '7', $6::jsonb, 3) RETURNING id",
        product_id, start, start + timedelta(seconds=seconds),
        start + timedelta(seconds=seconds / 2), peak,
        json.dumps([{"feature": "ret_5s", "z": 5.1}, {"feature": "vol_60s", "z": -2.2}]))

    raise AssertionError("condition not reached")
