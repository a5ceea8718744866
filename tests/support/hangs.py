"""Say where a hung test is stuck: every asyncio task's suspended stack, on the real stderr.

pytest's `faulthandler_timeout` prints each THREAD's stack; in an asyncio test that is only the
event loop's `select`, since a suspended coroutine is on no thread's stack. So a test (its
fixtures' teardown included) still running after `HANG_DUMP_S` gets, from a timer thread, every
pending task of every running event loop with the frames it is suspended in, in faulthandler's
frame format (`.ci/digest.py` prints the project's frames as CI's last lines). Not a time
limit: nothing fails by it, the test goes on.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest

HANG_DUMP_S = 230.0  # just before faulthandler's 240 s (pyproject), the slowest test takes ~60
_ERR = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    # capture is suspended while plugins configure: fd 2 is the real stderr here
    config.stash[_ERR] = os.dup(2)


def running_loops() -> list[asyncio.AbstractEventLoop]:
    return [o for o in gc.get_objects()
            if isinstance(o, asyncio.AbstractEventLoop) and o.is_running()]


def task_report(nodeid: str, after: float) -> str:
    lines = [f"Hang dump: {nodeid} still running after {after:.0f} s; pending asyncio tasks:"]
    for loop in running_loops():
        try:
            tasks = list(asyncio.all_tasks(loop))
        except RuntimeError as e:  # the set changed under us: say so, do not die
            lines.append(f"  (tasks of {loop!r} unreadable: {e})")
            continue
        for task in tasks:
            lines.append(f"Task {task.get_name()} {task.get_coro()!r:.120}")
            for frame in task.get_stack():
                code = frame.f_code
                lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}'
                             f" in {code.co_name}")
    return "\n".join(lines) + "\n"


def _dump(fd: int, nodeid: str, after: float) -> None:
    os.write(fd, task_report(nodeid, after).encode("utf-8", "replace"))


@pytest.fixture(autouse=True)
def _hang_dump(request: pytest.FixtureRequest):
    timer = threading.Timer(HANG_DUMP_S, _dump,
                            (request.config.stash[_ERR], request.node.nodeid, HANG_DUMP_S))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()
