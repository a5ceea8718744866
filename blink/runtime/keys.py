"""Every typed application key, in one place.

Each key is annotated with the real class of what it holds. The classes of the rooms above
`runtime` (the detector, the tape, the model slot, ...) are imported for type checkers only:
runtime is the bottom of the house and imports nothing of the domain at run time.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import aiohttp
import asyncpg
from aiohttp import web

if TYPE_CHECKING:
    import jinja2
    from redis.asyncio import Redis

    from blink.config import Settings
    from blink.detect.detector import Detector
    from blink.detect.latest import Latest
    from blink.model.registry import ModelSlot
    from blink.runtime.broadcast import Broadcaster
    from blink.runtime.health import Health
    from blink.runtime.metrics import Metrics
    from blink.runtime.warmup import Warmup
    from blink.store.writer import Writer
    from blink.tape import Tape
    from blink.web.sse import Hub

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
HEALTH: web.AppKey[Health] = web.AppKey("health")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
# Per product (settings.pairs): the dicts hold every product; the single keys the FIRST
# product's entry (the seed's single-product contract)
LATEST: web.AppKey[Latest] = web.AppKey("latest")
LATESTS: web.AppKey[dict[str, Latest]] = web.AppKey("latests")
WARMUP: web.AppKey[Warmup] = web.AppKey("warmup")  # history loading, first model (/readyz)
EXECUTOR: web.AppKey[Executor] = web.AppKey("executor", Executor)
WORKER: web.AppKey[Executor] = web.AppKey("worker", Executor)  # the model worker process
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool", asyncpg.Pool)
REDIS: web.AppKey[Redis | None] = web.AppKey("redis")  # None when not configured
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
# pipeline pieces, set by their own cleanup contexts (see service/app.py)
TAPE: web.AppKey[Tape] = web.AppKey("tape")
TAPES: web.AppKey[dict[str, Tape]] = web.AppKey("tapes")
WRITER: web.AppKey[Writer] = web.AppKey("writer")
DETECTOR: web.AppKey[Detector] = web.AppKey("detector")
DETECTORS: web.AppKey[dict[str, Detector]] = web.AppKey("detectors")
MODEL: web.AppKey[ModelSlot] = web.AppKey("model")  # the served model's slot
MODELS: web.AppKey[dict[str, ModelSlot]] = web.AppKey("models")  # per product (MODEL: first)
MODEL_RELOAD: web.AppKey[asyncio.Event] = web.AppKey("model_reload", asyncio.Event)
# live updates: "tick", "anomaly_start", "anomaly_end"
EVENTS: web.AppKey[Broadcaster] = web.AppKey("events")
# web layer (blink/web/routes.py)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("templates")  # autoescape on
SHUTDOWN: web.AppKey[asyncio.Event] = web.AppKey("shutdown", asyncio.Event)  # streams end
STREAMS: web.AppKey[Hub] = web.AppKey("streams")  # the /api/stream clients


def of_product(app: web.Application, many: web.AppKey, one: web.AppKey, product: str):
    """One product's piece: `app[many][product]` (None if it has none); an app without the
    per-product dict (a single-product test harness) has `app[one]` for the first product."""
    found = app.get(many)
    if found is not None:
        return found.get(product)
    return app.get(one) if product == app[SETTINGS].pair else None
