"""The tape writer: batching, idempotence, exact decimals, outage → spill → drain, shutdown."""

from __future__ import annotations

import asyncio

import asyncpg

from blink.store import db
from tests.conftest import PG_ADMIN_DSN
from tests.support.trades import T0, stored, varied
from tests.support.waiting import wait_until
from tests.support.writing import GatedPool, Harness, sample


async def admin(sql: str, *args) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def cut(dsn: str) -> None:
    """Make the test database unreachable: refuse new connections, kill the open ones."""
    name = dsn.rsplit("/", 1)[1]
    await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", name)


async def restore(dsn: str) -> None:
    await admin(f'ALTER DATABASE "{dsn.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS true')


async def test_batches_exact_round_trip_and_idempotence(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=100, writer_flush_ms=20)
    h = await Harness.start(settings)
    tape = varied(1050)
    h.submit(tape)
    await h.flushed()
    assert await stored(pg_dsn) == tape  # ids, times, exact prices and sizes, sides
    batches = sample(h.metrics, "blink_db_write_seconds_count")
    assert 11 <= batches < 1050 / 10  # batched by size, never a write per trade
    h.submit(tape[:500])  # the same trades again (live + backfill overlap): ignored
    await h.flushed()
    assert await stored(pg_dsn) == tape
    assert sample(h.metrics, "blink_writer_errors_total") == 0
    assert h.health["writer"].ok is True
    conn = await asyncpg.connect(pg_dsn)
    try:
        lag = await conn.fetchval("SELECT max(received_at) FROM trades")
    finally:
        await conn.close()
    assert lag is not None and lag > T0
    await h.stop()
    assert not settings.data_dir.joinpath("spill-public.csv").exists()


async def test_partial_batch_flushed_by_time(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=10_000, writer_flush_ms=30)
    h = await Harness.start(settings)
    h.submit(varied(3))
    await h.flushed()
    assert [t.trade_id for t in await stored(pg_dsn)] == [1, 2, 3]
    await h.stop()


async def test_outage_spills_then_drains_in_order(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, source="synthetic", writer_batch=20,
                             writer_flush_ms=10, writer_queue=50)
    spill = settings.data_dir / "spill-synthetic.csv"
    h = await Harness.start(settings)
    tape = varied(300)
    h.submit(tape[:40])
    await h.flushed()
    await cut(pg_dsn)
    try:
        for t in tape[40:]:
            h.writer.submit(t)
            if t.trade_id % 50 == 0:
                await asyncio.sleep(0.02)
        await wait_until(lambda: sample(h.metrics, "blink_writer_spilled_total") >= 200, "spill")
        assert spill.exists()
        assert h.health["writer"].ok is False
        assert len(h.writer._buf) <= 50 + 1  # memory stays bounded
        assert h.writer.queued == 260
    finally:
        await restore(pg_dsn)
    await h.flushed()
    assert await stored(pg_dsn, "synthetic") == tape
    assert not spill.exists()
    assert h.health["writer"].ok is True
    assert sample(h.metrics, "blink_writer_errors_total") >= 1
    assert sample(h.metrics, "blink_writer_queue_depth") == 0
    await h.stop()


async def test_close_spills_when_down_and_next_start_drains(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=50, writer_flush_ms=10)
    spill = settings.data_dir / "spill-public.csv"
    h = await Harness.start(settings)
    tape = varied(120)
    await cut(pg_dsn)
    try:
        h.submit(tape)
        await h.stop()  # database down: everything in flight goes to the spill file
        assert spill.exists()
        lines = spill.read_text().splitlines()
        assert lines[0] == "product_id,trade_id,time,price,size,side,received_at"
        assert len(lines) == 121
        with spill.open("a") as f:  # a crash tore the last line of an append
            f.write("BTC-USD,121,2026-01-05T12:0")
    finally:
        await restore(pg_dsn)

    h2 = await Harness.start(settings)  # a new process: the leftover spill is drained at start
    extra = varied(5, first=200)
    h2.submit(extra)
    await h2.flushed()
    assert await stored(pg_dsn) == tape + extra
    assert not spill.exists()
    assert h2.writer.spill.bad_lines == 1
    await h2.stop()


async def test_close_writes_everything_when_up(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=10_000, writer_flush_ms=60_000)
    h = await Harness.start(settings)
    tape = varied(77)
    h.submit(tape)
    await h.stop()  # the flush interval never elapsed: close() writes the partial batch
    assert await stored(pg_dsn) == tape
    assert not (settings.data_dir / "spill-public.csv").exists()
    h.writer.submit(varied(1, first=500)[0])  # after close: straight to the spill file
    assert (settings.data_dir / "spill-public.csv").exists()


