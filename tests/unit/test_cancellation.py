"""A loop Blink owns stops when it is cancelled, whatever else happens in that loop turn.

On Python 3.11 `asyncio.wait_for` loses a cancellation that arrives in the same turn as the
thing it waits on completes (CPython gh-86296): a loop waiting that way runs on, and the
shutdown that cancelled it waits forever. Blink waits with `asyncio.timeout` instead
(`blink/runtime/tasks.py`); these tests cancel at exactly that moment.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from aiohttp import web

from blink.runtime import keys
from blink.service import watcher
from tests.support.waiting import wait_until

BLINK = Path(__file__).resolve().parents[2] / "blink"


async def _stops_when_cancelled(task: asyncio.Task) -> bool:
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)  # a hang guard only
    if not done:  # swallowed: stop it for good so the test can report
        task.cancel()
        await asyncio.wait({task}, timeout=10)
    return bool(done) and task.cancelled()


async def test_the_model_watcher_stops_when_cancelled_as_a_reload_is_requested(
        make_settings, monkeypatch):
    checks = []

    async def check(app, product):
        checks.append(product)

    monkeypatch.setattr(watcher, "check", check)
    app = web.Application()
    app[keys.SETTINGS] = make_settings(registry_poll_seconds=30)
    app[keys.MODEL_RELOAD] = asyncio.Event()
    for _ in range(3):  # in a few different states of the loop
        task = asyncio.create_task(watcher._watch(app))
        await wait_until(lambda: checks, "the watcher's first check")
        await asyncio.sleep(0.01)  # now waiting for the reload event
        watcher.request_reload(app)  # the wait completes in this turn...
        assert await _stops_when_cancelled(task)  # ...and the cancel must still win
        checks.clear()


async def test_a_bounded_wait_in_a_loop_stops_when_cancelled_as_its_event_fires():
    """The rule itself, on the pattern the writer's flush timer and the watcher use."""

    async def waits(event: asyncio.Event) -> None:
        while True:
            event.clear()
            try:
                async with asyncio.timeout(30):
                    await event.wait()
            except TimeoutError:
                pass

    event = asyncio.Event()
    task = asyncio.create_task(waits(event))
    await asyncio.sleep(0.01)
    event.set()
    assert await _stops_when_cancelled(task)


def test_blink_never_waits_with_asyncio_wait_for():
    used = [f"{p.relative_to(BLINK)}:{node.lineno}"
            for p in sorted(BLINK.rglob("*.py"))
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.Attribute) and node.attr == "wait_for"]
    assert used == []


async def test_stop_tasks_cancels_again_a_task_that_lost_its_cancellation(caplog):
    """What a library's wait_for does on 3.11, made deterministic: the first cancel is
    swallowed and the loop runs on; stop_tasks re-delivers it, warns once, and returns."""
    from blink.runtime.tasks import stop_tasks

    swallowed = []

    async def loses_one_cancel() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(True)  # lost, as gh-86296 loses it

    task = asyncio.create_task(loses_one_cancel(), name="deaf-loop")
    await asyncio.sleep(0)
    async with asyncio.timeout(30):  # a hang guard only: the old stop_tasks waits forever
        await stop_tasks(task, recancel=0.05)
    assert task.cancelled() and swallowed == [True]
    warnings = [r for r in caplog.records if "deaf-loop" in r.getMessage()]
    assert len(warnings) == 1 and "cancelling it again" in warnings[0].getMessage()


async def test_stop_tasks_raises_a_task_failure_after_stopping_all():
    from blink.runtime.tasks import stop_tasks

    async def fails() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise ValueError("broken on the way out")

    failing = asyncio.create_task(fails())
    quiet = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    try:
        await stop_tasks(failing, quiet)
    except ValueError as e:
        assert "broken on the way out" in str(e)
    else:
        raise AssertionError("the failure was not raised")
    assert quiet.cancelled()
