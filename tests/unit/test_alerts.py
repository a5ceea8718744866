"""Webhook alerts against a local HTTP receiver: delivery, retries, failures counted."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from blink.outputs import alerts
from blink.runtime import keys
from blink.runtime.broadcast import Broadcaster
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.service import resources
from tests.support.waiting import wait_until

# what the detector publishes (blink.detect.events.AnomalyEvent.as_dict())
EVENT = {"product_id": "BTC-USD", "start_time": "2026-01-05T12:00:00Z",
         "end_time": "2026-01-05T12:00:04Z", "peak_time": "2026-01-05T12:00:02Z",
         "peak_score": -0.71, "threshold": -0.62, "model_version": "3", "points": 4,
         "open": True, "explanation": [{"feature": "ret_5s", "value": 0.004, "z": 6.1}]}


class Receiver:
    """Local webhook receiver: `/ok` records, `/flaky` fails `fail` times first, `/bad` 400s."""

    def __init__(self, fail: int = 0) -> None:
        self.got: dict[str, list[dict]] = {"ok": [], "flaky": [], "bad": [], "slow": []}
        self.attempts: dict[str, int] = {k: 0 for k in self.got}
        self.fail = fail
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.attempts[name] += 1
        if name == "slow":
            await self.release.wait()
        if name == "bad":
            return web.json_response({"nope": True}, status=400)
        if name == "flaky" and self.attempts[name] <= self.fail:
            return web.Response(status=503)
        self.got[name].append(await request.json())
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server):
    rx = Receiver(fail=2)
    app = web.Application()
    app.router.add_post("/hook/{name}", rx.handle)
    server = await aiohttp_server(app)
    yield rx, lambda name: str(server.make_url(f"/hook/{name}"))
    rx.release.set()


@pytest.fixture
def fast_backoff(monkeypatch):
    monkeypatch.setattr(alerts, "BASE", 0.01)
    monkeypatch.setattr(alerts, "CAP", 0.02)


async def start_blink(make_settings, urls):
    """A minimal app with just what alerts need: settings, events, metrics, HTTP client."""
    app = web.Application()
    app[keys.SETTINGS] = make_settings(alert_webhooks=",".join(urls),
                                       public_url="https://blink.example/")
    app[keys.EVENTS], app[keys.METRICS], app[keys.HEALTH] = Broadcaster(), Metrics(), Health()
    app.cleanup_ctx.extend([resources.http_ctx, alerts.alerts_ctx])
    runner = web.AppRunner(app)
    await runner.setup()  # runs the cleanup contexts' start-up halves
    return app, runner


def value(app, name: str) -> float:
    return app[keys.METRICS].registry.get_sample_value(name) or 0.0




async def test_start_and_end_reach_every_webhook(make_settings, receiver, fast_backoff):
    rx, url = receiver
    app, runner = await start_blink(make_settings, [url("ok"), url("flaky")])
    try:
        await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
        app[keys.EVENTS].publish("tick", {"price": 1.0})  # not an alert
        app[keys.EVENTS].publish("anomaly_start", EVENT)
        app[keys.EVENTS].publish("anomaly_end", {**EVENT, "end_time": "2026-01-05T12:00:09Z"})
        await wait_until(lambda: len(rx.got["ok"]) == 2 and len(rx.got["flaky"]) == 2)
        # the receiver holds the request before the sender has read the response and counted
        # it: wait for the count too (a CI run saw 3 of 4 when the cleanup came first)
        await wait_until(lambda: value(app, "blink_alerts_sent_total") == 4)
    finally:
        await runner.cleanup()
    first = rx.got["ok"][0]
    assert first["event"] == "anomaly_start" and first["product_id"] == "BTC-USD"
    assert first["time"] == EVENT["start_time"] and first["score"] == -0.71
    assert first["threshold"] == -0.62 and first["explanation"] == EVENT["explanation"]
    assert first["model_version"] == "3" and first["points"] == 4
    assert first["dashboard"] == "https://blink.example/demo"
    assert "anomaly started on BTC-USD" in first["text"]
    assert rx.got["ok"][1]["event"] == "anomaly_end"
    assert rx.got["ok"][1]["time"] == "2026-01-05T12:00:09Z"
    assert rx.got["flaky"] == rx.got["ok"]  # delivered after two 503s, in order
    assert rx.attempts["flaky"] == 4
    assert value(app, "blink_alerts_sent_total") == 4
    assert value(app, "blink_alert_failures_total") == 0


async def test_refused_alert_is_counted_not_retried(make_settings, receiver, fast_backoff):
    rx, url = receiver
    app, runner = await start_blink(make_settings, [url("bad"), url("ok")])
    try:
        await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
        app[keys.EVENTS].publish("anomaly_start", EVENT)
        await wait_until(lambda: value(app, "blink_alert_failures_total") == 1)
        await wait_until(lambda: len(rx.got["ok"]) == 1)
        assert app[keys.HEALTH]["alerts"].ok is True  # the last delivery succeeded
    finally:
        await runner.cleanup()
    assert rx.attempts["bad"] == 1  # a 400 is final


async def test_unreachable_webhook_retries_then_fails(make_settings, fast_backoff, caplog):
    url = "http://127.0.0.1:9/hook?secret=abc123"  # discard port: connection refused
    app, runner = await start_blink(make_settings, [url])
    try:
        await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
        app[keys.EVENTS].publish("anomaly_start", EVENT)
        await wait_until(lambda: value(app, "blink_alert_failures_total") == 1)
        assert app[keys.HEALTH]["alerts"].ok is False
    finally:
        await runner.cleanup()
    assert "abc123" not in caplog.text  # only the host is logged
    assert value(app, "blink_alerts_sent_total") == 0


async def test_slow_webhook_never_blocks_publishing(make_settings, receiver, fast_backoff,
                                                     monkeypatch):
    monkeypatch.setattr(alerts, "QUEUE_SIZE", 3)
    rx, url = receiver
    app, runner = await start_blink(make_settings, [url("slow"), url("ok")])
    try:
        await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
        app[keys.EVENTS].publish("anomaly_start", {**EVENT, "points": 0})
        await wait_until(lambda: rx.attempts["slow"] == 1)  # the slow URL now holds alert 0
        for i in range(1, 10):  # publish is synchronous: it returns at once whatever URLs do
            app[keys.EVENTS].publish("anomaly_start", {**EVENT, "points": i})
            await wait_until(lambda i=i: len(rx.got["ok"]) == i + 1)  # the slow URL delays no other
        # 10 alerts - 1 delivered - 3 queued: 6 dropped
        await wait_until(lambda: value(app, "blink_alert_failures_total") == 6)
        rx.release.set()
        await wait_until(lambda: len(rx.got["slow"]) == 4)
    finally:
        await runner.cleanup()
    assert [m["points"] for m in rx.got["slow"]] == [0, 7, 8, 9]  # oldest dropped first


async def test_no_webhooks_no_tasks(make_settings):
    app, runner = await start_blink(make_settings, [])
    try:
        assert app[keys.EVENTS].subscribers == 0
    finally:
        await runner.cleanup()


def test_dashboard_url_defaults_to_host_and_port(make_settings):
    assert alerts.dashboard_url(make_settings(port=8123)) == "http://127.0.0.1:8123/demo"
    assert alerts.dashboard_url(make_settings(public_url="https://b.example/x/")) == \
        "https://b.example/x/demo"
