"""The scoring pipeline's cleanup context: one detector per product, their store flushers and
the Redis mirror.

Put it in `create_app` (ingest role) BEFORE the ingest context: it creates one `Detector` per
product of `settings.pairs` in `app[keys.DETECTORS]` (each built with
`settings.for_product(p)`, writing into `app[keys.LATESTS][p]`; `app[keys.DETECTOR]` is the
first product's); the ingest context then feeds each product's tape to its detector. With
several products the detectors share a `MarketContext` (the other products' latest returns:
an explanation line on each anomaly). Needs `app[keys.POOL]` and `app[keys.REDIS]` (the
resource contexts run first). On cleanup (after ingest stopped) the tasks are cancelled and
the buffers flushed one last time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from blink.detect.detector import Detector
from blink.detect.latest import Latest
from blink.detect.market import MarketContext
from blink.outputs.mirror import Mirror
from blink.runtime import keys
from blink.runtime.tasks import stop_tasks, supervise
from blink.store.feature_rows import FeatureRowFlusher

log = logging.getLogger(__name__)


def build_detectors(app: web.Application) -> dict[str, Detector]:
    """One detector per product, in `settings.pairs` order (the market context shared)."""
    settings = app[keys.SETTINGS]
    if keys.LATESTS not in app:  # an app built with the first product's LATEST alone
        app[keys.LATESTS] = {p: app[keys.LATEST] if p == settings.pair else
                             Latest(product_id=p, source=settings.source)
                             for p in settings.pairs}
    latests = app[keys.LATESTS]
    market = MarketContext(latests).explain if len(settings.pairs) > 1 else None
    return {p: Detector(settings.for_product(p), latests[p], app[keys.METRICS],
                        app[keys.EVENTS], market=market) for p in settings.pairs}


async def detector_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, health, metrics = app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS]
    detectors = app[keys.DETECTORS] = build_detectors(app)
    app[keys.DETECTOR] = detectors[settings.pair]
    flushers = [FeatureRowFlusher(app[keys.POOL], d, health["features_store"])
                for d in detectors.values()]
    tasks = [asyncio.create_task(supervise(f.run, health["features_store"]),
                                 name=f"features_store:{f.detector.product_id}")
             for f in flushers]
    if app[keys.REDIS] is not None:
        mirror = Mirror(app[keys.REDIS], settings.redis_prefix, health["redis"], metrics,
                        first=settings.pair)
        tasks.append(asyncio.create_task(
            supervise(lambda: mirror.run(app[keys.EVENTS]), health["redis"]), name="mirror"))
    yield
    await stop_tasks(*tasks)
    for flusher in flushers:
        try:
            written = await flusher.flush()
            log.info("feature rows of %s flushed on shutdown: %d",
                     flusher.detector.product_id, written)
        except Exception as e:  # noqa: BLE001 - shutdown goes on; the loss is reported
            log.error("final feature flush of %s failed (%d rows lost): %s",
                      flusher.detector.product_id, len(flusher.detector.rows), e)
