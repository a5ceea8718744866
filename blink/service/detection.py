"""The scoring pipeline's cleanup context: the detector, its store flusher and Redis mirror.

Put it in `create_app` (ingest role) BEFORE the ingest context: it creates the `Detector` at
`app[keys.DETECTOR]`; the ingest context then calls `tape.subscribe_ordered(detector.on_trade)`.
Needs `app[keys.POOL]` and `app[keys.REDIS]` (the resource contexts run first). On cleanup
(after ingest stopped) the tasks are cancelled and the buffers flushed one last time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from blink.detect.detector import Detector
from blink.outputs.mirror import Mirror
from blink.runtime import keys
from blink.runtime.tasks import stop_tasks, supervise
from blink.store.feature_rows import FeatureRowFlusher

log = logging.getLogger(__name__)


async def detector_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, health, metrics = app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS]
    detector = Detector(settings, app[keys.LATEST], metrics, app[keys.EVENTS])
    app[keys.DETECTOR] = detector
    flusher = FeatureRowFlusher(app[keys.POOL], detector, health["features_store"])
    tasks = [asyncio.create_task(supervise(flusher.run, health["features_store"]),
                                 name="features_store")]
    if app[keys.REDIS] is not None:
        mirror = Mirror(app[keys.REDIS], settings.redis_prefix, health["redis"], metrics)
        tasks.append(asyncio.create_task(
            supervise(lambda: mirror.run(app[keys.EVENTS]), health["redis"]), name="mirror"))
    yield
    await stop_tasks(*tasks)
    try:
        written = await flusher.flush()
        log.info("feature rows flushed on shutdown: %d", written)
    except Exception as e:  # noqa: BLE001 - shutdown goes on; the loss is reported
        log.error("final feature flush failed (%d rows lost): %s", len(detector.rows), e)
