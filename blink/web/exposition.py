"""GET /metrics: the app's own Prometheus registry, with scrape-time gauges refreshed."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from blink.runtime import keys
from blink.web.scoring import current_model

routes = web.RouteTableDef()


def refresh(app: web.Application) -> None:
    """Gauges derived from the in-memory state at scrape time, one series per product."""
    metrics, now = app[keys.METRICS], time.time()
    metrics.model_info.clear()  # also set on each swap; derived here for an api-only process
    for product, latest in app[keys.LATESTS].items():
        if latest.as_of is not None and latest.source == "coinbase":
            metrics.feed_lag.labels(product=product).set(now - latest.as_of.timestamp())
        if latest.updated_wall is not None:
            metrics.features_age.labels(product=product).set(now - latest.updated_wall)
            metrics.trade_rate.labels(product=product).set(latest.trade_rate)
        if latest.score_raw is not None:
            metrics.score.labels(product=product).set(latest.score_raw)
            metrics.anomaly.labels(product=product).set(1 if latest.anomaly else 0)
        model = current_model(app, product)
        if model is not None:
            metrics.model_info.labels(product=product, version=str(model.version)).set(1)


@routes.get("/metrics")
async def metrics_route(request: web.Request) -> web.Response:
    refresh(request.app)
    body = generate_latest(request.app[keys.METRICS].registry)
    # aiohttp refuses a content_type= with parameters: set the header itself
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
