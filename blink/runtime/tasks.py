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


def check_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop and something swallowed it.

    redis-py (8.1, on Python 3.11) returns normally from a command cancelled at the wrong
    moment, about one cancel in two in a tight loop of SETs: the task's `cancelling()` count
    says a cancel was requested and never honoured. A loop calls this after each such call.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def supervise(body: Callable[[], Awaitable[None]], health: Component,
                    base: float = 1.0, cap: float = 30.0) -> None:
    """Run `body` until cancelled; on error, record it and retry after a jittered backoff.

    A body that returns normally is simply restarted (after a short pause).
    """
    delays = backoff_delays(base, cap)
    while True:
        try:
            await body()
            check_cancelled()
            delays = backoff_delays(base, cap)
            await asyncio.sleep(base)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a loop must survive anything but cancel
            check_cancelled()
            health.failure(e)
            log.debug("%s failed", health.name, exc_info=True)
            await asyncio.sleep(next(delays))


async def stop_tasks(*tasks: asyncio.Task | None, recancel: float = 2.0) -> None:
    """Cancel every task, then wait for each to finish; their cancellation is not an error,
    any other exception is raised (the first). (The one way Blink stops the tasks it owns.)

    A task still running `recancel` seconds after its cancel is cancelled again, with one
    WARNING naming it and where it waits: on Python 3.11 a library's internal
    `asyncio.wait_for` (asyncpg uses it) can lose a cancellation (CPython gh-86296), and a
    loop that lost it would otherwise keep the shutdown waiting forever.
    """
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    pending, warned = set(live), set()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=recancel)
        for task in pending:
            if task not in warned:
                warned.add(task)
                frames = task.get_stack(limit=1)
                where = (f"{frames[0].f_code.co_filename}:{frames[0].f_lineno}"
                         if frames else "?")
                log.warning("task %s did not stop %.0f s after its cancel (waiting at %s):"
                            " cancelling it again", task.get_name(), recancel, where)
            task.cancel()
    for task in live:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()


def background(name: str, factory: Callable[[web.Application], Awaitable[None]]):
    """A cleanup context that runs `factory(app)` as a named task and cancels it on cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(factory(app), name=name)
        yield
        await stop_tasks(task)

    ctx.__name__ = f"{name}_ctx"
    return ctx
