"""The app's model worker process (`blink.model.worker`): started with the app, replaced when
it dies, ended on cleanup.

At start the worker is asked to import the trainer (`PREWARM`: numpy, the feature engine and
the forest builder; sklearn is no longer imported, Blink builds its forests itself), so the
first fit does not pay for it; the watcher's first look at the registry imports MLflow there
at the same time, while a first start's history loads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Executor

from aiohttp import web

from blink.model import worker
from blink.runtime import keys

PREWARM = "import blink.model.trainer"  # run with the builtin exec: picklable, returns None


def get(app: web.Application) -> Executor:
    """The app's model worker, or its thread executor where no worker was set up (tests)."""
    return app.get(keys.WORKER) or app[keys.EXECUTOR]


def renew(app: web.Application, broken: Executor | None = None) -> None:
    """Replace a worker that died (BrokenProcessPool): the next call spawns a fresh one.
    With `broken` (the worker a call failed in), only if it is still the app's: several
    products' tasks may see the same death, one replacement is enough."""
    old = app.get(keys.WORKER)
    if old is not None and (broken is None or broken is old):
        worker.stop(old)
        app[keys.WORKER] = worker.spawn(app[keys.SETTINGS])


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.WORKER] = worker.spawn(app[keys.SETTINGS])
    app[keys.WORKER].submit(exec, PREWARM)  # (a failure here would resurface at first use)
    yield
    worker.stop(app[keys.WORKER])