async def test_bad_submission_is_counted_not_raised(make_settings, pg_dsn):
    h = await Harness.start(make_settings(pg_dsn=pg_dsn))
    h.writer.submit(object())  # type: ignore[arg-type]
    assert sample(h.metrics, "blink_writer_errors_total") == 1
    await h.stop()


async def test_burst_over_the_bound_spills_and_drains_while_healthy(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=50, writer_queue=100)
    h = await Harness.start(settings)
    tape = varied(1000)
    h.submit(tape)  # far faster than any database: memory must stay bounded
    await h.flushed()
    assert sample(h.metrics, "blink_writer_spilled_total") > 0
    assert await stored(pg_dsn) == tape
    assert not (settings.data_dir / "spill-public.csv").exists()
    await h.stop()


def spilled_ids(path) -> list[int]:
    return [int(line.split(",")[1]) for line in path.read_text().splitlines()[1:]]


async def test_close_leaves_a_spill_backlog_on_disk_instead_of_draining_it(make_settings,
                                                                           pg_dsn):
    """SIGTERM under a backlog: `close` writes at most the batch in flight, appends the buffer
    to the spill file after the older trades there, and the next start drains the file."""
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=50, writer_queue=100)
    spill = settings.data_dir / "spill-public.csv"
    gated = GatedPool(await db.create_pool(pg_dsn, settings.schema))
    h = Harness(settings, gated)
    tape = varied(1000)
    h.submit(tape)
    await wait_until(lambda: gated.waiting == 1, "the first write waits at the gate")
    gated.gate.release()  # one write (500 trades, a deep queue); the excess over 100 spills
    await wait_until(lambda: spill.exists() and gated.waiting == 1, "spilled, next write waiting")
    closing = asyncio.create_task(h.writer.close())
    await asyncio.sleep(0)  # close has begun: the database may now take everything
    for _ in range(1000):
        gated.gate.release()
    await closing
    on_disk = spilled_ids(spill)
    in_db = [t.trade_id for t in await stored(pg_dsn)]
    assert len(in_db) <= 500 + 50  # the first write and at most the one in flight
    assert sorted(set(in_db) | set(on_disk)) == [t.trade_id for t in tape]  # nothing lost
    assert len(set(in_db) & set(on_disk)) <= 50  # the file's drained head (written again)
    assert on_disk == sorted(on_disk)  # the buffer went after the older spilled trades
    await gated.close()

    h2 = await Harness.start(settings)  # the next start drains the file
    await wait_until(lambda: not spill.exists(), "the spill file drained", limit=30)
    assert await stored(pg_dsn) == tape
    assert not spill.exists()
    await h2.stop()


async def test_close_cuts_a_stuck_write_at_its_deadline_and_spills(make_settings, pg_dsn):
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=50)
    spill = settings.data_dir / "spill-public.csv"
    gated = GatedPool(await db.create_pool(pg_dsn, settings.schema))
    # a write that never ends: only the shutdown deadline can stop it
    h = Harness(settings, gated, write_timeout=10**6, close_timeout=0.2)
    tape = varied(120)
    h.submit(tape)
    await wait_until(lambda: gated.waiting == 1, "a write waits at the gate for good")
    await asyncio.wait_for(h.writer.close(), 60)  # a hang guard only
    assert gated.waiting == 0 and h.task.done()
    assert spilled_ids(spill) == [t.trade_id for t in tape]
    assert sample(h.metrics, "blink_writer_errors_total") == 0  # our deadline, not a failure
    await gated.close()


async def test_products_with_the_same_ids_stay_apart_in_the_table_and_the_spill(make_settings,
                                                                                pg_dsn):
    """One writer for several products: the tape is keyed by (product_id, trade_id), so the
    same ids of two products are two trades, written directly or through the spill file."""
    settings = make_settings(pg_dsn=pg_dsn, writer_batch=50, writer_flush_ms=10)
    btc, eth = varied(80), varied(80, product="ETH-USD")  # ids 1..80 for both
    h = await Harness.start(settings)
    h.submit([t for pair in zip(btc[:40], eth[:40], strict=True) for t in pair])
    await h.flushed()
    await cut(pg_dsn)
    try:
        h.submit(btc[40:] + eth[40:])
        await h.stop()  # database down: the rest goes to the spill file
        spilled = (settings.data_dir / "spill-public.csv").read_text().splitlines()[1:]
        assert sorted(line.split(",")[0] for line in spilled) == ["BTC-USD"] * 40 + [
            "ETH-USD"] * 40
    finally:
        await restore(pg_dsn)
    h2 = await Harness.start(settings)  # the next start drains the spill
    h2.submit(btc[:10] + eth[:10])  # (and a replayed overlap is still ignored)
    await h2.flushed()
    got = await stored(pg_dsn)
    assert sorted(got, key=lambda t: (t.product_id, t.trade_id)) == btc + eth
    await h2.stop()
