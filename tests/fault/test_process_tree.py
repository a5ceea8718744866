"""Nothing Blink starts outlives it: the model worker (and multiprocessing's resource tracker),
the embedded PostgreSQL and its watchdog, whether the service stops or is killed with SIGKILL;
and a server left behind by a dead holder is reused and stopped by the next clean stop."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest

from blink.store import db, pgwatch
from tests.support.faultkit import BlinkProcess, alive, postmaster_pid, wait_gone


async def wait_for_tree(blink: BlinkProcess, limit: float = 120.0) -> list[psutil.Process]:
    """The service's processes once the model worker and the PostgreSQL watchdog run."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        tree = blink.tree()
        names = " ".join(" ".join(p.cmdline()) for p in tree if alive(p))
        if "spawn_main" in names and "resource_tracker" in names and "pgwatch" in names:
            return tree
        assert loop.time() < end, f"the worker never started: {names!r}"
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_no_process_outlives_the_service(tmp_path, sig):
    data = tmp_path / "d"
    blink = BlinkProcess({"BLINK_DATA_DIR": str(data), "BLINK_SOURCE": "synthetic",
                          "BLINK_SPEED": "600"}, tmp_path / "blink.log", tmp_path)
    blink.start()
    try:
        await blink.wait_healthy()
        children = await wait_for_tree(blink)
        pg = psutil.Process(postmaster_pid(data / "pg"))
        assert pg.is_running()
        code = await blink.stop(sig)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
        left = await asyncio.to_thread(wait_gone, [*children, pg], 60)
        assert not left, [" ".join(p.cmdline()) for p in left]
        if sig == signal.SIGKILL:
            assert "stopped the embedded PostgreSQL" in blink.text()
    finally:
        blink.kill()


async def test_a_server_left_by_a_dead_holder_is_stopped_by_the_next_stop(tmp_path):
    """A holder killed together with its watchdog (say, the OOM killer took the group) left
    its pid in pgserver's handle list: the server ran on for good. Now the next Blink on the
    same directory reuses it and its clean stop stops it."""
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    pg = db.EmbeddedPostgres(tmp_path)
    await asyncio.to_thread(pg.start)
    try:
        handles = pgwatch._pgserver()[1].DiskList(pg.pgdata / pgwatch.HANDLES)
        handles.put([dead.pid, *handles.get()])  # the earlier holder, gone without a stop
        server = psutil.Process(postmaster_pid(pg.pgdata))
        await asyncio.to_thread(pg.stop)
        assert not await asyncio.to_thread(wait_gone, [server], 30)
    finally:
        if (pg.pgdata / "postmaster.pid").exists():
            from pgserver._commands import pg_ctl

            pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=pg.pgdata,
                   user="pgserver" if psutil.Process().uids().effective == 0 else None)
