"""First start on an empty tape: `bootstrap_hours` of REST history joins the websocket stream
with no hole (429s in the middle included); a restart with a stored tape does not bootstrap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blink.runtime import keys
from tests.fakes.coinbase import FakeCoinbase
from tests.support.waiting import wait_until


def history_fake() -> FakeCoinbase:
    """Two hours of past trades (a slow market: ~0.6 trades/s, to keep the test small)."""
    fake = FakeCoinbase(history_seconds=2 * 3600, rate=0.3, heartbeat_interval=0.1)
    fake.rest_max_limit = 100  # many pages
    return fake


async def test_first_start_loads_the_history_and_joins_the_stream_without_a_hole(rig):
    fake = history_fake()
    fake.rest_429, fake.rest_429_after = 3, 8  # the public rate limit, mid-bootstrap
    r = await rig(fake, start=False, bootstrap_hours=1.0)
    before = datetime.now(UTC)
    await r.start()
    after = datetime.now(UTC)
    tape = r.tape
    await wait_until(lambda: not tape.bootstrapping, "the bootstrap range loaded", limit=30)
    start = tape.bootstrap_from
    by_id = {t.trade_id: t for t in fake.trades}
    # the first trade of the last hour: not older than the cut-off, its predecessor older
    assert by_id[start].time >= before - timedelta(hours=1)
    assert by_id[start - 1].time < after - timedelta(hours=1)
    fake.emit(25)  # the live stream goes on
    r.first_id = start
    await r.assert_complete()  # every id from the bootstrap point on, REST and websocket
    await r.gaps_closed()
    (gap,) = await r.gaps()
    last_match = tape.bootstrap_to + 1
    assert (gap["from_id"], gap["to_id"], gap["detected_by"]) == (start, last_match - 1,
                                                                   "bootstrap")
    assert gap["filled_count"] == last_match - start and gap["filled_at"] is not None
    assert fake.rest_429 == 0 and fake.rest_429_sent >= 3  # refused, then retried
    assert r.metric("blink_trades_backfilled_total") == last_match - start
    history = r.app[keys.WARMUP].history
    await wait_until(lambda: history.done, "the loading reported done")
    assert history.source == "coinbase_rest" and not history.note
    assert history.trades == history.total == last_match - start
    assert tape.open_gaps() == []


async def test_a_restart_with_a_stored_tape_resumes_and_does_not_bootstrap(rig):
    fake = history_fake()
    r = await rig(fake, start=False, bootstrap_hours=1.0)
    await r.start()
    await wait_until(lambda: not r.tape.bootstrapping, "the bootstrap range loaded", limit=30)
    start = r.first_id = r.tape.bootstrap_from
    fake.emit(10)
    await r.assert_complete()
    await r.stop()
    fake.emit(40)  # made while Blink is down
    requests = fake.rest_requests
    await r.start()
    assert r.app[keys.WARMUP].history is None  # nothing loaded as history this time
    assert r.tape.bootstrap_from is None
    fake.emit(5)
    await r.assert_complete()  # the downtime refilled; nothing before `start` fetched
    await r.gaps_closed()
    rows = await r.gaps()
    assert [g["detected_by"] for g in rows] == ["bootstrap", "startup"]
    assert all(g["filled_at"] is not None for g in rows)
    assert fake.rest_requests - requests <= 2  # one page for 40 ids (plus a 429 retry at most)
    assert min(t[0] for t in await r.stored()) == start
