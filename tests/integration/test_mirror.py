"""Redis mirror against the real Redis, and Redis going away then coming back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from blink.features import FEATURE_NAMES
from blink.outputs import mirror
from blink.outputs.mirror import Mirror
from blink.runtime.broadcast import Broadcaster
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from tests.support.waiting import wait_until


class Proxy:
    """A TCP proxy in front of Redis that can be switched off and on (same port)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        for w in list(self.writers):
            w.close()
        await self.server.wait_closed()

    async def _handle(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src, dst):
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}


def tick(price: float, score: float | None = -0.45) -> dict:
    return {"time": "2026-01-05T12:00:00Z", "trade_id": 1, "price": price, "score_raw": score,
            "anomaly": False, "model": "blink_iforest@production v3",
            "features": {n: 0.001 * i for i, n in enumerate(FEATURE_NAMES)}, "not_ready": None}


@pytest.fixture
async def direct(redis_url):
    url, prefix = redis_url
    client = aioredis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    yield client, prefix
    await client.aclose()


async def test_latest_hash_and_anomaly_stream(direct):
    client, prefix = direct
    b, health, metrics = Broadcaster(), Health()["redis"], Metrics()
    mirror = Mirror(client, prefix, health, metrics)
    task = asyncio.create_task(mirror.run(b))
    await asyncio.sleep(0)  # let it subscribe
    b.publish("tick", tick(41_000.5))
    b.publish("anomaly_start", {"start_time": "2026-01-05T12:00:00Z", "peak_score": -0.7})
    key = f"{prefix}latest_features"

    async def written():
        return await client.exists(key) and await client.xlen(f"{prefix}anomalies") == 1
    await wait_until(written, limit=5)
    h = {k.decode(): v.decode() for k, v in (await client.hgetall(key)).items()}
    assert {n: float(h[n]) for n in FEATURE_NAMES} == tick(0)["features"]
    assert h["price"] == "41000.5" and h["score_raw"] == "-0.45" and h["anomaly"] == "0"
    assert h["model"] == "blink_iforest@production v3" and h["as_of"].startswith("2026-01-05")
    assert await client.ttl(key) == -1  # no expiry: never vanishes while Blink is healthy
    (_, fields), = await client.xrange(f"{prefix}anomalies")
    assert fields[b"kind"] == b"anomaly_start"
    assert json.loads(fields[b"event"])["peak_score"] == -0.7
    assert health.ok is True and metrics.redis_errors._value.get() == 0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_redis_going_away_and_coming_back(redis_url, direct):
    url, prefix = redis_url
    check, _ = direct
    parts = urlsplit(url)
    proxy = Proxy(parts.hostname, parts.port or 6379)
    await proxy.start()
    client = mirror.connect(f"redis://127.0.0.1:{proxy.port}/0")  # as Blink makes it
    b, health, metrics = Broadcaster(), Health()["redis"], Metrics()
    task = asyncio.create_task(Mirror(client, prefix, health, metrics, (0.01, 0.1)).run(b))
    await asyncio.sleep(0)
    key = f"{prefix}latest_features"

    async def price_is(value):
        raw = await check.hget(key, "price")
        return raw is not None and float(raw) == value

    b.publish("tick", tick(1.0))
    await wait_until(lambda: price_is(1.0), limit=5)
    assert health.ok is True

    await proxy.stop()  # Redis unreachable: failures counted, scoring side unaffected
    b.publish("tick", tick(2.0))
    b.publish("anomaly_end", {"start_time": "2026-01-05T12:00:00Z", "points": 3})

    async def failing():
        return health.ok is False and metrics.redis_errors._value.get() > 0
    await wait_until(failing, limit=5)
    b.publish("tick", tick(3.0))  # coalesces with the pending one
    assert not await price_is(3.0)

    await proxy.start()  # same port: the mirror recovers by itself
    await wait_until(lambda: price_is(3.0), limit=5)

    async def recovered():
        return health.ok is True and await check.xlen(f"{prefix}anomalies") == 1
    await wait_until(recovered, limit=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.aclose()
    await proxy.stop()


async def test_each_product_has_its_hash_and_the_first_keeps_the_seed_key(direct):
    client, prefix = direct
    b, health, metrics = Broadcaster(), Health()["redis"], Metrics()
    task = asyncio.create_task(Mirror(client, prefix, health, metrics, first="BTC-USD").run(b))
    await asyncio.sleep(0)
    for product, price in (("BTC-USD", 41_000.5), ("ETH-USD", 2_500.25), ("SOL-USD", 150.0)):
        b.publish("tick", {**tick(price), "product_id": product})
    b.publish("anomaly_start", {"product_id": "ETH-USD", "peak_score": -0.7})

    async def written():
        return await client.exists(f"{prefix}latest_features:SOL-USD") and \
            await client.xlen(f"{prefix}anomalies") == 1
    await wait_until(written, limit=5)
    for key, product, price in (("latest_features", "BTC-USD", "41000.5"),
                                ("latest_features:BTC-USD", "BTC-USD", "41000.5"),
                                ("latest_features:ETH-USD", "ETH-USD", "2500.25"),
                                ("latest_features:SOL-USD", "SOL-USD", "150.0")):
        h = await client.hgetall(f"{prefix}{key}")
        assert (h[b"product_id"], h[b"price"]) == (product.encode(), price.encode()), key
    (_, fields), = await client.xrange(f"{prefix}anomalies")
    assert fields[b"product_id"] == b"ETH-USD"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_busy_mirror_stops_at_its_first_cancel(redis_url):
    """A cancel always stops the mirror. redis-py (8.1, Python 3.11) swallows some cancels
    arriving mid-command (8 of these 40 before `check_cancelled`): the mirror wrote on, and
    a shutdown waiting for it hung: a likely cause of the CI runs that never finished)."""
    url, prefix = redis_url
    client = mirror.connect(url)
    b, health, metrics = Broadcaster(), Health()["redis"], Metrics()
    lost = 0
    try:
        for i in range(40):
            task = asyncio.create_task(Mirror(client, prefix, health, metrics).run(b))
            for n in range(30 + i):  # the mirror writes back to back while ticks come
                b.publish("tick", tick(float(n)))
                await asyncio.sleep(0)
            task.cancel()  # ONE cancel, at whatever point the write is
            done, _ = await asyncio.wait({task}, timeout=5)
            if not done:  # lost: stop it for good so the test can report
                lost += 1
                task.cancel()
                await asyncio.wait({task}, timeout=5)
    finally:
        await client.aclose()
    assert lost == 0 and metrics.redis_errors._value.get() == 0
