"""The embedded PostgreSQL must not outlive the service that started it, however it ends.

`pg_ctl start` daemonises the postmaster: it is not a child of the service, and a service
killed with SIGKILL (or by the OOM killer) used to leave it running. Two guards:

- **A watchdog** (`python -m blink.store.pgwatch PGDATA PID`), started by
  `EmbeddedPostgres.start`: a small process in its own session that blocks reading a pipe whose
  write end only the service holds. End of file means the service is gone (a clean stop closes
  the pipe too, after stopping the server itself); the watchdog then drops the dead holder from
  pgserver's handle list and, when no live process holds the server any more, stops it
  (`pg_ctl stop -m fast`). It imports nothing heavy until then (~10 MB while it waits).
- **At start-up**, handles of processes that no longer exist are dropped from pgserver's list
  (`prune_handles`): a server left behind is then reused, and stopped by the next clean stop,
  instead of staying "held" by a dead pid forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

HANDLES = ".handle_pids.json"  # pgserver's list of the processes holding the server


def _pgserver():
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver import postgres_server, utils

    return postgres_server, utils


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_handles(pgdata: Path, gone: int | None = None) -> list[int]:
    """Drop `gone` and every pid that no longer exists from the handle list (under pgserver's
    lock); the pids that still hold the server."""
    postgres_server, utils = _pgserver()
    with postgres_server.PostgresServer._lock:
        handles = utils.DiskList(pgdata / HANDLES)
        pids = handles.get()
        live = [p for p in pids if p != gone and _alive(p)]
        if live != pids:
            handles.put(live)
    return live


def stop_if_orphaned(pgdata: Path, gone: int) -> bool:
    """Stop the server in `pgdata` when `gone` was its last live holder; True if stopped."""
    postgres_server, utils = _pgserver()
    if prune_handles(pgdata, gone):
        return False
    info = utils.PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    return True


def start_watchdog(pgdata: Path) -> subprocess.Popen:
    """The watchdog for this process's handle on `pgdata`; close its stdin to release it."""
    return subprocess.Popen(
        [sys.executable, "-m", "blink.store.pgwatch", str(pgdata), str(os.getpid())],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)


def release_watchdog(watchdog: subprocess.Popen) -> None:
    """After a clean stop: the watchdog sees EOF, finds nothing to stop, exits."""
    if watchdog.stdin is not None:
        watchdog.stdin.close()
    try:
        watchdog.wait(60)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


def main(argv: list[str]) -> int:
    pgdata, parent = Path(argv[0]), int(argv[1])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe ends the watch (or SIGKILL)
    sys.stdin.buffer.read()  # returns at EOF: the service closed the pipe or died
    try:
        if stop_if_orphaned(pgdata, parent):
            print(f"blink pgwatch: process {parent} is gone: stopped the embedded PostgreSQL "
                  f"in {pgdata}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 - one line on stderr, never a traceback
        print(f"blink pgwatch: could not stop the embedded PostgreSQL in {pgdata}: {e}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
