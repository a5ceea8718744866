"""The chunked backtest (runs of rows through `Detector.on_trades`) gives exactly the output
of the trade-by-trade path, across retrains; its vectorised pieces equal their scalar ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blink.backtest import driver
from blink.backtest.feature_history import FeatureHistory
from blink.formats import files
from blink.model.served import ServedModel, training_stats
from tests.support.backtests import FAST


def outcome(rows, settings, chunk: int, **kw):
    out, bt, summary = driver.run(rows, settings, chunk=chunk, **kw)
    feature_rows, _ = bt.drain()
    return ([s.cells() for s in out], [(s.ts, s.threshold) for s in out],
            [(f.end, f.version, f.rows, f.promoted, f.threshold) for f in bt.fits],
            sorted(e.as_dict().items() for e in bt.events.values()),
            bt.history.count, summary.rows)


@pytest.fixture
def bars_file(tmp_path):
    """1-minute OHLCV bars (four trades a row) with a jump: multi-trade rows and events."""
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, 800)))
    close[700:] *= 1.05
    lines = ["time_utc,open,high,low,close,volume"]
    for i, c in enumerate(close):
        o = close[i - 1] if i else c
        hi, lo = max(o, c) * 1.0005, min(o, c) * 0.9995
        lines.append(f"{1_700_000_000 + 60 * i},{o:.4f},{hi:.4f},{lo:.4f},{c:.4f},"
                     f"{rng.uniform(1, 5):.3f}")
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def bar_settings(make_settings, rows):
    """Small forests, the first fit after 300 rows, windows and retrains planned for `rows`."""
    from blink.backtest import sampling

    return sampling.plan(make_settings(train_min_rows=300, n_estimators=20, max_samples=64),
                         "bars", rows)


def test_chunked_ticks_equal_trade_by_trade_across_retrains(tick_file, make_settings):
    settings = make_settings(**FAST)
    rows = list(files.read(tick_file))
    one = outcome(rows, settings, chunk=1)  # trade by trade through both stages
    assert len(one[2]) >= 3 and len(one[3]) >= 1  # retrains and anomaly events happened
    assert outcome(rows, settings, chunk=1024) == one
    assert outcome(rows, settings, chunk=37) == one


def test_fits_in_a_worker_process_give_the_same_output(tick_file, make_settings,
                                                       monkeypatch):
    settings = make_settings(**FAST)
    rows = list(files.read(tick_file))
    inline = outcome(rows, settings, chunk=1024)
    assert len(inline[2]) >= 3
    assert outcome(rows, settings, chunk=1024, fit_workers=2) == inline
    # the feature stage far ahead of the scoring stage: it waits for the fits it needs
    monkeypatch.setattr(driver, "AHEAD_TRADES", 100)
    assert outcome(rows, settings, chunk=64, fit_workers=2) == inline


def test_chunked_bars_equal_trade_by_trade(bars_file, make_settings):
    rows = list(files.read(bars_file))
    settings = bar_settings(make_settings, rows)
    assert max(len(r.trades) for r in rows) > 1
    one = outcome(rows, settings, chunk=1)
    assert len(one[2]) >= 2 and any(c[2] for c in one[0])
    assert outcome(rows, settings, chunk=1024) == one
    assert outcome(rows, settings, chunk=3) == one  # smaller than some rows (4 trades)


def test_bars_without_prices_score_as_if_the_rows_were_missing(bars_file, make_settings,
                                                               tmp_path):
    # how a minute without trades is written (a NaN row, an empty one, no row at all) does
    # not change a single score: each is a silence to the features
    lines = bars_file.read_text().splitlines()
    gone = {5, 6, 7, 300, *range(400, 460), 650}  # data lines blanked or dropped
    blank = [",".join([x.split(",")[0]] + ["NaN" if i % 2 else ""] * 5) if i in gone else x
             for i, x in enumerate(lines[1:], 1)]
    with_nan, without = tmp_path / "nan.csv", tmp_path / "dropped.csv"
    with_nan.write_text("\n".join([lines[0], *blank]) + "\n")
    without.write_text("\n".join([lines[0], *(x for i, x in enumerate(lines[1:], 1)
                                               if i not in gone)]) + "\n")
    out = {}
    for path in (with_nan, without):
        rows = list(files.read(path))
        out[path] = outcome(rows, bar_settings(make_settings, rows), chunk=1024)
    kept = [c for c in out[with_nan][0] if c[1] not in ("", "NaN")]
    assert kept == out[without][0] and len(kept) == len(lines) - 1 - len(gone)
    assert all(c[2:] == ["", "0", "0.0", ""] for c in out[with_nan][0] if c[1] in ("", "NaN"))
    assert out[with_nan][2:5] == out[without][2:5]  # the same fits, events, feature rows
    assert any(c[3] == "1" for c in kept)


def test_memory_is_bounded_by_retrains_ahead_not_by_the_file(bars_file, make_settings,
                                                             monkeypatch):
    # a chunk of bars spans many retrains: it used to keep every model that judged it (2.4 GB
    # at 150,000 bars), and the feature stage queued every retrain (window, then model)
    import asyncio
    import gc
    import weakref

    from blink.backtest.engine import Backtest
    from blink.backtest.fits import serve_forest

    rows = list(files.read(bars_file))
    settings = bar_settings(make_settings, rows)
    want = outcome(rows, settings, chunk=1024)
    monkeypatch.setattr(driver, "AHEAD_FITS", 1)
    assert outcome(rows, settings, chunk=64) == want
    served, ahead = [], []

    def serve(result, version, end):
        served.append(weakref.ref(model := serve_forest(result, version, end)))
        return model

    def emit(done):
        gc.collect()
        ahead.append(("alive at the chunk's end", sum(m() is not None for m in served)))

    bt = Backtest(settings, serve=serve, keep_rows=False, chunk=64)
    retrain = bt._retrain
    bt._retrain = lambda end: (retrain(end), ahead.append(("queued", bt.fits_ahead)))
    asyncio.run(driver.drive(files.columns(rows), bt, emit))
    assert len(bt.fits) >= 5 and len(rows) <= files.CHUNK_ROWS  # one chunk, many models
    assert max(n for what, n in ahead if what == "queued") <= 2  # AHEAD_FITS + one a step
    assert [n for what, n in ahead if what != "queued"] == [1]  # the one being served


def test_vector_anomaly_scores_equal_the_scalar_ones():
    rng = np.random.default_rng(0)
    for scores in (rng.normal(-0.45, 0.05, 3000), np.round(rng.normal(-0.45, 0.05, 3000), 2)):
        stats = training_stats(scores)
        model = ServedModel(None, ("a", "b"), float(np.quantile(scores, 0.01)), "m", "1", "t",
                            stats)
        q = np.asarray(stats["score_quantiles"])  # ties when rounded: interp's edge cases
        raw = np.concatenate([rng.normal(-0.45, 0.1, 5000), q, np.nextafter(q, 0),
                              np.nextafter(q, -1), [-1.0, -0.0]])
        vector = model.anomaly_scores(raw)
        assert vector.tolist() == [model.anomaly_score(float(r)) for r in raw]
        assert vector.tolist() == (1.0 - np.interp(raw, q, stats["quantile_levels"])).tolist()
        assert vector.min() == 0.0 and vector.max() == 1.0
    bare = ServedModel(None, ("a",), -0.5, "m", "1", "t", {})
    assert bare.anomaly_scores([-0.6, -0.4]).tolist() == [1.0, 0.0] == [
        bare.anomaly_score(-0.6), bare.anomaly_score(-0.4)]
    assert math.isnan(model.anomaly_score(math.nan))


def test_history_extend_equals_appending_row_by_row():
    rng = np.random.default_rng(1)
    ts, X = np.arange(50.0), rng.normal(size=(50, 3))
    one, many = FeatureHistory(3, block=8), FeatureHistory(3, block=8)
    for t, x in zip(ts, X, strict=True):
        one.append(t, list(x))
    for a, b in ((0, 3), (3, 3), (3, 20), (20, 50)):  # empty, inside and across blocks
        many.extend(ts[a:b], X[a:b])
    assert one.count == many.count == 50
    for start, end in ((-1.0, 60.0), (9.0, 30.0), (30.0, 49.0)):
        ts_many, got = many.window(start, end)
        ts_one, want = one.window(start, end)
        assert len(got) and np.array_equal(want, got) and np.array_equal(ts_one, ts_many)
        assert np.array_equal(ts_many, ts[(ts > start) & (ts <= end)])
