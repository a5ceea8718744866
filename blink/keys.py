"""Every typed application key, in one place."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from blink.broadcast import Broadcaster
from blink.config import Settings
from blink.health import Health
from blink.metrics import Metrics
from blink.state import Latest

SETTINGS = web.AppKey("settings", Settings)
HEALTH = web.AppKey("health", Health)
METRICS = web.AppKey("metrics", Metrics)
LATEST = web.AppKey("latest", Latest)
EXECUTOR = web.AppKey("executor", Executor)
WORKER = web.AppKey("worker", Executor)  # the model worker process (model/worker.py)
POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Any)  # redis.asyncio.Redis, or None when not configured
HTTP = web.AppKey("http", aiohttp.ClientSession)
# pipeline pieces, set by their own cleanup contexts (see app.py)
TAPE = web.AppKey("tape", Any)
WRITER = web.AppKey("writer", Any)
DETECTOR = web.AppKey("detector", Any)
MODEL = web.AppKey("model", Any)  # blink.model.registry.ServedModel holder
MODEL_RELOAD = web.AppKey("model_reload", asyncio.Event)  # set: the watcher re-resolves now
EVENTS = web.AppKey("events", Broadcaster)  # live updates: "tick", "anomaly_start", "anomaly_end"
# web layer (blink/web/routes.py)
TEMPLATES = web.AppKey("templates", Any)  # jinja2.Environment (autoescape on)
SHUTDOWN = web.AppKey("shutdown", asyncio.Event)  # set on app shutdown: long streams end
STREAMS = web.AppKey("streams", Any)  # blink.web.sse.Hub: the /api/stream clients
