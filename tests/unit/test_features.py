"""Features: incremental == batch == a brute-force reference; known values; stationarity;
`Engine.run` (the C batch loop) == update() + values() bit for bit; bad buffers refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blink import features
from blink.features import FEATURE_NAMES, FeatureEngine, batch

IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def reference(ts, p, size, tb, i) -> list[float]:
    """Every feature after trade i, straight from the definitions (positive prices only)."""
    t, lp = ts[i], np.log(p[: i + 1])
    r = np.diff(lp, prepend=lp[0])

    def asof(w):
        before = [j for j in range(i + 1) if ts[j] <= t - w]
        return before[-1] if before else 0

    def win(w):
        return [j for j in range(i + 1) if ts[j] > t - w]

    out = [lp[i] - lp[asof(w)] for w in features.RETURN_WINDOWS]
    def span(w):  # the event time a window really covers (min_history_seconds=0 here)
        return min(w, t - ts[0]) or w

    out += [math.sqrt(sum(r[j] ** 2 for j in win(w)) * w / span(w)) for w in (60.0, 600.0)]
    for w in features.Z_WINDOWS:
        xs = np.array([p[j] for j in win(w)])
        std = xs.std()
        out.append((p[i] - xs.mean()) / std if std > features.FLAT * abs(xs.mean()) else 0.0)
    e = p[0]
    for k in range(1, i + 1):
        e += (1 - math.exp(-(ts[k] - ts[k - 1]) / 30.0)) * (p[k - 1] - e)
    out.append(lp[i] - math.log(e))
    w60, w600 = win(60.0), win(600.0)
    out.append(math.log(max((len(w60) / span(60)) / (len(w600) / span(600)), 1e-3)))
    v60, v600 = sum(size[j] for j in w60), sum(size[j] for j in w600)
    out.append(math.log(max((v60 / span(60)) / (v600 / span(600)), 1e-3)))
    out.append(sum(size[j] * (1 if tb[j] else -1) for j in w60) / v60)
    return out


# gaps between trades: same-timestamp bursts, normal spacing, and silences longer than the
# longest window; returns in whole ticks of 1e-4 (0 = same price, so flat windows occur)
gaps = st.one_of(st.just(0.0), st.floats(0.001, 3.0), st.floats(20.0, 90.0),
                 st.floats(250.0, 900.0))
trade = st.tuples(gaps, st.integers(-30, 30), st.floats(0.0001, 5.0), st.booleans())


def stream(draws, start=1.7e9, p0=50_000.0):
    ts, p = np.cumsum([d[0] for d in draws]) + start, [p0]
    for d in draws[1:]:
        p.append(p[-1] * math.exp(d[1] * 1e-4))
    return ts, np.array(p), np.array([d[2] for d in draws]), np.array([d[3] for d in draws])


def random_walk(seed, n, gap, vol, p0, start=1.7e9, buy_share=0.5):
    """(ts, price, size, taker_buy): exponential gaps, Gaussian log returns."""
    rng = np.random.default_rng(seed)
    ts = start + np.cumsum(rng.exponential(gap, n))
    p = p0 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    return ts, p, rng.lognormal(-4, 1, n), rng.random(n) < buy_share


@settings(max_examples=60, deadline=None)
@given(st.lists(trade, min_size=1, max_size=120))
def test_incremental_equals_batch_and_reference(draws):
    ts, p, size, tb = stream(draws)
    X = batch(ts, p, size, tb, min_history_seconds=0, min_trades=0)
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    for i in range(len(ts)):
        eng.update(ts[i], p[i], size[i], tb[i])
        v = eng.vector()
        np.testing.assert_allclose(v, X[i], rtol=0, atol=1e-9)
        np.testing.assert_allclose(v, reference(ts, p, size, tb, i), rtol=1e-9, atol=1e-9)


def test_batch_nan_until_ready_and_continues_a_warm_engine():
    ts, p, size, tb = random_walk(3, 3000, gap=0.5, vol=1e-4, p0=30_000)
    X = batch(ts, p, size, tb, min_history_seconds=300, min_trades=30)
    ready = ~np.isnan(X).any(axis=1)
    first = int(np.argmax(ready))
    assert not ready[:first].any() and ready[first:].all()
    assert ts[first] - ts[0] >= 300 > ts[first - 1] - ts[0]
    # two halves through one engine == one pass
    eng = FeatureEngine(min_history_seconds=300, min_trades=30)
    a = batch(ts[:1000], p[:1000], size[:1000], tb[:1000], engine=eng)
    b = batch(ts[1000:], p[1000:], size[1000:], tb[1000:], engine=eng)
    np.testing.assert_array_equal(np.vstack([a, b]), X)


def test_long_stream_compacts_and_stays_exact():
    n = 3 * features.COMPACT + 500
    ts, p, size, tb = random_walk(5, n, gap=0.3, vol=2e-4, p0=60_000, buy_share=0.3)
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    for i in range(n):
        eng.update(ts[i], p[i], size[i], tb[i])
    assert eng._dropped > 0 and eng._held < n
    np.testing.assert_allclose(eng.vector(), reference(ts, p, size, tb, n - 1),
                               rtol=1e-9, atol=1e-9)


def test_known_values_on_a_hand_made_stream():
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    # t, price, size, taker_buy
    for t, price, sz, buy in [(0, 100.0, 1.0, True), (0, 101.0, 1.0, False),
                              (1, 102.0, 2.0, True), (10, 100.0, 4.0, True)]:
        eng.update(1e9 + t, price, sz, buy)
    f = eng.as_dict()
    assert f["ret_1s"] == pytest.approx(math.log(100 / 102))  # as-of t-1 = 9 -> the t=1 trade
    assert f["ret_5s"] == pytest.approx(math.log(100 / 102))
    assert f["ret_30s"] == pytest.approx(0.0)  # no trade 30 s back: the oldest one (100)
    r = [0, math.log(101 / 100), math.log(102 / 101), math.log(100 / 102)]
    # 10 s of history: the variance is scaled up to the 60 s window
    assert f["vol_60s"] == pytest.approx(math.sqrt(sum(x * x for x in r) * 60 / 10))
    assert f["imbalance_60s"] == pytest.approx((1 - 1 + 2 + 4) / 8)
    assert f["intensity_60s"] == pytest.approx(0.0)  # both windows: 4 trades over 10 s
    assert f["volume_60s"] == pytest.approx(0.0)
    prices = np.array([100, 101, 102, 100.0])
    assert f["z_30s"] == pytest.approx((100 - prices.mean()) / prices.std())
    e = 100 + (1 - math.exp(-1 / 30)) * (101 - 100)  # from 100; the burst ends on 101
    e += (1 - math.exp(-9 / 30)) * (102 - e)  # 102 held from t=1 to t=10
    assert f["ewma_dev_30s"] == pytest.approx(math.log(100 / e))
    assert eng.trade_rate == pytest.approx(4 / 10)


def test_flat_window_scores_zero_z():
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    for t in range(40):
        eng.update(1e9 + t, 100.0 + (t < 5), 1.0, True)  # moves, then flat for 35 s
    f = eng.as_dict()
    assert f["z_30s"] == 0.0 and f["z_300s"] != 0.0


def test_scaling_prices_leaves_features_unchanged():
    ts, p, size, tb = random_walk(7, 2000, gap=1.0, vol=3e-4, p0=20_000)
    a = batch(ts, p, size, tb)
    b = batch(ts, p * 10, size, tb)
    ok = ~np.isnan(a).any(axis=1)
    assert ok.sum() > 1000
    np.testing.assert_allclose(a[ok], b[ok], rtol=1e-9, atol=1e-9)


def test_scale_stretches_every_window():
    ts, p, size, tb = random_walk(11, 1500, gap=1.0, vol=1e-3, p0=100, start=0.0)
    a = batch(ts, p, size, tb, min_history_seconds=300, min_trades=30)
    b = batch(ts * 300, p, size, tb, scale=300.0, min_history_seconds=300 * 300, min_trades=30)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert features.windows(300.0)["ret_1s"] == 300.0


def test_zero_and_negative_values_stay_finite_and_scale_free():
    t = np.arange(400.0)
    series = np.sin(t / 7.0) * 5.0  # crosses zero, hits negative values
    series[::50] = 0.0
    ones, buys = np.ones_like(t), np.ones(len(t), bool)
    a = batch(t, series, ones, buys, min_history_seconds=0, min_trades=0)
    assert np.isfinite(a).all()
    b = batch(t, series * 1000.0, ones, buys, min_history_seconds=0, min_trades=0)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    nonpos = series <= 0  # returns from/to a non-positive value: bounded by 2
    assert nonpos.sum() > 100 and np.abs(a[nonpos, :4]).max() <= 2.0
    # 0 -> 5 with a level of 5: a relative change of +1
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    eng.update(0.0, 5.0, 1.0, True)
    eng.update(1.0, 0.0, 1.0, True)
    eng.update(2.0, 5.0, 1.0, True)
    assert eng.as_dict()["ret_1s"] == pytest.approx(1.0)


def test_readiness_needs_history_and_trades_and_returns_after_silence():
    eng = FeatureEngine(min_history_seconds=300, min_trades=30)
    assert eng.not_ready() == "no_features"
    for i in range(301):
        eng.update(1e9 + i, 100.0, 1.0, True)
        assert eng.ready == (i >= 300)
    eng.update(1e9 + 2000, 100.0, 1.0, True)  # a silence longer than the longest window
    assert eng.not_ready() == "no_features"
    for i in range(1, 30):
        eng.update(1e9 + 2000 + i, 100.0, 1.0, True)
    assert eng.ready


def test_bad_input_is_counted_and_skipped():
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    eng.update(1.0, 100.0, 1.0, True)
    before = eng.values()
    eng.update(2.0, math.nan, 1.0, True)
    eng.update(math.inf, 100.0, 1.0, True)
    assert eng.rejected == 2 and eng.values() == before
    eng.update(0.5, 101.0, 1.0, True)  # time going backwards is clamped, not dropped
    assert eng.last_ts == 1.0 and eng.as_dict()["ret_1s"] == pytest.approx(math.log(1.01))


def per_trade(eng, ts, p, size, tb):
    """(rows, trade rates) from update() + values() one trade at a time: what run() must give."""
    rows, rates = [], []
    for i in range(len(ts)):
        eng.update(ts[i], p[i], size[i], tb[i])
        rows.append(eng.values() if eng.ready else [math.nan] * len(FEATURE_NAMES))
        rates.append(eng.trade_rate)
    return np.array(rows).reshape(-1, len(FEATURE_NAMES)), np.array(rates)


def test_run_equals_update_values_bit_for_bit_across_calls():
    n = 3 * features.COMPACT + 700
    ts, p, size, tb = random_walk(13, n, gap=0.3, vol=2e-4, p0=40_000)
    ts[2000] = np.nan  # rejected inside run
    p[2500] = np.inf
    ts[3000] = ts[2990]  # time going backwards: clamped
    p[6000:6400] = p[5999]  # a flat stretch (z = 0 exactly)
    ref = FeatureEngine()
    want, want_rate = per_trade(ref, ts, p, size, tb)
    eng = FeatureEngine()
    got, rate = np.empty((n, 12)), np.empty(n)
    ready = 0
    for a, b in [(0, 0), (0, 1), (1, 350), (350, 350), (350, 5000), (5000, n)]:
        ready += eng.run(ts[a:b], p[a:b], size[a:b], tb[a:b], got[a:b], rate[a:b])
    assert eng._dropped > 0 and eng.rejected == ref.rejected == 2
    np.testing.assert_array_equal(got, want)  # NaN rows in the same places, values equal
    np.testing.assert_array_equal(rate, want_rate)
    assert ready == (~np.isnan(want).any(axis=1)).sum() > n - 1500
    assert eng.values() == ref.values() and eng.last_ts == ref.last_ts
    # batch() is run(): same rows; bytes and uint8 are accepted for the taker flags
    np.testing.assert_array_equal(batch(ts, p, size, tb), want)
    for flags in (tb.astype(np.uint8), tb.astype(np.int8), bytes(tb.astype(np.uint8))):
        out = np.empty((n, 12))
        FeatureEngine().run(ts, p, size, flags, out)
        np.testing.assert_array_equal(out, want)


def test_run_on_empty_arrays_and_without_rate():
    eng = FeatureEngine()
    empty = np.empty(0)
    assert eng.run(empty, empty, empty, np.empty(0, bool), np.empty((0, 12))) == 0
    assert eng.last_ts is None and eng.trade_rate == 0.0
    assert batch([], [], [], []).shape == (0, 12)


def test_run_refuses_bad_buffers_and_leaves_the_state_alone():
    n = 10
    ts, p, size, tb = random_walk(1, n, gap=1.0, vol=1e-4, p0=100)
    out, eng = np.zeros((n, 12)), FeatureEngine()
    bad = {
        "ts must hold float64": (ts.astype(np.float32), p, size, tb, out),
        "price must be a buffer": (ts, p.tolist(), size, tb, out),
        "taker must hold bools": (ts, p, size, tb.astype(np.int64), out),
        "out must hold float64": (ts, p, size, tb, out.astype(np.float32)),
    }
    for message, args in bad.items():
        with pytest.raises(TypeError, match=message):
            eng.run(*args)
    readonly = out.copy()
    readonly.flags.writeable = False
    bad = {
        "size holds 9 items": (ts, p, size[:9], tb, out),
        "taker holds 11 items": (ts, p, size, np.append(tb, True), out),
        "out holds 108 items": (ts, p, size, tb, out[:9]),
        "out must be writable": (ts, p, size, tb, readonly),
        "out must be C-contiguous": (ts, p, size, tb, np.empty((12, n)).T),
        "ts must be C-contiguous": (np.repeat(ts, 2)[::2], p, size, tb, out),
    }
    for message, args in bad.items():
        with pytest.raises(ValueError, match=message):
            eng.run(*args)
    with pytest.raises(ValueError, match="rate holds 3 items"):
        eng.run(ts, p, size, tb, out, rate=np.empty(3))
    with pytest.raises(ValueError, match="same length"):
        batch(ts, p, size[:9], tb)
    assert eng.last_ts is None and eng.rejected == 0  # nothing was folded in
    with pytest.raises(ValueError, match="scale must be positive, got 0"):
        FeatureEngine(scale=0)


def test_compaction_with_windows_longer_than_a_block_matches_the_reference():
    # 0.04 s apart: the 600 s window holds ~15000 trades (several COMPACT blocks), so the
    # history compacts while every pointer sits far from both ends
    n = 6 * features.COMPACT
    ts, p, size, tb = random_walk(17, n, gap=0.04, vol=1e-4, p0=25_000, buy_share=0.6)
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    X = np.empty((n, 12))
    eng.run(ts, p, size, tb, X)
    assert eng._dropped >= 2 * features.COMPACT and eng._held > 3 * features.COMPACT
    for i in (n // 2, n - 4500, n - 1):
        np.testing.assert_allclose(X[i], reference(ts, p, size, tb, i), rtol=1e-9, atol=1e-9)


def test_each_name_states_its_window_in_the_engine():
    # the window constants live in the C source: the names must still tell the truth
    for name, w in features.windows().items():
        assert float(name.rsplit("_", 1)[1].removesuffix("s")) == w, name
    assert features.windows(2.0)["vol_600s"] == 1200.0
