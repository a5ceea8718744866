"""Blink as a real process (`python -m blink run`) against the fake exchange: SIGTERM in the
middle of a burst, SIGKILL, then a restart; and an unusable data directory at start-up.

After a stop the tape in PostgreSQL (plus the spill file, if any) is a contiguous run of ids
from the first trade Blink saw: nothing in flight was lost, only the tail it never received (or,
after SIGKILL, the batch it had not flushed) is missing. After the restart Blink resumes from
the last stored id, the fake's `last_match` reveals the downtime, REST refills it, and the
stored tape equals the generated tape.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import pytest

from blink.store.spill import Spill, spill_path
from tests.fakes import rest_url, serve_fake, ws_url
from tests.support.faultkit import BlinkProcess, free_port
from tests.support.waiting import wait_until


async def stream(fake, seconds: float, per_second: int) -> None:
    for _ in range(int(seconds * 10)):
        fake.emit(per_second // 10)
        await asyncio.sleep(0.1)


async def stored_ids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r[0] for r in await conn.fetch("SELECT trade_id FROM trades ORDER BY 1")]
    finally:
        await conn.close()


@pytest.fixture
async def setup(aiohttp_server, pg_dsn, mlflow_uri, tmp_path):
    """(fake, blink, first id): a fake exchange and a Blink process (not started) using it."""
    fake, server = await serve_fake(aiohttp_server, history=200, heartbeat_interval=0.2,
                                    rest_rate=1000, rest_burst=1000)
    env = {"PG_DSN": pg_dsn, "BLINK_ROLE": "ingest,api", "BLINK_DATA_DIR": str(tmp_path / "d"),
           "MLFLOW_TRACKING_URI": mlflow_uri, "MODEL_NAME": "blink_fault_process",
           "BLINK_COINBASE_WS_URL": ws_url(server), "BLINK_COINBASE_REST_URL": rest_url(server),
           "BLINK_WATCHDOG_SECONDS": "2", "BLINK_HEARTBEAT_GRACE_SECONDS": "0.5",
           "BLINK_RECONNECT_BASE_SECONDS": "0.05", "BLINK_RECONNECT_CAP_SECONDS": "0.5",
           "BLINK_REST_RATE": "100", "BLINK_HOLD_SECONDS": "2",
           "BLINK_BOOTSTRAP_HOURS": "0"}  # the tape starts at the first live trade
    blink = BlinkProcess(env, tmp_path / "blink.log", tmp_path)
    yield fake, blink, fake.trades[-1].trade_id  # the last_match it will be sent
    blink.kill()


async def start(blink: BlinkProcess, fake) -> None:
    blink.start()
    await blink.wait_healthy()
    await wait_until(lambda: fake._subscribers("matches"), "blink subscribed", limit=30)


async def restart_and_check_complete(blink, fake, dsn: str, first: int, resumed_at: int):
    await start(blink, fake)
    fake.emit(20)
    want = [t.trade_id for t in fake.trades if t.trade_id >= first]

    async def complete() -> bool:
        return await stored_ids(dsn) == want

    await wait_until(complete, "stored tape == generated tape after the restart", limit=60,
                     step=0.2)
    assert f"resuming BTC-USD after trade id {resumed_at}" in blink.text()
    assert await blink.metric("blink_trades_backfilled_total") > 0  # the downtime, from REST
    assert "Traceback" not in blink.text()


@pytest.mark.slow
async def test_sigterm_mid_burst_writes_everything_then_resumes_and_backfills(setup, pg_dsn,
                                                                              tmp_path):
    fake, blink, first = setup
    blink.env["BLINK_WRITER_FLUSH_MS"] = "1000"  # plenty in flight when the signal comes
    await start(blink, fake)
    burst = asyncio.create_task(stream(fake, 2.5, per_second=800))
    await asyncio.sleep(1.0)
    assert await blink.stop(signal.SIGTERM) == 0
    await burst  # the exchange trades on while Blink is down
    ids = set(await stored_ids(pg_dsn))
    spill = spill_path(tmp_path / "d", "public")
    if spill.exists():  # only if the database had refused the last batches
        ids |= {row[1] for row in Spill(spill).read(10**6)[0]}
    top = max(ids)
    assert ids == set(range(first, top + 1)) and top > first + 100
    assert "LOST" not in blink.text()
    await restart_and_check_complete(blink, fake, pg_dsn, first, top)


@pytest.mark.slow
async def test_sigkill_loses_at_most_the_unflushed_batch_and_the_restart_recovers_it(
        setup, pg_dsn):
    fake, blink, first = setup
    batch = 400
    blink.env.update(BLINK_WRITER_BATCH=str(batch), BLINK_WRITER_FLUSH_MS="1500")
    await start(blink, fake)
    burst = asyncio.create_task(stream(fake, 2.5, per_second=600))
    await asyncio.sleep(1.6)
    sent = fake.trades[-1].trade_id
    await blink.stop(signal.SIGKILL)
    await burst
    ids = await stored_ids(pg_dsn)
    assert ids == list(range(first, ids[-1] + 1))  # a prefix: only the tail is missing
    assert sent - ids[-1] <= batch + 200  # the unflushed batch (+ frames still on the wire)
    await restart_and_check_complete(blink, fake, pg_dsn, first, ids[-1])


async def serving(blink: BlinkProcess) -> bool:
    try:
        await blink.get("/healthz")
    except OSError:
        return False
    return True


@pytest.mark.slow
async def test_sigterm_under_a_backlog_leaves_it_spilled_exits_0_and_the_next_start_drains_it(
        setup, pg_dsn, tmp_path):
    """A backlog (spilled while a lock held every INSERT back) must not be drained into
    PostgreSQL on SIGTERM, however fast the database is again: that takes as long as the
    backlog is big, and a container runtime kills after ~10 s. It stays in the spill file,
    Blink exits 0, and the next start writes it: the tape has every trade."""
    fake, blink, first = setup
    blink.env.update(BLINK_WRITER_QUEUE="1000", BLINK_WRITER_BATCH="100")
    await start(blink, fake)
    fake.emit(20)  # a stored tape to resume after (else it rests on a batch racing the lock)

    async def stored() -> bool:
        return (await stored_ids(pg_dsn))[-1:] == [fake.trades[-1].trade_id]

    await wait_until(stored, "the 20 trades stored", limit=30, step=0.2)
    burst = 20_000
    lock = await asyncpg.connect(pg_dsn)
    tx = lock.transaction()
    await tx.start()
    try:
        await lock.execute("LOCK TABLE trades IN EXCLUSIVE MODE")  # reads pass, INSERTs wait
        fake.emit(burst)

        async def backlog_on_disk() -> bool:
            return (await blink.metric("blink_trades_ingested_total") >= burst
                    and await blink.metric("blink_writer_spilled_total") > 0)

        await wait_until(backlog_on_disk, "the burst received and spilling", limit=90, step=0.2)
        blink.proc.send_signal(signal.SIGTERM)

        async def stopped_serving() -> bool:
            return not await serving(blink)

        await wait_until(stopped_serving, "the listener closed: shutdown under way", limit=30)
    finally:
        await tx.rollback()  # the database takes writes again while Blink shuts down
        await lock.close()
    assert await asyncio.to_thread(blink.proc.wait, 60) == 0, blink.text()[-3000:]
    ids = set(await stored_ids(pg_dsn))
    on_disk = {row[1] for row in Spill(spill_path(tmp_path / "d", "public")).read(10**6)[0]}
    assert on_disk - ids, "the backlog was drained into PostgreSQL during the shutdown"
    assert ids | on_disk == set(range(first, fake.trades[-1].trade_id + 1))  # nothing lost
    assert "trades wait in" in blink.text() and "LOST" not in blink.text()
    await restart_and_check_complete(blink, fake, pg_dsn, first, max(ids))


async def test_unusable_data_dir_is_one_clear_error_never_a_spin(tmp_path, pg_dsn):
    parent = tmp_path / "a-file"
    parent.write_text("the data dir's parent is a regular file: nothing can be created in it")
    data = parent / "data"
    # embedded PostgreSQL (no PG_DSN): it cannot start, so Blink exits 1 at once, one line
    blink = BlinkProcess({"BLINK_DATA_DIR": str(data), "BLINK_SOURCE": "synthetic"},
                         tmp_path / "embedded.log", tmp_path)
    blink.start()
    assert await asyncio.to_thread(blink.proc.wait, 60) == 1
    errors = [line for line in blink.text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"cannot start the embedded PostgreSQL in {data}" in errors[0]
    assert "Traceback" not in blink.text()
    # with PG_DSN the service runs; what needs the data dir (the MLflow store) says why not
    closed = f"127.0.0.1:{free_port()}"
    blink = BlinkProcess({"BLINK_DATA_DIR": str(data), "PG_DSN": pg_dsn,
                          "BLINK_ROLE": "ingest,api", "BLINK_COINBASE_WS_URL": f"ws://{closed}",
                          "BLINK_COINBASE_REST_URL": f"http://{closed}"},
                         tmp_path / "external.log", tmp_path)
    blink.start()
    try:
        await blink.wait_healthy()

        async def model_failing() -> bool:
            body = (await blink.get("/readyz"))[1]
            return body["components"].get("model", {}).get("ok") is False

        await wait_until(model_failing, "the model component reports the data dir", limit=60,
                         step=0.2)
        error = (await blink.get("/readyz"))[1]["components"]["model"]["last_error"]
        assert str(Path(parent)) in error
        assert await blink.stop(signal.SIGTERM) == 0
    finally:
        blink.kill()
    assert blink.text().count("model failing") == 1
