"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from blink import __version__, keys

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
        "components": components,
    }
    return web.json_response(body, status=200 if ready else 503)
