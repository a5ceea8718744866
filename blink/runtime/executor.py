"""The executor for blocking work: every call in its own daemon thread, a few at a time.

A `ThreadPoolExecutor`'s threads are joined when the interpreter exits, so one slow call still
running at shutdown (the first `import mlflow` and sqlite store creation take 5-60 s on a busy
machine) would hold a SIGTERM'd Blink for that long after its clean-up finished. Everything
that must complete (the embedded PostgreSQL stop, a training matrix) is awaited by its caller
before shutdown ends; what is left at exit is a read of the registry, safe to abandon (SQLite
and the MLflow server keep their own transactions atomic).
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor, Future


class DaemonExecutor(Executor):
    def __init__(self, max_workers: int = 4, name: str = "blink-worker") -> None:
        self._slots = threading.BoundedSemaphore(max_workers)
        self._name, self._count = name, 0
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._shutdown:
            raise RuntimeError("cannot schedule new calls after shutdown")
        future: Future = Future()

        def run() -> None:
            with self._slots:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001 - handed to the awaiting caller
                    future.set_exception(e)

        self._count += 1
        threading.Thread(target=run, name=f"{self._name}-{self._count}", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True  # calls still running finish (or are abandoned at exit)
