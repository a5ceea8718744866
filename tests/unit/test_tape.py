"""The tape: dedupe, gap detection (jump, heartbeat, reconnect), ordered fan-out, hold bound."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blink.runtime.metrics import Metrics
from blink.tape import Tape
from tests.fakes.trades import TradeGen
from tests.support.metrics import total

TRADES = TradeGen(seed=5, start_id=1001).trades(400)  # ids 1001..1400
BY_ID = {t.trade_id: t for t in TRADES}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(resume_id=None, **kw):
    metrics, clock = Metrics(), Clock()
    tape = Tape("BTC-USD", metrics, "coinbase", resume_id=resume_id, clock=clock, **kw)
    seen, ordered, gaps = [], [], []
    tape.subscribe(lambda t: seen.append(t.trade_id))
    tape.subscribe_ordered(lambda t: ordered.append(t.trade_id))
    tape.on_gap(lambda lo, hi, by: gaps.append((lo, hi, by)))
    return tape, metrics, clock, seen, ordered, gaps


def feed(tape, ids, via="ws"):
    return [tape.add(BY_ID[i], via) for i in ids]


def value(metrics, name, **labels):
    return total(metrics.registry.collect(), name, **labels)


def test_in_order_trades_flow_through_once():
    tape, metrics, _, seen, ordered, gaps = make()
    assert feed(tape, range(1001, 1011)) == [True] * 10
    assert feed(tape, [1005, 1010]) == [False, False]
    assert seen == ordered == list(range(1001, 1011))
    assert tape.contiguous_id == 1010 and tape.open_gaps() == [] and gaps == []
    assert value(metrics, "blink_trades_ingested_total", source="coinbase", product="BTC-USD") == 10
    assert value(metrics, "blink_feed_duplicates_total") == 2
    assert tape.newest is BY_ID[1010]


def test_jump_declares_a_gap_and_fills_out_of_order():
    tape, metrics, _, seen, ordered, gaps = make(resume_id=1000)
    feed(tape, [1001, 1002, 1006, 1007])
    assert gaps == [(1003, 1005, "jump")]
    assert tape.open_gaps() == [(1003, 1005)] and tape.contiguous_id == 1002
    assert ordered == [1001, 1002]  # 1006, 1007 held behind the hole
    feed(tape, [1004])
    assert tape.open_gaps() == [(1003, 1003), (1005, 1005)]
    assert tape.missing(1001, 1010) == [(1003, 1003), (1005, 1005), (1008, 1010)]
    feed(tape, [1005, 1003], via="rest")
    assert tape.open_gaps() == [] and tape.contiguous_id == 1007
    assert seen == [1001, 1002, 1006, 1007, 1004, 1005, 1003]
    assert ordered == list(range(1001, 1008))
    assert value(metrics, "blink_feed_gaps_total") == 1
    assert value(metrics, "blink_trades_backfilled_total") == 2


def test_startup_and_reconnect_jumps_are_labelled():
    tape, _, _, _, _, gaps = make(resume_id=1000)
    feed(tape, [1005], via="last_match")
    feed(tape, [1006, 1007])
    feed(tape, [1010], via="last_match")
    feed(tape, [1012])
    assert gaps == [(1001, 1004, "startup"), (1008, 1009, "reconnect"), (1011, 1011, "jump")]
    assert tape.add(BY_ID[1012], "last_match") is False  # last_match after reconnect: dup


def test_heartbeat_ahead_past_grace_is_a_gap_crossing_is_not():
    tape, _, clock, _, _, gaps = make(grace=2.0)
    feed(tape, range(1001, 1006))
    tape.heartbeat(1007)  # crossing: 1006 and 1007 are on their way
    clock.now = 1.0
    feed(tape, [1006, 1007])
    tape.heartbeat(1007)
    clock.now = 5.0
    tape.heartbeat(1007)
    assert gaps == []
    tape.heartbeat(1009)  # trailing drop: nothing else will come
    clock.now = 6.0
    tape.heartbeat(0)  # unknown: ignored
    tape.heartbeat(1009)
    assert gaps == []
    clock.now = 7.1
    tape.heartbeat(1009)
    assert gaps == [(1008, 1009, "heartbeat")]
    assert tape.open_gaps() == [(1008, 1009)]
    feed(tape, [1010])  # no second gap: 1008..1009 already claimed
    assert gaps == [(1008, 1009, "heartbeat")]


def test_hold_is_bounded_then_late_fills_go_to_the_writer_only():
    tape, _, clock, seen, ordered, _ = make(hold_seconds=10.0)
    feed(tape, [1001, 1002, 1004, 1005])
    clock.now = 9.0
    feed(tape, [1006])
    assert ordered == [1001, 1002]
    clock.now = 10.5
    tape.heartbeat(1006)
    assert ordered == [1001, 1002, 1004, 1005, 1006]  # released in order past the hole
    feed(tape, [1003, 1007])
    assert seen[-2:] == [1003, 1007] and ordered[-1] == 1007 and 1003 not in ordered


def test_give_up_moves_ordered_listeners_past_the_hole():
    tape, _, _, _, ordered, _ = make(resume_id=1000)
    feed(tape, [1001, 1004, 1005, 1009])
    tape.give_up(6, 6)  # far below: harmless
    tape.give_up(1006, 1008)  # not blocking yet: remembered
    assert ordered == [1001]
    tape.give_up(1002, 1003)
    assert ordered == [1001, 1004, 1005, 1009]
    assert tape.open_gaps() == [] and tape.contiguous_id == 1009


def test_holes_below_the_resume_point_are_fillable_but_not_ordered():
    tape, _, _, seen, ordered, _ = make(resume_id=1100, holes=[(1010, 1012), (1050, 1050)])
    assert tape.open_gaps() == [(1010, 1012), (1050, 1050)]
    assert feed(tape, [1011, 1050, 1020, 1101]) == [True, True, False, True]
    assert seen == [1011, 1050, 1101] and ordered == [1101]
    assert tape.open_gaps() == [(1010, 1010), (1012, 1012)]


def test_a_failing_listener_does_not_stop_the_tape():
    tape, _, _, seen, _, _ = make()
    tape.subscribe(lambda t: 1 / 0)
    feed(tape, [1001, 1002])
    assert seen == [1001, 1002] and tape.contiguous_id == 1002


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1001, 1060), min_size=1, max_size=200), st.randoms())
def test_any_arrival_order_gives_each_trade_once_and_ordered_strictly_rising(ids, rnd):
    tape, _, _, seen, ordered, _ = make(resume_id=1000)
    for i in ids:
        tape.add(BY_ID[i], rnd.choice(["ws", "rest", "last_match"]))
    assert sorted(seen) == sorted(set(ids))
    assert ordered == sorted(ordered) and len(set(ordered)) == len(ordered)
    top = max(ids)
    assert tape.missing(1001, top) == _holes(set(ids), 1001, top)
    for lo, hi in tape.open_gaps():
        feed(tape, range(lo, hi + 1), via="rest")
    assert ordered == list(range(1001, top + 1)) and tape.contiguous_id == top


def _holes(present: set[int], lo: int, hi: int) -> list[tuple[int, int]]:
    out, start = [], None
    for i in range(lo, hi + 1):
        if i not in present and start is None:
            start = i
        if i in present and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, hi))
    return out


def test_random_shuffle_of_a_long_tape():
    tape, _, _, seen, ordered, _ = make(resume_id=1000)
    ids = list(range(1001, 1401)) * 2
    random.Random(9).shuffle(ids)
    for i in ids:
        tape.add(BY_ID[i])
    assert sorted(seen) == list(range(1001, 1401)) and ordered == list(range(1001, 1401))


def test_a_bootstrap_gap_is_loaded_in_order_and_waited_for_past_hold_seconds():
    tape, _, clock, seen, ordered, gaps = make(hold_seconds=2.0, bootstrap_hold=60.0)
    tape.begin_at(1001)
    assert tape.bootstrapping and tape.contiguous_id == 1000
    feed(tape, [1300, 1301])  # the websocket's last_match, then a match
    assert gaps == [(1001, 1299, "bootstrap")] and tape.bootstrap_to == 1299
    clock.now = 30.0  # far past hold_seconds: the live trades still wait for the history
    feed(tape, range(1001, 1200), via="rest")
    assert ordered == list(range(1001, 1200))
    feed(tape, range(1200, 1300), via="rest")
    assert ordered == list(range(1001, 1302)) and not tape.bootstrapping
    assert tape.open_gaps() == []
    clock.now = 31.0  # afterwards, an ordinary hole is held for hold_seconds only
    feed(tape, [1303])
    clock.now = 33.5
    tape.heartbeat(1303)
    assert ordered[-1] == 1303 and 1302 not in ordered and seen[-1] == 1303


def test_a_bootstrap_that_outlasts_its_hold_releases_the_live_trades():
    tape, _, clock, _, ordered, _ = make(hold_seconds=2.0, bootstrap_hold=60.0)
    tape.begin_at(1001)
    feed(tape, [1300])
    feed(tape, range(1001, 1100), via="rest")
    clock.now = 61.0
    tape.heartbeat(1300)
    assert ordered == list(range(1001, 1100)) + [1300]
    assert tape.bootstrapping  # the rest of the range still goes to the writer when it comes
    feed(tape, range(1100, 1300), via="rest")
    assert not tape.bootstrapping and tape.open_gaps() == []


def test_begin_at_needs_an_empty_tape():
    tape, *_ = make(resume_id=1200)
    with pytest.raises(RuntimeError):
        tape.begin_at(1001)
