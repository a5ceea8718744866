"""Roles across processes: the `ingest` process publishes its live state to Redis, `api`
processes follow it.

- ingest side: every broadcaster message ("tick", "anomaly_start", "anomaly_end", "model")
  is PUBLISHed on `<prefix>blink:events` with the snapshot of its product's `Latest`, which is
  also SET at `<prefix>blink:latest:<product>` (and, for the first product, at
  `<prefix>blink:latest`, as before several products).
- api side: reads every product's snapshot at start, then SUBSCRIBEs; each message restores
  its product's local `Latest` (`keys.LATESTS`) and is re-published on the local broadcaster
  (so SSE works the same as a monolith). A message for a product this process does not
  serve is ignored.
Redis going away is a health failure ("relay"), logged once, retried with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from blink.outputs.mirror import REDIS_TIMEOUT_S
from blink.runtime import keys
from blink.runtime.tasks import background, check_cancelled, supervise

log = logging.getLogger(__name__)


def _names(app: web.Application) -> tuple[str, str]:
    prefix = app[keys.SETTINGS].redis_prefix
    return f"{prefix}blink:events", f"{prefix}blink:latest"


def _product(app: web.Application, payload) -> str:
    """The product a message is about (the first product when it names none)."""
    product = payload.get("product_id") if isinstance(payload, dict) else None
    return product or app[keys.SETTINGS].pair


async def _publish(app: web.Application) -> None:
    redis, latests, health = app[keys.REDIS], app[keys.LATESTS], app[keys.HEALTH]["relay"]
    first = app[keys.SETTINGS].pair
    channel, key = _names(app)
    async with app[keys.EVENTS].subscribe() as queue:
        while True:
            kind, payload = await queue.get()
            product = _product(app, payload)
            if kind == "lag" or product not in latests:
                continue
            snap = json.dumps(latests[product].snapshot(), default=str)
            msg = json.dumps({"kind": kind, "payload": payload, "latest": snap,
                              "product_id": product}, default=str)
            async with asyncio.timeout(REDIS_TIMEOUT_S), \
                    redis.pipeline(transaction=False) as pipe:
                pipe.set(f"{key}:{product}", snap)
                if product == first:
                    pipe.set(key, snap)
                pipe.publish(channel, msg)
                await pipe.execute()
            check_cancelled()  # redis-py can swallow a cancel (tasks.py)
            health.success()


async def _follow(app: web.Application) -> None:
    redis, latests, health = app[keys.REDIS], app[keys.LATESTS], app[keys.HEALTH]["relay"]
    channel, key = _names(app)
    for product, latest in latests.items():
        async with asyncio.timeout(REDIS_TIMEOUT_S):
            snap = await redis.get(f"{key}:{product}")
        if snap:
            latest.restore(json.loads(snap))
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    async with asyncio.timeout(REDIS_TIMEOUT_S):
        await pubsub.subscribe(channel)
    health.success(following=channel)
    try:
        async for message in pubsub.listen():
            data = json.loads(message["data"])
            latest = latests.get(data.get("product_id") or app[keys.SETTINGS].pair)
            if latest is None:
                continue
            latest.restore(json.loads(data["latest"]))
            app[keys.EVENTS].publish(data["kind"], data["payload"])
            check_cancelled()
            health.success()
    finally:
        await pubsub.aclose()


def _supervised(body):
    async def run(app: web.Application) -> None:
        await supervise(lambda: body(app), app[keys.HEALTH]["relay"], base=0.5, cap=10)

    return run


publish_ctx = background("relay-publish", _supervised(_publish))
follow_ctx = background("relay-follow", _supervised(_follow))
