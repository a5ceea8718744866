"""`setup_web(app)`: the API, metrics, stream and dashboard routes, middlewares and hooks."""

from __future__ import annotations

import asyncio

from aiohttp import web

from blink.runtime import keys
from blink.web import api, dashboard, products, security, sse, stream
from blink.web import exposition as metrics


def setup_web(app: web.Application) -> None:
    app[keys.TEMPLATES] = dashboard.environment()
    app[keys.SHUTDOWN] = asyncio.Event()
    app[keys.STREAMS] = sse.Hub()
    app[keys.EVENTS].listen(app[keys.STREAMS].deliver)
    # errors first (outermost): the auth middleware's 401 becomes JSON and is counted too
    app.middlewares.extend([security.errors_middleware, security.auth_middleware])
    app.on_response_prepare.append(security.security_headers)
    app.on_shutdown.append(stream.on_shutdown)
    for table in (api.routes, products.routes, metrics.routes, stream.routes, dashboard.routes):
        app.add_routes(table)
