"""The model watcher: keeps every product's served model current.

Each product has its own registered model (`settings.for_product(p).model_name`: the first
product `MODEL_NAME`, the others `<MODEL_NAME>-<product>`) and its own slot
(`keys.MODELS[p]`; `keys.MODEL` is the first product's). At start-up, every
`registry_poll_seconds`, and at once when the trainer in this process promoted a version
(`keys.MODEL_RELOAD`), it re-resolves `models:/<name>@production` of each product in the model
worker process (`blink.model.registry`: resolve, load, compile) and swaps a new version into
that product's slot and detector alone. When MLflow is unreachable the current models stay in
place; the failure shows in /readyz ("model", "model:<product>" for the others).
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


def component(app: web.Application, base: str, product: str) -> str:
    """A per-product health component: `base` for the first product, `base:<product>`."""
    return base if product == app[keys.SETTINGS].pair else f"{base}:{product}"


def slot_of(app: web.Application, product: str) -> registry.ModelSlot:
    slots = app.get(keys.MODELS)
    return slots[product] if slots and product in slots else app[keys.MODEL]


async def check(app: web.Application, product: str | None = None) -> bool:
    """Re-resolve one product's model (default the first); swap a newly resolved one in.
    True when a model was swapped."""
    product = product or app[keys.SETTINGS].pair
    settings, slot = app[keys.SETTINGS].for_product(product), slot_of(app, product)
    health = app[keys.HEALTH][component(app, "model", product)]
    # in the model worker process: this one never imports mlflow or sklearn
    loop, executor = asyncio.get_running_loop(), model_workers.get(app)
    try:
        resolved = await loop.run_in_executor(executor, registry.resolve, settings)
    except BrokenProcessPool:
        model_workers.renew(app, executor)
        raise
    if resolved is None or resolved.label == slot.label:
        health.success(model=slot.label, registered=resolved is not None)
        return False
    served = await loop.run_in_executor(executor, registry.load, settings, resolved)
    swap(app, served, resolved.label, product)
    health.success(model=resolved.label, registered=True)
    return True


def swap(app: web.Application, served, label: str, product: str | None = None) -> None:
    """Serve `served` for `product` (default the first) from now on (one assignment each: the
    scoring path sees old or new)."""
    product = product or app[keys.SETTINGS].pair
    slot, metrics = slot_of(app, product), app[keys.METRICS]
    detector = keys.of_product(app, keys.DETECTORS, keys.DETECTOR, product)
    if detector is not None:
        detector.set_model(served)
    previous, old = slot.label, slot.served
    slot.served, slot.label, slot.loaded_at = served, label, time.time()
    metrics.model_reloads.labels(product=product).inc()
    if old is not None:
        with contextlib.suppress(KeyError):
            metrics.model_info.remove(product, str(old.version))
    metrics.model_info.labels(product=product, version=str(served.version)).set(1)
    log.info("serving model %s for %s (was %s)", label, product, previous or "none")


async def _watch(app: web.Application) -> None:
    settings, reload = app[keys.SETTINGS], app[keys.MODEL_RELOAD]
    while True:
        reload.clear()
        for product in settings.pairs:  # each on its own: one failing keeps the others going
            try:
                await check(app, product)
            except Exception as e:  # noqa: BLE001 - keep the current model, retry next poll
                app[keys.HEALTH][component(app, "model", product)].failure(e)
                log.debug("model check of %s failed", product, exc_info=True)
                if isinstance(e, BrokenProcessPool):
                    break  # a fresh worker at the next poll
        with contextlib.suppress(TimeoutError):  # (not wait_for: see tasks.py)
            async with asyncio.timeout(settings.registry_poll_seconds):
                await reload.wait()


_watcher_task = tasks.background("model-watcher", _watch)


async def watcher_ctx(app: web.Application):
    """Cleanup context: the model slots, the reload event and the watcher task."""
    slots = app[keys.MODELS] = {p: registry.ModelSlot() for p in app[keys.SETTINGS].pairs}
    app[keys.MODEL] = slots[app[keys.SETTINGS].pair]
    app[keys.MODEL_RELOAD] = asyncio.Event()
    async for _ in _watcher_task(app):
        yield


def request_reload(app: web.Application) -> None:
    """Make the watcher re-resolve now (after a promotion in this process)."""
    event = app.get(keys.MODEL_RELOAD)
    if event is not None:
        event.set()
