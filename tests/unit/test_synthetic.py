"""The synthetic source: seeded, bursty, heavy-tailed, with visible, labelled anomalies."""

from __future__ import annotations

import asyncio
import json
import math
import statistics
from collections import Counter
from datetime import UTC, datetime

import pytest

from blink.feeds import synthetic
from blink.feeds.sources import make_source
from blink.runtime.warmup import Warmup
from blink.trade import Trade

START = datetime(2026, 1, 1, tzinfo=UTC)
DURATION = 5000.0  # long enough for the first round of anomalies (all four kinds) with any seed


@pytest.fixture(scope="module", params=[7, 11])
def stream(request):
    return synthetic.generate(request.param, START, DURATION)


class ListTape:
    def __init__(self, contiguous_id=None):
        self.trades: list[Trade] = []
        self.contiguous_id = contiguous_id
        self.target, self.reached = 0, asyncio.Event()

    def add(self, trade: Trade, via: str = "ws") -> bool:
        assert via == "synthetic"
        self.trades.append(trade)
        if len(self.trades) >= self.target:
            self.reached.set()
        return True


def ts(label_time: str) -> float:
    return datetime.fromisoformat(label_time).timestamp()


def per_second(trades, a: float, b: float) -> dict[int, Trade]:
    """The last trade of every second in [a, b)."""
    return {int(t.ts): t for t in trades if a <= t.ts < b}


def return_sd(trades, a: float, b: float) -> float:
    last = per_second(trades, a, b)
    secs = sorted(last)
    rets = [math.log(last[y].price / last[x].price) for x, y in zip(secs, secs[1:], strict=False)
            if y - x == 1]
    return statistics.pstdev(rets)


def volume_rate(trades, a: float, b: float) -> float:
    return float(sum(t.size for t in trades if a <= t.ts < b)) / (b - a)


def test_seeded_and_deterministic():
    a = synthetic.generate(3, START, 600)
    assert a == synthetic.generate(3, START, 600)
    assert a[0] != synthetic.generate(4, START, 600)[0]


def test_ids_times_and_bursts(stream):
    trades, _ = stream
    assert [t.trade_id for t in trades] == list(range(1, len(trades) + 1))
    assert all(a.time <= b.time for a, b in zip(trades, trades[1:], strict=False))
    by_time = Counter(t.time for t in trades)
    bursts = [n for n in by_time.values() if n > 1]
    assert len(bursts) > 0.1 * len(by_time) and max(bursts) >= 4
    for a, b in zip(trades, trades[1:], strict=False):  # a burst is one taker order
        if a.time == b.time:
            assert a.side == b.side and b.trade_id == a.trade_id + 1
    assert {t.side for t in trades} == {"buy", "sell"}
    assert all(t.product_id == "BTC-USD" and t.price > 0 and t.size > 0 for t in trades)
    assert all(t.price == t.price.quantize(synthetic.Decimal("0.01")) for t in trades[:1000])


