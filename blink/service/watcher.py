"""The model watcher: keeps the served model current.

At start-up, every `registry_poll_seconds`, and at once when the trainer in this process
promoted a version (`keys.MODEL_RELOAD`), it re-resolves `models:/<name>@production` in the
model worker process (`blink.model.registry`: resolve, load, compile) and swaps a new version
into the slot and the detector. When MLflow is unreachable the current model stays in place;
the failure shows in /readyz ("model").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures.process import BrokenProcessPool

from aiohttp import web

from blink.model import registry
from blink.runtime import keys, tasks
from blink.service import model_workers

log = logging.getLogger(__name__)


async def check(app: web.Application) -> bool:
    """Re-resolve once; swap a newly resolved model in. True when a model was swapped."""
    settings, slot = app[keys.SETTINGS], app[keys.MODEL]
    health = app[keys.HEALTH]["model"]
    # in the model worker process: this one never imports mlflow or sklearn
    loop, executor = asyncio.get_running_loop(), model_workers.get(app)
    try:
        resolved = await loop.run_in_executor(executor, registry.resolve, settings)
    except BrokenProcessPool:
        model_workers.renew(app)
        raise
    if resolved is None or resolved.label == slot.label:
        health.success(model=slot.label, registered=resolved is not None)
        return False
    served = await loop.run_in_executor(executor, registry.load, settings, resolved)
    swap(app, served, resolved.label)
    health.success(model=resolved.label, registered=True)
    return True


def swap(app: web.Application, served, label: str) -> None:
    """Serve `served` from now on (one assignment each: the scoring path sees old or new)."""
    slot, metrics = app[keys.MODEL], app[keys.METRICS]
    detector = app.get(keys.DETECTOR)
    if detector is not None:
        detector.set_model(served)
    previous = slot.label
    slot.served, slot.label, slot.loaded_at = served, label, time.time()
    metrics.model_reloads.inc()
    metrics.model_info.clear()
    metrics.model_info.labels(version=str(served.version)).set(1)
    log.info("serving model %s (was %s)", label, previous or "none")


async def _watch(app: web.Application) -> None:
    settings, reload = app[keys.SETTINGS], app[keys.MODEL_RELOAD]
    health = app[keys.HEALTH]["model"]
    while True:
        reload.clear()
        try:
            await check(app)
        except Exception as e:  # noqa: BLE001 - keep the current model, retry at the next poll
            health.failure(e)
            log.debug("model check failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reload.wait(), settings.registry_poll_seconds)


_watcher_task = tasks.background("model-watcher", _watch)


async def watcher_ctx(app: web.Application):
    """Cleanup context: the model slot, the reload event and the watcher task."""
    app[keys.MODEL] = registry.ModelSlot()
    app[keys.MODEL_RELOAD] = asyncio.Event()
    async for _ in _watcher_task(app):
        yield


def request_reload(app: web.Application) -> None:
    """Make the watcher re-resolve now (after a promotion in this process)."""
    event = app.get(keys.MODEL_RELOAD)
    if event is not None:
        event.set()
