import asyncio
import threading

import pytest

from blink.runtime.executor import DaemonExecutor


async def test_results_errors_and_daemon_threads():
    ex = DaemonExecutor(max_workers=2)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(ex, pow, 2, 10) == 1024
    with pytest.raises(ZeroDivisionError):
        await loop.run_in_executor(ex, lambda: 1 / 0)
    daemon = await loop.run_in_executor(ex, lambda: threading.current_thread().daemon)
    assert daemon is True  # a call still running at exit cannot hold the process


async def test_at_most_max_workers_at_once():
    ex = DaemonExecutor(max_workers=2)
    running, peak, lock = 0, 0, threading.Lock()
    gate = threading.Event()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1

    loop = asyncio.get_running_loop()
    calls = [loop.run_in_executor(ex, work) for _ in range(5)]
    await asyncio.sleep(0.2)
    gate.set()
    await asyncio.gather(*calls)
    assert peak == 2


def test_no_new_calls_after_shutdown():
    ex = DaemonExecutor()
    ex.shutdown()
    with pytest.raises(RuntimeError):
        ex.submit(print)
