"""Bursts in batches: `StepBatch` hands one loop step's items over in one call, and
`Detector.on_trades` gives exactly what `on_trade` gives trade by trade."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math

import pytest

from blink.detect.detector import Detector
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES, batch
from blink.runtime.batching import StepBatch
from blink.runtime.metrics import Metrics
from tests.support.models import Recorder, make_served
from tests.support.trades import calm, from_arrays


async def test_one_loop_step_is_one_call_and_the_limit_hands_over_at_once():
    calls: list[list[int]] = []
    batch = StepBatch(calls.append, limit=5)
    for i in range(3):
        batch.add(i)
    assert calls == []  # the step has not ended yet
    await asyncio.sleep(0)
    assert calls == [[0, 1, 2]]
    for i in range(3, 10):
        batch.add(i)
    assert calls == [[0, 1, 2], [3, 4, 5, 6, 7]]  # the limit: at once, in order
    await asyncio.sleep(0)
    assert calls[-1] == [8, 9]
    batch.flush()  # nothing pending: no empty call
    assert len(calls) == 3


def test_without_an_event_loop_every_item_goes_at_once():
    calls: list[list[int]] = []
    batch = StepBatch(calls.append)
    batch.add(1)
    batch.add(2)
    assert calls == [[1], [2]]


async def test_a_failing_listener_is_logged_and_the_next_batch_still_comes(caplog):
    seen: list[list[int]] = []

    def listener(items: list[int]) -> None:
        seen.append(items)
        if items == [1]:
            raise RuntimeError("boom")

    batch = StepBatch(listener)
    batch.add(1)
    await asyncio.sleep(0)
    batch.add(2)
    await asyncio.sleep(0)
    assert seen == [[1], [2]]
    assert "boom" in caplog.text




def close(a, b) -> bool:
    """Exactly equal, NaN equal to NaN (one forest call for many rows scores each row to the
    last bit as a call for that row alone)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def run(settings, served, stream, sizes) -> tuple[Detector, dict, Recorder]:
    """Feed `stream` in batches of `sizes` (cycled); the state after each batch, by trade id."""
    latest, rec, states = Latest(product_id="BTC-USD"), Recorder(), {}
    det = Detector(settings, latest, Metrics(), rec)
    det.set_model(served)
    start, sizes = 0, itertools.cycle(sizes)
    while start < len(stream):
        n = next(sizes)
        det.on_trades(stream[start:start + n])
        start += n
        states[latest.trade_id] = {**latest.snapshot(), "updated_wall": None}
    return det, states, rec


def test_on_trades_equals_on_trade_one_by_one(make_settings):
    settings = make_settings(min_history_seconds=300, min_trades=30, feature_cadence_seconds=1,
                             event_gap_seconds=30)
    served = make_served()
    served = dataclasses.replace(served, threshold=served.train_stats["score_quantiles"][0])
    ts, p, size, tb = calm(6000, seed=4)  # ~1500 s: ready after READY (600) grid steps
    p[4500:] *= 1.03  # a jump: an anomaly event in the middle of a batch
    stream = from_arrays(ts, p, size, tb)
    one, states1, rec1 = run(settings, served, stream, [1])
    many, states2, rec2 = run(settings, served, stream, [1, 7, 500, 2, 64, 3, 1024])
    assert [k for k, _ in rec1.messages] == [k for k, _ in rec2.messages]
    assert sum(k == "anomaly_start" for k, _ in rec1.messages) >= 1
    assert close(rec1.messages, rec2.messages)
    rows1, events1 = one.drain()
    rows2, events2 = many.drain()
    assert len(rows1) > 500 and close([tuple(r) for r in rows1], [tuple(r) for r in rows2])
    assert close([e.as_dict() for e in events1], [e.as_dict() for e in events2])
    assert len(states2) > 10 and states2[stream[-1].trade_id]["score_raw"] is not None
    X = batch([t.ts for t in stream], [float(t.price) for t in stream],  # independently
              [float(t.size) for t in stream], [t.taker_buy for t in stream],
              min_history_seconds=300, min_trades=30)
    for trade_id, state in states2.items():  # after every batch: the state after its last trade
        assert close(state, states1[trade_id]), trade_id
        row = X[trade_id - 1].tolist()
        want = None if math.isnan(row[0]) else dict(zip(FEATURE_NAMES, row, strict=True))
        assert close(state["features"], want), trade_id
    count, labels = "blink_predictions_total", {"path": "stream", "product": "BTC-USD"}
    assert one.metrics.registry.get_sample_value(count, labels) == \
        many.metrics.registry.get_sample_value(count, labels) > 1000


@pytest.mark.parametrize("sizes", [[2], [5]])
def test_small_batches_score_like_single_trades(make_settings, sizes):
    settings = make_settings(min_history_seconds=300, min_trades=30)
    served = make_served()
    stream = from_arrays(*calm(3000, seed=5))  # ~750 s: ready after 600
    _, states1, _ = run(settings, served, stream, [1])
    _, states2, _ = run(settings, served, stream, sizes)
    last = stream[-1].trade_id
    assert states2[last]["score_raw"] is not None and close(states1[last], states2[last])


async def test_a_deep_writer_queue_goes_in_big_statements_and_spills_only_the_excess(
        make_settings, pg_dsn):
    from tests.support.trades import stored, varied
    from tests.support.writing import Harness, sample

    settings = make_settings(pg_dsn=pg_dsn, writer_batch=50, writer_queue=100)
    h = await Harness.start(settings)
    tape = varied(1000)
    h.submit(tape)  # all at once: 10 batches fit one statement, the rest is over the bound
    await h.flushed()
    assert await stored(pg_dsn) == tape
    # 500 written in one statement, then only the 400 over the bound of 100 were spilled
    assert sample(h.metrics, "blink_writer_spilled_total") == 400
    assert sample(h.metrics, "blink_db_write_seconds_count") <= 1 + 400 / 50 + 100 / 50
    assert not (settings.data_dir / "spill-public.csv").exists()
    await h.stop()
