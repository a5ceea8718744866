"""GET /metrics: the app's own Prometheus registry, with scrape-time gauges refreshed."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from blink.runtime import keys
from blink.web.scoring import current_model

routes = web.RouteTableDef()


def refresh(app: web.Application) -> None:
    """Gauges derived from the in-memory state at scrape time."""
    latest, metrics, now = app[keys.LATEST], app[keys.METRICS], time.time()
    if latest.updated_wall is not None:
        metrics.features_age.set(now - latest.updated_wall)
    if latest.as_of is not None and latest.source == "coinbase":
        metrics.feed_lag.set(now - latest.as_of.timestamp())
    model = current_model(app)
    if model is not None:  # also set on each swap; derived here for an api-only process
        metrics.model_info.clear()
        metrics.model_info.labels(version=str(model.version)).set(1)


@routes.get("/metrics")
async def metrics_route(request: web.Request) -> web.Response:
    refresh(request.app)
    body = generate_latest(request.app[keys.METRICS].registry)
    # aiohttp refuses a content_type= with parameters: set the header itself
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
