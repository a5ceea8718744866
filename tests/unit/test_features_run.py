"""`Engine.run` (the C batch loop over arrays, GIL released) == update() + values() bit for
bit, across calls and on empty arrays; bad buffers refused without touching the state."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blink.features import FEATURE_NAMES, FeatureEngine, batch
from tests.support.trades import random_walk


def per_trade(eng, ts, p, size, tb):
    """(rows, trade rates) from update() + values() one trade at a time: what run() must give."""
    rows, rates = [], []
    for i in range(len(ts)):
        eng.update(ts[i], p[i], size[i], tb[i])
        rows.append(eng.values() if eng.ready else [math.nan] * len(FEATURE_NAMES))
        rates.append(eng.trade_rate)
    return np.array(rows).reshape(-1, len(FEATURE_NAMES)), np.array(rates)


def test_run_equals_update_values_bit_for_bit_across_calls():
    n = 6000
    ts, p, size, tb = random_walk(13, n, gap=0.3, vol=2e-4, p0=40_000)
    ts[2000] = np.nan  # rejected inside run
    p[2500] = np.inf
    ts[3000] = ts[2990]  # time going backwards: clamped
    p[4000:4400] = p[3999]  # a flat stretch (z = 0 exactly)
    ref = FeatureEngine()
    want, want_rate = per_trade(ref, ts, p, size, tb)
    eng = FeatureEngine()
    got, rate = np.empty((n, 8)), np.empty(n)
    ready = 0
    for a, b in [(0, 0), (0, 1), (1, 350), (350, 350), (350, 5000), (5000, n)]:
        ready += eng.run(ts[a:b], p[a:b], size[a:b], tb[a:b], got[a:b], rate[a:b])
    assert eng.rejected == ref.rejected == 2
    np.testing.assert_array_equal(got, want)  # NaN rows in the same places, values equal
    np.testing.assert_array_equal(rate, want_rate)
    assert ready == (~np.isnan(want).any(axis=1)).sum() > n - 3000
    assert eng.values() == ref.values() and eng.last_ts == ref.last_ts
    # batch() is run(): same rows; bytes and uint8 are accepted for the taker flags
    np.testing.assert_array_equal(batch(ts, p, size, tb), want)
    for flags in (tb.astype(np.uint8), tb.astype(np.int8), bytes(tb.astype(np.uint8))):
        out = np.empty((n, 8))
        FeatureEngine().run(ts, p, size, flags, out)
        np.testing.assert_array_equal(out, want)


def test_run_on_empty_arrays_and_without_rate():
    eng = FeatureEngine()
    empty = np.empty(0)
    assert eng.run(empty, empty, empty, np.empty(0, bool), np.empty((0, 8))) == 0
    assert eng.last_ts is None and eng.trade_rate == 0.0
    assert batch([], [], [], []).shape == (0, 8)


def test_run_refuses_bad_buffers_and_leaves_the_state_alone():
    n = 10
    ts, p, size, tb = random_walk(1, n, gap=1.0, vol=1e-4, p0=100)
    out, eng = np.zeros((n, 8)), FeatureEngine()
    readonly = out.copy()
    readonly.flags.writeable = False
    bad = {
        "ts: expected float64, got format 'f'": (ts.astype(np.float32), p, size, tb, out),
        "price: expected a C-contiguous array": (ts, p.tolist(), size, tb, out),
        "taker: expected bool": (ts, p, size, tb.astype(np.int64), out),
        "out: expected float64": (ts, p, size, tb, out.astype(np.float32)),
        "out: expected a C-contiguous writable array": (ts, p, size, tb, readonly),
        "out: expected a C-contiguous writable": (ts, p, size, tb, np.empty((8, n)).T),
        "ts: expected a C-contiguous array": (np.repeat(ts, 2)[::2], p, size, tb, out),
    }
    for message, args in bad.items():
        with pytest.raises(TypeError, match=message):
            eng.run(*args)
    bad = {
        "size holds 9 items": (ts, p, size[:9], tb, out),
        "taker holds 11 items": (ts, p, size, np.append(tb, True), out),
        "out holds 72 items": (ts, p, size, tb, out[:9]),
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
