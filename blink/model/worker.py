"""The model worker: ONE long-lived spawned process for everything that needs sklearn or MLflow.

Training (features over 12 h of tape, fit, MLflow log) and loading the served model (resolve
the alias, load the skops model, compile it) both run there, so the service process never
imports sklearn, scipy or mlflow (~225 MB) and its event loop never waits on the GIL of a
Python-heavy fit. The compiled forest comes back as plain numpy arrays. The process is spawned
lazily on first use; a worker that died is replaced on the next call
(`blink.service.model_workers.renew`). At shutdown it
is ended at once, even mid-fit (a retrain is redone after a restart; MLflow's stores survive
a killed writer).
"""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor

from blink.runtime import logs


def _init(level: str, fmt: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when the worker ends
    logs.setup(level, fmt)


def spawn(settings) -> ProcessPoolExecutor:
    """A one-process pool (spawned, so no state is inherited from the event loop)."""
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init,
                               initargs=(settings.log_level, settings.log_format))


def stop(process: ProcessPoolExecutor) -> None:
    """End the worker now, even mid-call, and wait (5 s at most) for the pool's manager thread
    to notice: on Python 3.11 an exit racing that thread's clean-up prints a "Bad file
    descriptor" traceback from concurrent.futures' atexit hook."""
    workers = list((getattr(process, "_processes", None) or {}).values())  # public in 3.14
    manager = getattr(process, "_executor_manager_thread", None)
    process.shutdown(wait=False, cancel_futures=True)
    for w in workers:
        w.terminate()
    if manager is not None:
        manager.join(timeout=5)
