"""REST backfill: request planning, the start-up downtime, the horizon, short pages, giving up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from blink.feeds.backfill import plan
from tests.fakes.coinbase import FakeCoinbase


def test_plan_chunks_big_holes_and_shares_requests_between_near_ones():
    assert plan([(10, 10)]) == [(10, 10)]
    assert plan([(1, 2500)]) == [(1, 1000), (1001, 2000), (2001, 2500)]
    assert plan([(50, 52), (10, 12), (900, 905)]) == [(10, 905)]
    assert plan([(10, 12), (1005, 1010)]) == [(10, 1009), (1010, 1010)]
    assert plan([]) == []
    covered = {i for a, b in plan([(5, 7), (3000, 4200), (9000, 9000)]) for i in range(a, b + 1)}
    assert {5, 6, 7, 9000} | set(range(3000, 4201)) <= covered


async def test_start_up_backfills_the_downtime_with_short_rest_pages(rig):
    fake = FakeCoinbase(history=2600, heartbeat_interval=0.1)
    fake.rest_max_limit = 100  # older docs: at most 100 per page; short pages are re-requested
    r = await rig(fake, start=False)
    await r.seed(fake.trades[:300])  # an earlier run stored these, then Blink was down
    r.first_id = fake.trades[0].trade_id
    await r.start()
    fake.emit(20)
    await r.assert_complete()
    await r.gaps_closed()
    # the downtime's gap; on a loaded box the rig's 0.5 s watchdog may also see a stall and
    # reconnect, which records a gap of its own (filled alike: the tape is complete above)
    (gap,) = [g for g in await r.gaps() if g["detected_by"] == "startup"]
    assert (gap["from_id"], gap["to_id"]) == (fake.trades[300].trade_id,
                                              fake.trades[2598].trade_id)
    assert gap["filled_count"] == 2299 and gap["filled_at"] is not None


@pytest.mark.parametrize("old", [150, 1500])  # boundary inside the first page / found by probes
async def test_downtime_past_the_horizon_is_recorded_unfilled(rig, old):
    now = datetime.now(UTC)
    fake = FakeCoinbase(history=old, start_time=now - timedelta(hours=5), rate=20.0,
                        heartbeat_interval=0.1)
    fake.gen.clock = now - timedelta(minutes=20)  # the last 300 trades are recent
    fake.trades.extend(fake.gen.trades(300))
    r = await rig(fake, start=False, backfill_horizon_hours=1.0)
    await r.seed(fake.trades[:50])
    await r.start()
    await r.assert_complete(fake.trades[:50] + fake.trades[old:])
    await r.gaps_closed()
    skipped, filled = await r.gaps()
    assert (skipped["from_id"], skipped["to_id"]) == (fake.trades[50].trade_id,
                                                      fake.trades[old - 1].trade_id)
    assert skipped["filled_at"] is None and "horizon" in skipped["note"]
    assert str(old - 50) in skipped["note"]
    assert (filled["from_id"], filled["filled_count"]) == (fake.trades[old].trade_id, 299)
    assert filled["filled_at"] is not None and filled["detected_by"] == "startup"
    assert r.tape.open_gaps() == []


async def test_ids_rest_never_returns_are_given_up_with_a_note(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    r.fake.drop = r.fake.rest_missing = {base + 4}
    r.fake.emit(10)
    r.first_id = r.fake.trades[0].trade_id
    await r.gaps_closed()
    (gap,) = await r.gaps()
    assert gap["filled_at"] is None and "did not return 1 of 1" in gap["note"]
    assert r.tape.open_gaps() == [] and r.tape.contiguous_id == base + 10
    r.first_id = base
    want = [t for t in r.fake.trades if t.trade_id >= base and t.trade_id != base + 4]
    await r.assert_complete(want)