def test_intensity_varies_around_seven_per_second(stream):
    trades, _ = stream
    rate = len(trades) / DURATION
    assert 4 < rate < 14
    t0 = START.timestamp()
    counts = Counter(int((t.ts - t0) // 10) for t in trades)
    per10 = [counts.get(i, 0) for i in range(int(DURATION // 10))]
    dispersion = statistics.pvariance(per10) / statistics.mean(per10)
    assert dispersion > 3  # far burstier than a Poisson stream (dispersion 1)


def test_sizes_are_heavy_tailed(stream):
    sizes = [float(t.size) for t in stream[0]]
    median = statistics.median(sizes)
    assert max(sizes) > 500 * median
    mean, sd = statistics.fmean(sizes), statistics.pstdev(sizes)
    kurtosis = statistics.fmean(((s - mean) / sd) ** 4 for s in sizes)
    assert kurtosis > 50  # a normal distribution has 3


def test_calm_volatility_is_btc_like(stream):
    trades, labels = stream
    t0 = START.timestamp()
    sd = return_sd(trades, t0, ts(labels[0]["start"]))  # before the first anomaly
    annual = sd * math.sqrt(365 * 86400)
    assert 0.2 < annual < 1.5


def test_every_kind_is_labelled_and_the_first_comes_soon(stream, tmp_path):
    trades, labels = stream
    assert {lab["kind"] for lab in labels} == set(synthetic.KINDS)
    first = ts(labels[0]["start"]) - START.timestamp()
    assert 120 <= first <= 300  # a demo shows one within minutes
    for lab in labels:
        assert set(lab) == {"kind", "start", "end"} and ts(lab["start"]) < ts(lab["end"])
    path = tmp_path / "labels.json"
    synthetic.write_labels(path, labels)
    assert json.loads(path.read_text()) == labels


def test_anomalies_are_visible(stream):
    trades, labels = stream
    for lab in labels:
        a, b = ts(lab["start"]), ts(lab["end"])
        if b > trades[-1].ts:
            continue
        before = per_second(trades, a - 30, a)
        base = before[max(before)].price
        inside = [t.price for t in trades if a <= t.ts < b]
        if lab["kind"] == "price_jump":
            after = statistics.median(t.price for t in trades if a + 1 <= t.ts < a + 11)
            assert abs(math.log(after / base)) > 0.006, lab
        elif lab["kind"] == "flash_crash":
            assert min(inside) < base * synthetic.Decimal("0.96"), lab
            end = statistics.median(t.price for t in trades if b - 10 <= t.ts < b)
            assert abs(math.log(end / base)) < 0.02, lab  # it recovered
        elif lab["kind"] == "volatility_burst":
            assert return_sd(trades, a, b) > 3 * return_sd(trades, a - 300, a), lab
        else:
            assert volume_rate(trades, a, b) > 3 * volume_rate(trades, a - 300, a), lab


async def test_source_plays_continues_and_shares_labels(make_settings):
    settings = make_settings(source="synthetic", speed=0, seed=5)
    source = make_source(settings)
    assert isinstance(source, synthetic.SyntheticSource) and source.name == "synthetic"
    tape = ListTape(contiguous_id=41)

    async def run_until(n: int) -> None:
        tape.target = n
        tape.reached.clear()
        task = asyncio.create_task(source.run(tape))
        await asyncio.wait_for(tape.reached.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    await run_until(3000)
    await run_until(len(tape.trades) + 3000)  # a restarted run continues the same stream
    ids = [t.trade_id for t in tape.trades]
    assert ids == list(range(42, 42 + len(ids)))
    span = tape.trades[-1].ts - tape.trades[0].ts
    assert span > 400  # speed 0: event time runs far ahead of the wall clock
    assert source.labels is source.market.labels and source.labels  # first anomaly passed


async def test_paced_source_follows_the_wall_clock(make_settings):
    settings = make_settings(source="synthetic", speed=200, seed=5, bootstrap_hours=0)
    source = make_source(settings)
    tape = ListTape()
    loop = asyncio.get_running_loop()
    wall0 = loop.time()
    task = asyncio.create_task(source.run(tape))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    wall = loop.time() - wall0
    event = source.market.t - source.market.start
    assert 0 < event <= wall * 200 + synthetic.DT  # event time never outruns speed x wall
    assert tape.trades and tape.trades[-1].ts <= source.market.t


async def test_source_plays_its_history_at_once_with_past_event_times(make_settings):
    settings = make_settings(source="synthetic", speed=1, seed=5, bootstrap_hours=0.5)
    warmup = Warmup()
    source = make_source(settings, warmup)
    tape = ListTape()
    tape.target = 10**9  # never: run until cancelled
    wall0 = datetime.now(UTC).timestamp()
    task = asyncio.create_task(source.run(tape))
    while not (warmup.history and warmup.history.done):  # noqa: ASYNC110 - a poll
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first, history = tape.trades[0], warmup.history
    assert abs(first.ts - (math.floor(wall0) - 1800)) < 1  # half an hour before the start
    past = [t for t in tape.trades if t.ts <= wall0]
    assert len(past) > 0.9 * len(tape.trades) and len(past) > 1800 * 3  # ~7/s, all at once
    assert history.source == "synthetic" and history.hours == pytest.approx(0.5, abs=0.01)
    assert history.trades >= len(past) - 1 and history.fraction == 1.0
    assert source.labels and ts(source.labels[0]["start"]) < wall0  # anomalies in the past
