"""Roles across processes: the `ingest` process publishes its live state to Redis, `api`
processes follow it.

- ingest side: every broadcaster message ("tick", "anomaly_start", "anomaly_end") is PUBLISHed
  on `<prefix>blink:events`, and the full `Latest` snapshot is SET at `<prefix>blink:latest`.
- api side: reads the snapshot at start, then SUBSCRIBEs; each message restores the local
  `Latest` and is re-published on the local broadcaster (so SSE works the same as a monolith).
Redis going away is a health failure ("relay"), logged once, retried with backoff.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from blink.runtime import keys
from blink.runtime.tasks import background, supervise

log = logging.getLogger(__name__)


def _names(app: web.Application) -> tuple[str, str]:
    prefix = app[keys.SETTINGS].redis_prefix
    return f"{prefix}blink:events", f"{prefix}blink:latest"


async def _publish(app: web.Application) -> None:
    redis, latest, health = app[keys.REDIS], app[keys.LATEST], app[keys.HEALTH]["relay"]
    channel, key = _names(app)
    async with app[keys.EVENTS].subscribe() as queue:
        while True:
            kind, payload = await queue.get()
            if kind == "lag":
                continue
            snap = json.dumps(latest.snapshot(), default=str)
            msg = json.dumps({"kind": kind, "payload": payload, "latest": snap}, default=str)
            async with redis.pipeline(transaction=False) as pipe:
                pipe.set(key, snap)
                pipe.publish(channel, msg)
                await pipe.execute()
            health.success()


async def _follow(app: web.Application) -> None:
    redis, latest, health = app[keys.REDIS], app[keys.LATEST], app[keys.HEALTH]["relay"]
    channel, key = _names(app)
    snap = await redis.get(key)
    if snap:
        latest.restore(json.loads(snap))
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    health.success(following=channel)
    try:
        async for message in pubsub.listen():
            data = json.loads(message["data"])
            latest.restore(json.loads(data["latest"]))
            app[keys.EVENTS].publish(data["kind"], data["payload"])
            health.success()
    finally:
        await pubsub.aclose()


def _supervised(body):
    async def run(app: web.Application) -> None:
        await supervise(lambda: body(app), app[keys.HEALTH]["relay"], base=0.5, cap=10)

    return run


publish_ctx = background("relay-publish", _supervised(_publish))
follow_ctx = background("relay-follow", _supervised(_follow))
