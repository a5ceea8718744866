"""Features: incremental == batch == a brute-force reference on the event-time grid; the
lagged regime; scale-freedom (price level, calm vs wild market). `Engine.run` against
update() + values(): tests/unit/test_features_run.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blink import features
from blink.features import FEATURE_NAMES, FeatureEngine, batch, grid_rows
from tests.support.trades import random_walk

IDX = {name: i for i, name in enumerate(FEATURE_NAMES)}
H, LAG, REGIME, FLOW = features.HORIZONS, features.LAG, features.REGIME, features.FLOW


def reference(ts, p, size, tb, i, scale=1.0) -> list[float]:
    """Every feature after trade i, straight from docs/features.md (positive prices only)."""
    ts, p, size, tb = (np.asarray(a)[: i + 1] for a in (ts, p, size, tb))
    K = np.floor(ts / scale).astype(np.int64)
    first, k = int(K[0]), int(K[-1])
    closed = np.arange(first, k)
    last = np.searchsorted(K, closed, side="right") - 1  # last trade of each closed step
    lp = np.log(p[last]) if len(closed) else np.empty(0)

    def P(s):  # closing log price of step s (the first trade's before the first step)
        s = np.asarray(s)
        return np.where(s < first, math.log(p[0]), lp[np.clip(s - first, 0, None)]
                        if len(lp) else math.log(p[0]))

    vol = np.bincount(K - first, weights=size, minlength=k - first + 1)
    cnt = np.bincount(K - first, minlength=k - first + 1).astype(float)
    sv = np.bincount(K - first, weights=np.where(tb, size, -size), minlength=k - first + 1)

    def window(a, s):  # sum over steps (s - FLOW, s]
        return a[max(0, s - FLOW + 1 - first): s - first + 1].sum()

    regime = np.arange(max(first, k - LAG - REGIME + 1), k - LAG + 1)
    traded = np.array([window(cnt, int(s)) > 0 for s in range(first, k - LAG + 1)], bool)
    bv = []
    for h in (int(x) for x in H[: features.BV_HORIZONS]):
        prod = winsorized(P, first, k - LAG, h, traded)[regime - first]
        prod = prod[~np.isnan(prod)]
        bv.append(math.pi / 2 * prod.mean() if len(prod) else 0.0)
    ref = math.sqrt(bv[2])
    sig = [max(math.sqrt(b), ref * math.sqrt(h / 30)) for b, h in zip(bv, H, strict=False)]
    sig.append(ref * math.sqrt(H[3] / 30))
    now = math.log(p[-1])
    out = [(now - float(P(k - int(h)))) / sg if sg > 0 else 0.0 for h, sg in zip(H, sig,
                                                                                  strict=True)]
    flow = np.arange(max(first, k - FLOW + 1), k + 1)
    r1 = [float(P(s) - P(s - 1)) if s > first else 0.0 for s in flow[flow < k]]
    r1.append(now - float(P(k - 1)))
    mean = float(np.mean(np.square(r1)))
    x = 0.5 * math.log(mean / sig[0] ** 2) if sig[0] > 0 and mean > 0 else 0.0
    out.append(max(x, 0.0))
    v, n = window(vol, k), window(cnt, k)
    # the count's yardstick: the RECENT steps before the flow window, none whose window
    # overlaps a silence (a closed step whose own window had no trade)
    silent = [s for s in range(first, k) if window(cnt, s) == 0]
    since = silent[-1] + FLOW if silent else first
    recent = np.arange(max(first, since, k - FLOW - features.RECENT + 1), k - FLOW + 1)
    for now_, a, log, steps in ((math.log(v + features.EPS_VOLUME), vol,
                                 lambda x: math.log(x + features.EPS_VOLUME), regime),
                                (math.log(n + 1), cnt, lambda x: math.log(x + 1), recent)):
        # volume: the regime's steps; count: the RECENT steps before the flow window; of
        # those, the steps whose window traded (a silence is no usual level of zero)
        usual = [log(window(a, int(s))) for s in steps if window(a, int(s)) > 0]
        out.append(max(now_ - np.mean(usual), 0.0) if usual else 0.0)
    out.append(window(sv, k) / v if v > 0 else 0.0)
    return out


def winsorized(P, first: int, last: int, h: int, traded: np.ndarray) -> np.ndarray:
    """The bipower products |r_h(s)| |r_h(s - h)| of steps first..last as each entered the
    regime window: capped at CAP times the mean of the (capped) products of the REGIME steps
    before it, once CAP_MIN of them exist (NaN: no 2h-step history, or no trade in the
    step's flow window, `traded`: a silence is no market)."""
    steps = np.arange(first, last + 1)
    raw = np.abs(P(steps) - P(steps - h)) * np.abs(P(steps - h) - P(steps - 2 * h))
    out = np.full(len(steps), np.nan)
    for i, s in enumerate(steps):
        if s - 2 * h < first or not traded[i]:
            continue
        before = out[max(0, i - REGIME): i]
        before = before[~np.isnan(before)]
        cap = features.CAP * before.mean() if len(before) >= features.CAP_MIN else np.inf
        out[i] = min(raw[i], cap) if cap > 0 else raw[i]
    return out


# gaps between trades: same-timestamp bursts, normal spacing, and silences longer than the
# regime window; returns in whole ticks of 1e-4 (0 = same price, so flat stretches occur)
gaps = st.one_of(st.just(0.0), st.floats(0.001, 3.0), st.floats(5.0, 40.0),
                 st.floats(250.0, 2500.0))
trade = st.tuples(gaps, st.integers(-30, 30), st.floats(0.0001, 5.0), st.booleans())


def stream(draws, start=1.7e9, p0=50_000.0):
    ts, p = np.cumsum([d[0] for d in draws]) + start, [p0]
    for d in draws[1:]:
        p.append(p[-1] * math.exp(d[1] * 1e-4))
    return ts, np.array(p), np.array([d[2] for d in draws]), np.array([d[3] for d in draws])


@settings(max_examples=40, deadline=None)
@given(st.lists(trade, min_size=1, max_size=100), st.sampled_from([1.0, 0.25, 7.0]))
def test_incremental_equals_batch_and_reference(draws, scale):
    ts, p, size, tb = stream(draws)
    X = batch(ts, p, size, tb, scale=scale, min_history_seconds=0, min_trades=0)
    eng = FeatureEngine(scale=scale, min_history_seconds=0, min_trades=0)
    for i in range(len(ts)):
        eng.update(ts[i], p[i], size[i], tb[i])
        row = eng.values()
        if eng.ready:
            np.testing.assert_array_equal(X[i], row)
        else:
            assert np.isnan(X[i]).all()
    for i in {len(ts) - 1, len(ts) // 2}:
        eng = FeatureEngine(scale=scale)
        batch(ts[: i + 1], p[: i + 1], size[: i + 1], tb[: i + 1], engine=eng)
        np.testing.assert_allclose(eng.values(), reference(ts, p, size, tb, i, scale),
                                   rtol=1e-7, atol=1e-9)


def test_long_stream_matches_the_reference_well_past_the_ring():
    n = 12_000  # ~3 h at 0.9 s: the regime window slides over thousands of steps
    ts, p, size, tb = random_walk(5, n, gap=0.9, vol=3e-4, p0=30_000, buy_share=0.6)
    p[7000:] *= 1.02  # a 2 % jump on the way
    X = batch(ts, p, size, tb)
    for i in (1500, 7000, 7200, 8000, n - 1):  # 8000: the jump is in the regime window
        np.testing.assert_allclose(X[i], reference(ts, p, size, tb, i), rtol=1e-8, atol=1e-9)


def test_a_jump_does_not_inflate_its_own_yardstick():
    ts, p, size, tb = random_walk(3, 6000, gap=1.0, vol=2e-4, p0=30_000)
    p[5000:] *= math.exp(40 * 2e-4)  # a 40-sigma one-step jump
    X = batch(ts, p, size, tb)
    z1, z300 = X[:, IDX["z_1"]], X[:, IDX["z_300"]]
    assert z1[5000] > 25  # the jump in units of the volatility before it
    assert z300[5000 + LAG // 2] > 1.5  # still a large 5-min move: sigma is not inflated yet
    after = (ts > ts[5000] + FLOW + 2) & (ts < ts[5000] + LAG)
    assert np.all(X[after, IDX["volratio_60"]] < 0.5)  # one jump, no burst once it left


def test_an_earlier_crash_barely_inflates_the_later_yardstick():
    # a crash of 60 one-step moves of -8 sigma and back: bipower alone does not resist a RUN
    # of large steps (without the cap on the products, sigma after it was 9x the clean one)
    ts, p, size, tb = random_walk(6, 8000, gap=1.0, vol=2e-4, p0=30_000)
    down = np.exp(-8 * 2e-4 * np.arange(1, 61))
    crashed = p * np.concatenate([np.ones(4000), down, down[::-1],
                                  np.ones(len(p) - 4120)])
    clean, after = batch(ts, p, size, tb), batch(ts, crashed, size, tb)
    inside = slice(4000 + LAG + 900, 4000 + LAG + 1500)  # the crash is in the regime window
    ratio = after[inside, IDX["z_1"]] / clean[inside, IDX["z_1"]]
    assert np.nanmedian(ratio) > 0.4  # the same later move keeps at least 40 % of its z


def test_calm_and_wild_markets_give_the_same_feature_distribution():
    calm = batch(*random_walk(8, 20_000, gap=0.5, vol=1e-4, p0=40_000))
    wild = batch(*random_walk(8, 20_000, gap=0.5, vol=2e-3, p0=40_000))
    calm, wild = calm[~np.isnan(calm[:, 0])], wild[~np.isnan(wild[:, 0])]
    for name in ("z_1", "z_5", "z_30", "z_300", "volratio_60"):
        j = IDX[name]
        a, b = np.quantile(calm[:, j], [0.05, 0.5, 0.95]), np.quantile(wild[:, j], [0.05, 0.5,
                                                                                      0.95])
        np.testing.assert_allclose(a, b, atol=0.05, err_msg=name)
    # the raw returns differ 20x, their z do not: the old ret_* columns were not scale-free


def test_volume_surprise_against_the_lagged_regime():
    ts, p, size, tb = random_walk(4, 8000, gap=0.5, vol=1e-4, p0=40_000)
    size[6000:6120] *= 9.0  # ~60 s of 9x volume
    X = batch(ts, p, size, tb)
    vs = X[:, IDX["volume_surprise_60"]]
    assert math.exp(vs[6119]) == pytest.approx(9.0, rel=0.35)
    assert np.median(vs[3000:5900]) < 0.4


def test_a_hole_in_the_data_is_not_a_usual_volume_of_zero_nor_a_calm_market():
    # trading, a silence as long as the regime window (a halt, a hole in a file), trading
    # again at the same pace: the first trades after it are as usual as before it
    ts, p, size, tb = random_walk(9, 9000, gap=1.0, vol=1e-4, p0=30_000)
    ts[4500:] += REGIME  # the lagged regime window holds the hole and ~300 traded steps
    X = batch(ts, p, size, tb)
    after = slice(4500 + FLOW, 4500 + 2 * FLOW)
    for name in ("volume_surprise_60", "count_surprise_60"):
        assert np.nanmax(X[after, IDX[name]]) < math.log(2), name  # not 10^8 times "usual"
    # nor is it a calm market: the yardstick is what the market did when it traded
    before = slice(4500 - 2 * FLOW, 4500 - FLOW)
    for name in ("z_1", "z_30"):
        ratio = np.median(np.abs(X[after, IDX[name]])) / np.median(np.abs(X[before, IDX[name]]))
        assert 0.5 < ratio < 2, (name, ratio)


def test_scaling_prices_leaves_features_unchanged():
    ts, p, size, tb = random_walk(2, 3000, gap=0.5, vol=1e-4, p0=100.0)
    a, b = batch(ts, p, size, tb), batch(ts, p * 1000.0, size, tb)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_scale_stretches_every_window():
    ts, p, size, tb = random_walk(6, 3000, gap=0.5, vol=1e-4, p0=100.0)
    a = batch(ts, p, size, tb, min_history_seconds=0)
    b = batch(1.7e9 + (ts - 1.7e9) * 4.0, p, size, tb, scale=4.0, min_history_seconds=0)
    np.testing.assert_allclose(a[~np.isnan(a[:, 0])], b[~np.isnan(a[:, 0])], rtol=1e-6,
                               atol=1e-6)


def test_zero_and_negative_values_stay_finite_and_scale_free():
    rng = np.random.default_rng(3)
    n = 2000
    ts = 1.7e9 + np.arange(n, dtype=float)
    v = np.round(rng.normal(0.0, 5.0, n), 1)  # a metric around zero: many zeros and negatives
    a = batch(ts, v, np.ones(n), np.ones(n, bool), min_history_seconds=0, min_trades=0)
    b = batch(ts, v * 1000, np.ones(n), np.ones(n, bool), min_history_seconds=0, min_trades=0)
    ready = ~np.isnan(a[:, 0])
    assert ready.sum() > 1000 and np.isfinite(a[ready]).all()
    np.testing.assert_allclose(a[ready], b[ready], rtol=1e-9, atol=1e-9)


def test_readiness_needs_steps_history_and_trades():
    eng = FeatureEngine(min_history_seconds=300, min_trades=30)
    assert eng.not_ready() == "no_features"
    for i in range(features.READY + 1):
        eng.update(1e9 + i, 100.0, 1.0, True)
        assert eng.ready == (i >= features.READY), i
    slow = FeatureEngine(min_history_seconds=0, min_trades=30)
    for i in range(20):
        slow.update(1e9 + 100.0 * i, 100.0, 1.0, True)  # READY steps pass, 20 trades only
    assert not slow.ready


def test_bad_input_is_counted_and_skipped():
    eng = FeatureEngine(min_history_seconds=0, min_trades=0)
    eng.update(1.0, 100.0, 1.0, True)
    before = eng.values()
    eng.update(2.0, math.nan, 1.0, True)
    eng.update(math.inf, 100.0, 1.0, True)
    assert eng.rejected == 2 and eng.trades == 1
    np.testing.assert_array_equal(eng.values(), before)
    eng.update(0.5, 101.0, 1.0, True)  # time going backwards is clamped, not dropped
    assert eng.last_ts == 1.0 and eng.trades == 2


def test_grid_rows_take_the_last_trade_of_each_step():
    ts = np.array([0.1, 0.5, 0.9, 1.2, 3.0, 3.5, 7.99])
    np.testing.assert_array_equal(grid_rows(ts, 1.0), [2, 3, 5, 6])
    np.testing.assert_array_equal(grid_rows(ts, 4.0), [5, 6])
    assert len(grid_rows(np.empty(0), 1.0)) == 0


def test_each_name_states_its_window_in_the_engine():
    # the horizons live in the C source: the names must still tell the truth
    for name, w in features.windows().items():
        assert float(name.rsplit("_", 1)[1]) == w, name


def test_trade_count_surprise_is_a_surge_against_the_minutes_before():
    # 2 trades/s for an hour, then 8/s from then on: one minute into the step the count reads
    # 4x the minutes before it; once those minutes are the new pace too (FLOW + RECENT
    # steps), it reads as usual again (the long regime would call it 4x for an hour)
    rng = np.random.default_rng(12)
    calm = 1.7e9 + np.cumsum(rng.exponential(0.5, 7200))
    busy = calm[-1] + np.cumsum(rng.exponential(0.125, 8 * 900))
    ts = np.concatenate([calm, busy])
    p = 30_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, len(ts))))
    X = batch(ts, p, rng.lognormal(-4, 1, len(ts)), rng.random(len(ts)) < 0.5)
    cs = X[:, IDX["count_surprise_60"]]
    at = np.searchsorted(ts, calm[-1] + np.array([FLOW, FLOW + features.RECENT + 60.0, 900.0]))
    assert math.exp(cs[at[0]]) == pytest.approx(4.0, rel=0.25)
    assert cs[at[1]:at[2]].max() < math.log(1.5)
    assert np.median(cs[np.searchsorted(ts, calm[0] + 1800):len(calm)]) < 0.3
