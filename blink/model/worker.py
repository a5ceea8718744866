"""The model worker: ONE long-lived spawned process for training and everything MLflow.

Training (features over 12 h of tape, fit, MLflow log) and loading the served model (resolve
the alias, read the forest's arrays) both run there, so the service process never imports
mlflow (~225 MB with what it pulls in) and its event loop never waits on the GIL of a
Python-heavy fit. The compiled forest comes back as plain numpy arrays. The process is spawned
lazily on first use; a worker that died is replaced on the next call
(`blink.service.model_workers.renew`). At shutdown it
is ended at once, even mid-fit (a retrain is redone after a restart; MLflow's stores survive
a killed writer).

The worker never outlives the service, however the service ends (SIGKILL included): it asks
Linux to kill it when its parent dies (prctl PR_SET_PDEATHSIG; strictly, when the thread that
spawned it ends: always the event loop's thread, which submits every call), and a watcher
thread checks every `PARENT_POLL` s that its parent is still the service (portable, and it
covers a parent that died before the prctl). Once the worker is gone, multiprocessing's
resource tracker sees the end of its pipe and exits too.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from blink.runtime import logs

PARENT_POLL = 1.0  # seconds between the watcher thread's looks at the parent
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def follow_parent(parent: int) -> None:
    """In a child: end this process when `parent` dies (called first thing at its start)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl: nobody would send the signal
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL)
    os._exit(1)  # orphaned: re-parented to init (or a subreaper)


def _init(level: str, fmt: str, parent: int) -> None:
    follow_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when the worker ends
    logs.setup(level, fmt)


def spawn(settings) -> ProcessPoolExecutor:
    """A one-process pool (spawned, so no state is inherited from the event loop)."""
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init,
                               initargs=(settings.log_level, settings.log_format, os.getpid()))


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
