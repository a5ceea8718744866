"""Overload is visible: a heartbeat read late sets the feed lag (metric + coinbase component),
and /readyz says "degraded" while the feed lags or the writer holds over half its bound."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web

from blink.detect.latest import Latest
from blink.feeds.coinbase import CoinbaseSource
from blink.runtime import keys
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.web import probes as health_routes


def _app(settings) -> web.Application:
    app = web.Application()
    app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS] = settings, Health(), Metrics()
    app[keys.LATEST] = Latest(product_id=settings.pair, source=settings.source)
    app.add_routes(health_routes.routes)
    return app


async def test_late_heartbeats_and_a_full_writer_say_degraded(aiohttp_client, make_settings):
    app = _app(make_settings(writer_queue=1000))
    client = await aiohttp_client(app)
    source = CoinbaseSource(app[keys.SETTINGS], app[keys.METRICS], app[keys.HEALTH], None)

    source._behind(datetime.fromtimestamp(time.time() - 0.2, UTC).isoformat())
    body = await (await client.get("/readyz")).json()
    assert body["degraded"] is False and body["degraded_reasons"] == []
    assert 0.1 < body["components"]["coinbase"]["feed_lag_seconds"] < 5
    assert body["tasks"] >= 1

    late = datetime.fromtimestamp(time.time() - 30, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    source._behind(late)
    assert 29 < app[keys.METRICS].feed_behind._value.get() < 40
    body = await (await client.get("/readyz")).json()
    assert body["degraded"] is True
    assert "behind the exchange" in body["degraded_reasons"][0]

    source._behind(datetime.now(UTC).isoformat())  # caught up
    source._behind("not a time")  # ignored, keeps the last measure
    app[keys.HEALTH]["writer"].success(queued=501, spilled=0)
    body = await (await client.get("/readyz")).json()
    assert body["degraded_reasons"] == ["writer queue 501 over half its bound"]

    app[keys.HEALTH]["writer"].success(queued=10, spilled=0)
    body = await (await client.get("/readyz")).json()
    assert body["degraded"] is False
