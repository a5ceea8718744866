"""Redis mirror (optional): the latest features in a hash, anomaly events in a stream.

Follows the detectors' broadcaster: every "tick" (one per `feature_cadence_seconds` of event
time and product) HSETs `<prefix>latest_features:<product>` — one field per feature plus
`as_of`, `score_raw`, `anomaly`, `model`, `price`, `not_ready`, `product_id` — and, for the
first product, `<prefix>latest_features` too (the seed's contract), with NO expiry, so the
vector never vanishes while Blink is healthy; every "anomaly_start"/"anomaly_end" is XADDed
to `<prefix>anomalies` (MAXLEN ~ 10,000) with its `product_id`. Ticks coalesce per product:
when Redis is slow or down only each product's newest vector is kept (and up to 1,000
pending events). A failure is counted
(`blink_redis_errors_total`), reported to the "redis" health component (logged once), and
retried with backoff; scoring never waits for Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

from redis.exceptions import RedisError

from blink.features import FEATURE_NAMES
from blink.runtime.broadcast import Broadcaster
from blink.runtime.health import Component
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import backoff_delays, check_cancelled

log = logging.getLogger(__name__)

# every Redis call Blink makes is bounded by this, with `asyncio.timeout`, not by redis-py's
# `socket_timeout` (which bounds writes with `asyncio.wait_for`, that loses cancellations on
# Python 3.11: CPython gh-86296). redis-py loses some elsewhere too (about one cancel in two,
# with or without socket_timeout, in a tight loop of SETs here): the loops calling Redis
# `check_cancelled()` after each call, and `stop_tasks` cancels again what still runs
REDIS_TIMEOUT_S = 2.0
STREAM_MAXLEN = 10_000
PENDING_EVENTS = 1_000
EVENT_KINDS = ("anomaly_start", "anomaly_end")


def connect(url: str):
    """A Redis client as Blink makes one: a bounded connect, no `socket_timeout` (every call
    is bounded by `REDIS_TIMEOUT_S` where it is made), and one immediate retry on a new
    connection after a connection error: when Redis comes back, the pool's idle connections
    are dead, and each, used once, failed its call (a second "relay failing" right after
    "relay recovered"; a client from a URL retries nothing by default)."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return aioredis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S,
                             health_check_interval=30, retry=Retry(NoBackoff(), 1))


def hash_fields(tick: dict) -> dict[str, str]:
    """The `latest_features` hash for one tick payload (all values as strings)."""
    out = {name: repr(float(v)) for name, v in (tick.get("features") or {}).items()
           if name in FEATURE_NAMES and v is not None}
    out.update({
        "as_of": tick.get("time") or "",
        "score_raw": "" if tick.get("score_raw") is None else repr(float(tick["score_raw"])),
        "anomaly": "1" if tick.get("anomaly") else "0",
        "model": tick.get("model") or "",
        "price": "" if tick.get("price") is None else repr(float(tick["price"])),
        "not_ready": tick.get("not_ready") or "",
        "product_id": tick.get("product_id") or "",
    })
    return out


class Mirror:
    def __init__(self, client, prefix: str, health: Component, metrics: Metrics,
                 backoff: tuple[float, float] = (0.5, 10.0), first: str | None = None) -> None:
        self.client, self.health, self.metrics = client, health, metrics
        self.backoff = backoff  # (base, cap) seconds between retries while Redis fails
        self.prefix, self.first = prefix, first  # first product: also the unsuffixed hash
        self.hash_key = f"{prefix}latest_features"
        self.stream_key = f"{prefix}anomalies"
        self.ticks: dict[str | None, dict] = {}  # the newest tick per product
        self.events: deque[tuple[str, dict]] = deque(maxlen=PENDING_EVENTS)

    def offer(self, kind: str, payload: dict) -> None:
        if kind == "tick":
            self.ticks[payload.get("product_id")] = payload
        elif kind in EVENT_KINDS:
            self.events.append((kind, payload))

    @property
    def pending(self) -> bool:
        return bool(self.ticks) or bool(self.events)

    def hash_keys(self, product: str | None) -> list[str]:
        """`latest_features:<product>`, plus `latest_features` for the first product (and
        for a tick that names no product)."""
        if product is None:
            return [self.hash_key]
        own = f"{self.hash_key}:{product}"
        return [self.hash_key, own] if product == self.first or self.first is None else [own]

    async def write(self) -> None:
        """Write what is pending in one round trip; keeps it pending if Redis fails."""
        ticks, events = dict(self.ticks), list(self.events)
        async with asyncio.timeout(REDIS_TIMEOUT_S), \
                self.client.pipeline(transaction=False) as pipe:
            for product, tick in ticks.items():
                fields = hash_fields(tick)
                for key in self.hash_keys(product):
                    pipe.hset(key, mapping=fields)
            for kind, event in events:
                pipe.xadd(self.stream_key, {"kind": kind,
                                            "product_id": event.get("product_id") or "",
                                            "event": json.dumps(event)},
                          maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()
        for product, tick in ticks.items():
            if self.ticks.get(product) is tick:
                del self.ticks[product]
        for _ in events:
            self.events.popleft()

    async def run(self, broadcaster: Broadcaster) -> None:
        """Follow the broadcaster until cancelled."""
        delays = backoff_delays(*self.backoff)
        async with broadcaster.subscribe() as queue:
            while True:
                if not self.pending:
                    self.offer(*await queue.get())
                while not queue.empty():
                    self.offer(*queue.get_nowait())
                if not self.pending:
                    continue
                try:
                    await self.write()
                    check_cancelled()  # redis-py can swallow a cancel (tasks.py)
                except (TimeoutError, RedisError, OSError) as e:
                    check_cancelled()
                    self.metrics.redis_errors.inc()
                    self.health.failure(e)
                    await asyncio.sleep(next(delays))
                    continue
                self.health.success()
                delays = backoff_delays(*self.backoff)
