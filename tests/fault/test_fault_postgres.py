"""PostgreSQL going away under a live feed, and the spill disk full or read-only.

Blink's ingest pipeline (real Coinbase client, tape, writer, spill) runs against the fake
exchange and a PRIVATE PostgreSQL (its own directory and port, `tests/faultkit.PgInstance`),
which the tests stop and crash; the shared server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest

from blink.runtime import keys
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.store import db
from blink.store.spill import spill_path
from blink.store.writer import Writer
from tests.fakes.rig import rigs
from tests.support.faultkit import PgInstance
from tests.support.trades import trade
from tests.support.waiting import wait_until

# The issue asks for a 60 s outage; the mechanism does not depend on its length, so the suite
# uses a short one. BLINK_FAULT_OUTAGE_SECONDS=60 runs the full-length version.
OUTAGE = float(os.environ.get("BLINK_FAULT_OUTAGE_SECONDS", "5"))


@pytest.fixture(scope="module")
def private_pg():
    pg = PgInstance()
    pg.start()
    yield pg
    pg.destroy()


async def new_database(pg: PgInstance) -> str:
    if not (pg.pgdata / "postmaster.pid").exists():
        await asyncio.to_thread(pg.start)
    conn = await asyncpg.connect(pg.dsn)
    name = f"fault_{os.urandom(4).hex()}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg.dsn.rsplit("/", 1)[0] + f"/{name}"


async def stream(fake, seconds: float, per_second: int) -> None:
    """The fake exchange trades at `per_second` for `seconds` (in tenths of a second)."""
    for _ in range(int(seconds * 10)):
        fake.emit(per_second // 10)
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_postgres_outage_then_hard_restart_keeps_every_trade(private_pg, aiohttp_server,
                                                                   make_settings):
    """An OUTAGE-second stop (clean shutdown: every connection cut), then a crash and restart
    (`pg_ctl -m immediate`: no checkpoint, recovery on start) in the middle of a burst."""
    dsn = await new_database(private_pg)
    async with rigs(aiohttp_server, make_settings, dsn) as build:
        r = await build(writer_queue=200, writer_flush_ms=20)
        spill = spill_path(r.settings.data_dir, "public")
        writer = r.app[keys.HEALTH]["writer"]
        r.fake.emit(50)
        await r.assert_complete()

        await asyncio.to_thread(private_pg.stop, "fast")
        await stream(r.fake, OUTAGE, per_second=200)
        assert writer.ok is False and writer.last_error
        assert spill.exists() and r.metric("blink_writer_spilled_total") > 0
        assert r.metric("blink_writer_queue_depth") > 200  # memory holds the bound, disk the rest
        await asyncio.to_thread(private_pg.start)
        r.fake.emit(20)
        await r.assert_complete()
        await wait_until(lambda: not spill.exists(), "spill file drained and removed")
        assert writer.ok is True

        burst = asyncio.create_task(stream(r.fake, 2, per_second=400))
        await asyncio.sleep(0.7)
        await asyncio.to_thread(private_pg.stop, "immediate")
        await asyncio.to_thread(private_pg.start)
        await burst
        await r.assert_complete()
        await wait_until(lambda: not spill.exists(), "spill file drained after the crash")
        assert r.metric("blink_writer_queue_depth") == 0 and writer.ok is True


# ---------------------------------------------------------------- the disk is full / read-only
@contextlib.contextmanager
def broken_disk(tmp: Path, fault: str):
    """A data dir on a tiny tmpfs that is filled up or remounted read-only (needs mount, as
    root in a container); without mount: the spill file is /dev/full, or the data dir's
    parent is a regular file. Yields (data_dir, repair, words of the expected error)."""
    mnt = tmp / "disk"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(mnt)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        yield from _without_mount(tmp, fault)
        return
    data, filler = mnt / "data", mnt / "filler"
    data.mkdir()
    try:
        if fault == "full":
            with open(filler, "wb") as f, contextlib.suppress(OSError):
                f.write(b"x" * (128 * 1024 - 16 * 1024))  # ~16 KB left: the first spill fits
            yield data, filler.unlink, "No space left on device"
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            yield data, lambda: subprocess.run(["mount", "-o", "remount,rw", str(mnt)],
                                               check=True), "Read-only file system"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _without_mount(tmp: Path, fault: str):
    if fault == "full":
        data = tmp / "data"
        data.mkdir()
        spill_path(data, "public").symlink_to("/dev/full")
        yield data, spill_path(data, "public").unlink, "No space left on device"
    else:
        parent = tmp / "not-a-dir"
        parent.write_text("a file where the data dir's parent should be")
        yield parent / "data", lambda: (parent.unlink(), parent.mkdir()), "Not a directory"


@pytest.mark.parametrize("fault", ["full", "read_only"])
async def test_spill_disk_full_or_read_only_reports_backs_off_and_loses_nothing(
        private_pg, make_settings, tmp_path, caplog, fault):
    dsn = await new_database(private_pg)
    with broken_disk(tmp_path, fault) as (data, repair, words):
        settings = make_settings(pg_dsn=dsn, data_dir=str(data), writer_queue=100,
                                 writer_flush_ms=20)
        pool = await db.create_pool(dsn)
        health, metrics = Health()["writer"], Metrics()
        writer = Writer(pool, settings, metrics, health, retry_base=0.05, retry_cap=0.5)
        attempts = 0
        real_append = writer.spill.append

        def counted(rows):  # failed attempts only: successful ones are fine
            nonlocal attempts
            try:
                return real_append(rows)
            except OSError:
                attempts += 1
                raise

        writer.spill.append = counted
        task = asyncio.create_task(writer.run())
        try:
            await asyncio.to_thread(private_pg.stop, "fast")
            with caplog.at_level(logging.WARNING, logger="blink.store.writer"):
                for i in range(1, 3001):  # 3,000 trades over ~1.5 s, then 1.5 s more
                    writer.submit(trade(i))
                    if i % 20 == 0:
                        await asyncio.sleep(0.01)
                await asyncio.sleep(1.5)
            assert health.ok is False and words in health.detail["spill_error"]
            assert str(writer.spill.path) in health.detail["spill_error"]
            # failed spills bounded by the backoff (~4/s here), not by the 150 wake-ups the
            # trades caused (over 100 failed attempts without it)
            assert 1 <= attempts <= 25
            spill_lines = [r for r in caplog.records if "cannot spill" in r.getMessage()]
            assert len(spill_lines) == 1  # rate-limited: one line per 10 s

            repair()
            await asyncio.to_thread(private_pg.start)
            await asyncio.wait_for(writer.wait_flushed(), 30)
            await wait_until(lambda: not writer.spill.path.exists(), "spill drained, removed")
        finally:
            await writer.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        stored = [r["trade_id"] for r in await pool.fetch("SELECT trade_id FROM trades"
                                                           " ORDER BY trade_id")]
        await pool.close()
        assert stored == list(range(1, 3001))  # nothing dropped: memory and disk held it all
        assert writer.spill.bad_lines == 0  # no torn row was left in the spill file
        assert not writer.spill.path.exists() and health.ok is True


async def test_routes_that_query_postgres_answer_503_while_it_is_down(private_pg, make_settings,
                                                                      aiohttp_client, caplog):
    from tests.support.web import fill_latest, start_client

    dsn = await new_database(private_pg)
    app, client = await start_client(aiohttp_client, make_settings(pg_dsn=dsn))
    fill_latest(app[keys.LATEST])
    await asyncio.to_thread(private_pg.stop, "fast")
    try:
        for _ in range(3):
            for path in ("/demo/data?minutes=5", "/api/anomalies"):
                r = await client.get(path)
                body = await r.json()
                assert r.status == 503 and body["error"] == "database unavailable", body
            r = await client.get("/score")  # in-memory routes do not care
            assert r.status == 200 and (await r.json())["ready"] is True
    finally:
        await asyncio.to_thread(private_pg.start)
    ours = [rec for rec in caplog.records if rec.name.startswith("blink")]
    assert not any(rec.exc_info for rec in ours)  # no traceback from Blink
    assert sum("database unavailable" in rec.getMessage() for rec in ours) == 1  # rate-limited
    r = await client.get("/api/anomalies")
    assert r.status == 200
