"""The application factory: routes plus one cleanup context per resource and per task.

Which contexts run depends on the roles (`--role`, default `all`):
- `ingest`: feed → tape → writer, features/scoring (with the model watcher), retention,
  alerts, and — when Redis is configured — the relay that publishes live state to Redis;
- `train`: the hourly retrain and promotion;
- `api`: the routes and the dashboard; without `ingest` in the same process it follows the
  live state through Redis (and loads the served model itself, for POST /score).

Every product of `settings.pairs` has its own `Latest` (`keys.LATESTS`), detector, model slot
and retrain schedule, each built with `settings.for_product(p)`; the single keys (`LATEST`,
`DETECTOR`, `MODEL`, `TAPE`) hold the first product's (the single-product contract).
"""

from __future__ import annotations

from aiohttp import web

from blink.config import ConfigError, Settings
from blink.detect.latest import Latest
from blink.outputs import alerts, relay
from blink.runtime import keys
from blink.runtime.broadcast import Broadcaster
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.runtime.warmup import Warmup
from blink.service import (
    detection,
    housekeeping,
    ingest,
    model_workers,
    resources,
    retrain,
    watcher,
)
from blink.web import probes
from blink.web.routes import setup_web


def check_roles(settings: Settings) -> None:
    """Split roles share state through services; refuse to start without them."""
    roles = settings.roles
    if roles == {"ingest", "api", "train"}:
        return
    if "api" in roles and "ingest" not in roles and not settings.redis_dsn:
        raise ConfigError(f"BLINK_ROLE={settings.role!r}: the api role reads the live state "
                          "from Redis: set REDIS_URL or REDIS_HOST")
    if not settings.pg_dsn:
        raise ConfigError(f"BLINK_ROLE={settings.role!r}: split roles share one database: "
                          "set PG_DSN (the embedded PostgreSQL belongs to one process)")


def create_app(settings: Settings) -> web.Application:
    check_roles(settings)
    roles = settings.roles
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.HEALTH] = Health()
    app[keys.METRICS] = Metrics()
    app[keys.LATESTS] = {p: Latest(product_id=p, source=settings.source)
                         for p in settings.pairs}
    app[keys.LATEST] = app[keys.LATESTS][settings.pair]
    app[keys.EVENTS] = Broadcaster()
    app[keys.WARMUP] = Warmup()

    app.add_routes(probes.routes)
    if "api" in roles:
        setup_web(app)

    ctx = app.cleanup_ctx
    ctx.extend([resources.executor_ctx, resources.database_ctx, resources.redis_ctx,
                resources.http_ctx, model_workers.worker_ctx])
    if "ingest" in roles:
        # the detector exists before the watcher swaps a model into it, and before the tape
        ctx.extend([detection.detector_ctx, watcher.watcher_ctx, alerts.alerts_ctx,
                    ingest.ingest_ctx, housekeeping.retention_ctx])
        if settings.redis_dsn:
            ctx.append(relay.publish_ctx)
    elif "api" in roles:
        ctx.extend([watcher.watcher_ctx, relay.follow_ctx])  # model for POST /score
    if "train" in roles:
        ctx.append(retrain.trainer_ctx)
    return app
