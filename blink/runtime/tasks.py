"""Named, owned background tasks: started in a cleanup context, cancelled and awaited on exit.

Every bounded wait in Blink is `async with asyncio.timeout(...)`, never `asyncio.wait_for`: on
Python 3.11 wait_for loses a cancellation that arrives in the same loop turn as the awaited
thing completes (CPython gh-86296, fixed by 3.12's rewrite on asyncio.timeout), and a loop
that waits that way (the model watcher's reload event, the writer's flush timer) then runs on
after `stop_tasks` cancelled it: the shutdown waits forever (`tests/unit/test_cancellation.py`).

`supervise` runs a loop body forever; when it raises, the failure goes to the component's
health (logged once), and the body is retried with exponential backoff and full jitter, capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from blink.runtime.health import Component

log = logging.getLogger(__name__)


def backoff_delays(base: float = 1.0, cap: float = 30.0, rng: random.Random | None = None):
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**n))."""
    rng = rng or random.Random()
    n = 0
    while True:
        yield rng.uniform(0, min(cap, base * 2**n))
        n += 1


async def supervise(body: Callable[[], Awaitable[None]], health: Component,
                    base: float = 1.0, cap: float = 30.0) -> None:
    """Run `body` until cancelled; on error, record it and retry after a jittered backoff.

    A body that returns normally is simply restarted (after a short pause).
    """
    delays = backoff_delays(base, cap)
    while True:
        try:
            await body()
            delays = backoff_delays(base, cap)
            await asyncio.sleep(base)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a loop must survive anything but cancel
            health.failure(e)
            log.debug("%s failed", health.name, exc_info=True)
            await asyncio.sleep(next(delays))


async def stop_tasks(*tasks: asyncio.Task | None) -> None:
    """Cancel every task, then wait for each to finish; their cancellation is not an error.
    (The one way Blink stops the tasks it owns.)"""
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def background(name: str, factory: Callable[[web.Application], Awaitable[None]]):
    """A cleanup context that runs `factory(app)` as a named task and cancels it on cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(factory(app), name=name)
        yield
        await stop_tasks(task)

    ctx.__name__ = f"{name}_ctx"
    return ctx
