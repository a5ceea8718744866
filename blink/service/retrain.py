"""The retrain schedule in the service: every `retrain_seconds` of EVENT time, per product.

Each product of `settings.pairs` has its own schedule (a supervised task), its own model
(trained with `settings.for_product(p)`: its tape, its registered name) and its own health
component ("training" for the first product, "training:<product>" for the others). The
schedules are STAGGERED: after its first fit, product i of n waits `i / n` of
`retrain_seconds` more before its first hourly retrain, so the products' retrains spread over
the hour instead of queueing for the model worker at the same moment (the first product keeps
the single-product schedule exactly).

Event time is the product's newest trade the pipeline has seen (`Latest.as_of`), or, in a
process that does not ingest (`--role train`), its newest trade in the tape. The first fit
happens as soon as the tape yields `train_min_rows` warm feature rows (checked every few wall
seconds until then), but not while a first start's history is still loading (`keys.WARMUP`: the REST
bootstrap or a local source's history played at once): the first model is fitted once, on all
of it, after the writer has stored it, instead of once per hour of history swept past;
afterwards a retrain is due when event time has moved `retrain_seconds` past the end
of the previous attempt. A failed attempt (MLflow unreachable, database error) is counted and
shown in /readyz ("training"), and retried at the next scheduled time. After a promotion the
model watcher of this process re-resolves at once.

The tape is read on the event loop (one async binary COPY); features, fit and MLflow log run
in the model worker PROCESS (`worker.py`), not a thread: the feature pass is a Python loop
over every trade (~5 s for 300,000), and in a thread it would hold the GIL against the event loop
(measured: loop wake-up lag p99 0.7 ms idle -> 72 ms during the feature pass). The worker
costs its own interpreter (~250 MB with mlflow imported) and is started lazily by `spawn`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta

from aiohttp import web

from blink.model import trainer
from blink.runtime import keys, tasks
from blink.service import model_workers, watcher
from blink.store.tape_reads import newest_trade_time

log = logging.getLogger(__name__)

TICK_SECONDS = 2.0  # wall seconds between looks at the event clock
FLUSH_WAIT = 30.0  # longest wait for the writer to store the history before the first fit
_COUNTS = re.compile(r"(\d+)\D+?(\d+)")  # TooFewRows: "<rows> warm feature rows, need <n>"


async def event_time(app: web.Application, product: str | None = None) -> datetime | None:
    product = product or app[keys.SETTINGS].pair
    latests = app.get(keys.LATESTS) or {product: app[keys.LATEST]}
    latest = latests[product].as_of
    if latest is not None:
        return latest
    return await newest_trade_time(app[keys.POOL], product)


async def attempt(app: web.Application, end: datetime, executor=None,
                  product: str | None = None) -> str:
    """One retrain of `product` (default the first) ending at `end`: "promoted",
    "not_promoted", "too_few_rows" or "error".

    `executor` runs the blocking part (default: the app's thread pool).
    """
    product = product or app[keys.SETTINGS].pair
    settings, metrics = app[keys.SETTINGS].for_product(product), app[keys.METRICS]
    health = app[keys.HEALTH][watcher.component(app, "training", product)]
    first = product == app[keys.SETTINGS].pair
    warmup = app.get(keys.WARMUP) if first else None  # the first score's warm-up
    runs = metrics.training_runs
    started = time.perf_counter()
    if warmup is not None:
        warmup.training_begin()
    try:
        result, info = await trainer.retrain_once(app[keys.POOL], settings, end,
                                                  executor or app[keys.EXECUTOR])
    except trainer.TooFewRows as e:
        health.detail.update(waiting=str(e))
        if warmup is not None:
            counts = _COUNTS.search(str(e))
            warmup.training_rows(*(int(c) for c in counts.groups()) if counts else (None, None))
        return "too_few_rows"
    except Exception as e:  # noqa: BLE001 - reported, retried at the next schedule
        if warmup is not None:
            warmup.training_end()
        runs.labels(outcome="error", product=product).inc()
        health.failure(e, last_attempt=end.isoformat())
        log.debug("retrain failed", exc_info=True)
        if isinstance(e, BrokenProcessPool):
            raise  # the worker died: `supervise` restarts the schedule with a new one
        return "error"
    seconds = time.perf_counter() - started
    if warmup is not None:
        warmup.training_end()
    outcome = "promoted" if info.promoted else "not_promoted"
    runs.labels(outcome=outcome, product=product).inc()
    metrics.training_seconds.observe(seconds)
    health.detail.pop("waiting", None)
    health.success(last_attempt=end.isoformat(), version=info.label, outcome=outcome,
                   reason=info.reason, seconds=round(seconds, 2),
                   rows=int(result.metrics["rows_train"]))
    log.info("retrain on data up to %s: %s v%s %s in %.1f s", end.isoformat(), info.name,
             info.version, outcome.replace("_", " "), seconds)
    if info.promoted:
        watcher.request_reload(app)
    return outcome


def stagger(settings, product: str) -> timedelta:
    """How much later than its first fit + `retrain_seconds` a product first retrains:
    product i of n waits i / n of the interval more (the first product: nothing)."""
    i, n = settings.pairs.index(product), len(settings.pairs)
    return timedelta(seconds=settings.retrain_seconds * i / n)


async def _schedule(app: web.Application, product: str | None = None) -> None:
    product = product or app[keys.SETTINGS].pair
    every = timedelta(seconds=app[keys.SETTINGS].retrain_seconds)
    offset = stagger(app[keys.SETTINGS], product)  # once, after the first fit
    due: datetime | None = None  # event time of the next retrain; None: as soon as possible
    await history_loaded(app)
    while True:
        end = await event_time(app, product)
        if end is not None and (due is None or end >= due):
            executor = model_workers.get(app)
            try:
                outcome = await attempt(app, end, executor, product)
            except BrokenProcessPool:
                model_workers.renew(app, executor)  # died: a fresh one for the next attempt
                raise
            if outcome != "too_few_rows":
                due, offset = end + every + offset, timedelta(0)
            else:
                due = None
        await asyncio.sleep(TICK_SECONDS)


async def history_loaded(app: web.Application) -> None:
    """Wait while a first start's history loads, then until the writer has stored it."""
    warmup = app.get(keys.WARMUP)
    if warmup is None or "ingest" not in app[keys.SETTINGS].roles:
        return  # (another process ingests: its tape is what the schedule reads)
    while not _settled(app, warmup):  # noqa: ASYNC110 - polled like the event clock
        await asyncio.sleep(TICK_SECONDS / 4)
    writer = app.get(keys.WRITER)
    if warmup.history is not None:
        warmup.training_begin()  # what follows is the first fit's: storing what it reads
    if writer is not None:
        try:
            async with asyncio.timeout(FLUSH_WAIT):
                await writer.wait_flushed()
        except TimeoutError:
            log.warning("the history is not all stored after %.0f s: training on what is",
                        FLUSH_WAIT)


def _settled(app: web.Application, warmup) -> bool:
    """No history is loading, nor will be: loaded, or trades flow without one."""
    if warmup.history is not None:
        return not warmup.loading
    tape = app.get(keys.TAPE)  # a source begins its history before its first trade
    return tape is not None and tape.contiguous_id is not None


async def _run(app: web.Application) -> None:
    """Every product's schedule, each supervised on its own."""
    await asyncio.gather(*(
        tasks.supervise(lambda p=p: _schedule(app, p),
                        app[keys.HEALTH][watcher.component(app, "training", p)])
        for p in app[keys.SETTINGS].pairs))


trainer_ctx = tasks.background("trainer", _run)
