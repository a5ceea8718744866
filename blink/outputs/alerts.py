"""Webhook alerts: POST a JSON message to every configured URL when an anomaly event starts
and when it ends (`alerts.webhooks` / BLINK_ALERT_WEBHOOKS).

A listener subscribes to the broadcaster and only enqueues; one sender per URL drains its own
bounded queue (the oldest alert is dropped, and counted, when a URL falls behind), retrying with
full-jitter backoff. Nothing here can block scoring, and a slow URL never delays another.
Webhook URLs often embed a secret (Slack, Teams), so logs name only their host.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from blink.config import Settings
from blink.runtime import keys
from blink.runtime.health import Component
from blink.runtime.logs import RateLimited
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import backoff_delays, stop_tasks

log = logging.getLogger(__name__)
limited = RateLimited(log, interval=30.0)

KINDS = ("anomaly_start", "anomaly_end")
QUEUE_SIZE = 100
ATTEMPTS = 5
BASE, CAP = 1.0, 30.0  # backoff seconds
TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


def dashboard_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/demo"
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else socket.getfqdn()
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/demo"


def message(kind: str, payload: dict, settings: Settings) -> dict:
    """The alert body: product, time, score, threshold, explanation, dashboard link (and,
    when several products are watched, the market context line as `market`)."""
    p = payload  # blink.detect.events.AnomalyEvent.as_dict()
    score = p.get("peak_score")
    body = {
        "event": kind,
        "product_id": p.get("product_id", settings.pair),
        "time": p.get("end_time" if kind == "anomaly_end" else "start_time"),
        "score": score,  # the event's lowest score_raw so far (lower = more anomalous)
        "threshold": p.get("threshold"),
        "explanation": p.get("explanation", []),
        "model_version": p.get("model_version"),
        "start_time": p.get("start_time"),
        "end_time": p.get("end_time"),
        "peak_time": p.get("peak_time"),
        "points": p.get("points"),
        "source": settings.source,
        "dashboard": dashboard_url(settings),
    }
    what = "started" if kind == "anomaly_start" else "ended"
    body["text"] = (f"Blink: anomaly {what} on {body['product_id']} at {body['time']} "
                    f"(score {score}, threshold {body['threshold']}) {body['dashboard']}")
    market = [e["text"] for e in body["explanation"] or []
              if isinstance(e, dict) and e.get("feature") == "market"]
    if market:  # several products watched: is the move its own or the market's?
        body["market"] = market[0]
        body["text"] += f" ({market[0]})"
    return body


def host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


class Webhook:
    """One URL: a bounded queue and a sender that retries with backoff."""

    def __init__(self, url: str, session: aiohttp.ClientSession, metrics: Metrics,
                 health: Component) -> None:
        self.url, self.session, self.metrics, self.health = url, session, metrics, health
        self.queue: asyncio.Queue[dict] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, body: dict) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.metrics.alert_failures.inc()
            limited.warning(f"full:{self.url}", "alert queue for %s full: oldest alert dropped",
                            host_of(self.url))
        self.queue.put_nowait(body)

    async def run(self) -> None:
        while True:
            body = await self.queue.get()
            await self.deliver(body)

    async def deliver(self, body: dict) -> bool:
        delays = backoff_delays(BASE, CAP)
        why = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.session.post(self.url, json=body, timeout=TIMEOUT) as r:
                    if r.status < 300:
                        self.metrics.alerts_sent.inc()
                        self.health.success()
                        return True
                    why = f"HTTP {r.status}"
                    if 400 <= r.status < 500 and r.status not in (408, 429):
                        break  # the receiver refuses this message: retrying will not help
            except (aiohttp.ClientError, TimeoutError) as e:
                why = type(e).__name__
            if attempt < ATTEMPTS:
                await asyncio.sleep(next(delays))
        self.metrics.alert_failures.inc()
        self.health.failure(f"webhook {host_of(self.url)}: {why}")
        limited.warning(f"fail:{self.url}", "alert to %s failed after retries: %s",
                        host_of(self.url), why)
        return False


async def listen(app: web.Application, hooks: list[Webhook]) -> None:
    settings = app[keys.SETTINGS]
    async with app[keys.EVENTS].subscribe() as queue:
        while True:
            kind, payload = await queue.get()
            if kind in KINDS:
                body = message(kind, payload, settings)
                for hook in hooks:
                    hook.offer(body)


async def alerts_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after http_ctx): listener + one sender per configured URL."""
    urls = app[keys.SETTINGS].alert_webhooks
    if not urls:
        yield
        return
    health = app[keys.HEALTH]["alerts"]
    hooks = [Webhook(u, app[keys.HTTP], app[keys.METRICS], health) for u in urls]
    tasks = [asyncio.create_task(h.run(), name=f"alerts:{host_of(h.url)}") for h in hooks]
    tasks.append(asyncio.create_task(listen(app, hooks), name="alerts:listen"))
    log.info("alerting %d webhook(s): %s", len(hooks), ", ".join(host_of(u) for u in urls))
    yield
    await stop_tasks(*tasks)
