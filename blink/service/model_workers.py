"""The app's model worker process (`blink.model.worker`): started with the app, replaced when
it dies, ended on cleanup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Executor

from aiohttp import web

from blink.model import worker
from blink.runtime import keys


def get(app: web.Application) -> Executor:
    """The app's model worker, or its thread executor where no worker was set up (tests)."""
    return app.get(keys.WORKER) or app[keys.EXECUTOR]


def renew(app: web.Application) -> None:
    """Replace a worker that died (BrokenProcessPool): the next call spawns a fresh one."""
    old = app.get(keys.WORKER)
    if old is not None:
        worker.stop(old)
        app[keys.WORKER] = worker.spawn(app[keys.SETTINGS])


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    app[keys.WORKER] = worker.spawn(app[keys.SETTINGS])
    yield
    worker.stop(app[keys.WORKER])
