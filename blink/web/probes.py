"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from blink import __version__
from blink.runtime import keys
from blink.web import warming

LAG_LIMIT = 5.0  # s behind the exchange's heartbeats before /readyz says "degraded"

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    app = request.app
    latest = app[keys.LATEST]
    components = app[keys.HEALTH].as_dict()
    ready = latest.not_ready is None and latest.score_raw is not None
    body = {
        "ready": ready,
        "reason": None if ready else (latest.not_ready or "no_score"),
        "source": latest.source,
        "product_id": latest.product_id,
        "version": __version__,
        "roles": sorted(app[keys.SETTINGS].roles),
        "warmup": warming.status(app),
        "components": components,
        "degraded": bool(reasons := overload(app, components)),
        "degraded_reasons": reasons,
        "tasks": len(asyncio.all_tasks()),
    }
    return web.json_response(body, status=200 if ready else 503)


def overload(app: web.Application, components: dict) -> list[str]:
    """Why Blink is not keeping up (empty: it is): the feed read lags the exchange by more
    than LAG_LIMIT, or the writer holds over half its in-memory bound (or is spilling)."""
    reasons = []
    lag = components.get("coinbase", {}).get("feed_lag_seconds")
    if lag is not None and lag > LAG_LIMIT:
        reasons.append(f"feed {lag:.1f} s behind the exchange")
    writer = components.get("writer", {})
    if writer.get("queued", 0) > app[keys.SETTINGS].writer_queue / 2:
        reasons.append(f"writer queue {writer['queued']} over half its bound")
    if writer.get("spilled"):
        reasons.append(f"{writer['spilled']} trades waiting in the spill file")
    return reasons
