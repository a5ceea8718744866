"""What a hung CI run prints last: tests/support/hangs.py's task dump (every pending asyncio
task's suspended frames, read from another thread) and .ci/digest.py's summary of a saved log
(the last test line, the project frames of the last hang's dumps, the FAILED lines)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from tests.support import hangs

ROOT = Path(__file__).resolve().parents[2]


def load_digest():
    spec = importlib.util.spec_from_file_location("ci_digest", ROOT / ".ci" / "digest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.digest


async def _stuck_here(event: asyncio.Event) -> None:
    await event.wait()


async def test_the_task_dump_names_each_pending_task_and_the_line_it_waits_at():
    event = asyncio.Event()
    task = asyncio.create_task(_stuck_here(event), name="stuck-task")
    await asyncio.sleep(0)
    # read from another thread while this loop runs, as the plugin's timer does
    text = await asyncio.to_thread(hangs.task_report, "t::x", 230)
    assert text.startswith("Hang dump: t::x still running after 230 s")
    block = text.split("Task stuck-task", 1)[1].split("\nTask ", 1)[0]
    assert "test_hang_reports.py" in block and "in _stuck_here" in block
    event.set()
    await task


LOG = """tests/unit/test_a.py ....                                    [ 10%]
tests/integration/test_b.py ..Hang dump: tests/integration/test_b.py::test_two still running \
after 230 s; pending asyncio tasks:
Task mirror <coroutine object Mirror.run at 0x7f>
  File "/ci/work/blink/outputs/mirror.py", line 123 in run
Task Task-1 <coroutine object test_two at 0x7f>
  File "/ci/work/tests/integration/test_b.py", line 40 in test_two
  File "/ci/work/.venv/lib/python3.11/site-packages/aiohttp/web_runner.py", line 9 in cleanup
Timeout (0:04:00)!
Thread 0x00007f01 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 320 in wait
Current thread 0x00007f02 (most recent call first):
  File "/usr/lib/python3.11/selectors.py", line 468 in select
  File "/ci/work/.venv/lib/python3.11/site-packages/_pytest/runner.py", line 144 in x
make: *** [Makefile:22: test] Error 143
"""


def test_the_digest_says_where_the_run_hung():
    lines = load_digest()(LOG)
    assert lines[0] == "last test line: tests/integration/test_b.py .."
    assert lines[1].startswith("Hang dump: tests/integration/test_b.py::test_two")
    assert lines[2:] == ["  Task mirror", "    blink/outputs/mirror.py:123 run",
                         "  Task Task-1", "    tests/integration/test_b.py:40 test_two"]


def test_the_digest_of_a_plain_failure_is_its_failed_lines():
    log = ("tests/unit/test_a.py .F                                    [100%]\n"
           "FAILED tests/unit/test_a.py::test_b - AssertionError: 1 != 2\n"
           "= 1 failed, 1 passed in 0.5s =\n")
    assert load_digest()(log) == [
        "last test line: tests/unit/test_a.py .F                                    [100%]",
        "FAILED tests/unit/test_a.py::test_b - AssertionError: 1 != 2"]
