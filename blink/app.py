"""The application factory: routes plus one cleanup context per resource and per task.

Which contexts run depends on the roles (`--role`): `ingest` runs the feed, tape, writer and
scoring; `train` the hourly retrain; `api` the routes. `all` (the default) runs everything in
this one process.
"""

from __future__ import annotations

from aiohttp import web

from blink import keys, resources
from blink.broadcast import Broadcaster
from blink.config import Settings
from blink.health import Health
from blink.metrics import Metrics
from blink.state import Latest
from blink.web import health


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.HEALTH] = Health()
    app[keys.METRICS] = Metrics()
    app[keys.LATEST] = Latest(product_id=settings.pair, source=settings.source)
    app[keys.EVENTS] = Broadcaster()

    app.add_routes(health.routes)

    app.cleanup_ctx.extend([
        resources.executor_ctx,
        resources.database_ctx,
        resources.redis_ctx,
        resources.http_ctx,
    ])
    return app
