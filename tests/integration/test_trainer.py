"""The pure fit (determinism, threshold rule, promotion checks) and the training matrix."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from blink import features
from blink.cli import train as train_cli
from blink.model import budget, trainer
from blink.model.served import ServedModel
from blink.store import db, tape_reads
from tests.support.trades import T0, walk_rows
from tests.support.training import feature_rows, insert_trades


@pytest.fixture
def fit_settings(make_settings):
    return make_settings(train_min_rows=200, n_estimators=30)


def test_fit_is_deterministic_with_a_fixed_seed(fit_settings, make_settings):
    X = feature_rows(2000)
    a, b = trainer.fit(X, fit_settings), trainer.fit(X, fit_settings)
    assert a.threshold == b.threshold and a.train_stats == b.train_stats
    probe = X[:50]
    np.testing.assert_array_equal(a.forest.score_samples(probe), b.forest.score_samples(probe))
    other = trainer.fit(X, make_settings(train_min_rows=200, n_estimators=30, random_state=7))
    assert other.threshold != a.threshold


def test_threshold_rule_and_holdout(fit_settings):
    X = feature_rows(4000)
    r = trainer.fit(X, fit_settings)
    w = trainer.prepare(X, fit_settings)  # one row per grid step (ts None: one per step)
    n_cal = 4000 - round(4000 * fit_settings.holdout_fraction)
    assert r.metrics["rows_calibration"] == n_cal == len(w.X)
    assert r.metrics["rows_holdout"] == 4000 - n_cal
    assert r.metrics["rows_train"] == n_cal - w.fit_from
    assert r.forest.n_features == X.shape[1]
    m = _served(r)
    # the threshold is the budget's level on the UNTRIMMED calibration rows' scores, each
    # row scored by a model that did not see it: the training rows out of fold (halves)
    cal = m.score(w.X)
    train = w.X[w.fit_from:]
    half = len(train) // 2
    assert trainer.CROSSFIT and r.metrics["rows_trimmed"] == 0  # (nothing to trim here)
    halves = (slice(0, half), slice(half, None))
    for fitted, scored in (halves[::-1], halves):
        _, other = trainer._model(train[fitted], r.feature_names, list(range(X.shape[1])),
                                  fit_settings, fit_settings.feature_scale)
        cal[w.fit_from:][scored] = other.score(train[scored])
    gap = fit_settings.event_gap_seconds
    z, info = budget.threshold(w.ts, -cal, gap, fit_settings.alerts_per_day)
    assert r.threshold == pytest.approx(-z, abs=1e-12)
    assert r.metrics["budget_base_level"] == pytest.approx(info["budget_base_level"])
    cal_events = budget.events(w.ts, cal < r.threshold, gap)
    assert r.metrics["calibration_events_per_day"] == pytest.approx(
        len(cal_events) / info["budget_days"])
    # anomalous strictly below; the held-out count is what the promotion check reads
    hold = m.score(w.hold)
    assert r.metrics["holdout_events"] == len(budget.events(w.hold_ts, hold < r.threshold, gap))
    assert r.metrics["score_q0.001"] <= r.metrics["score_q0.5"] <= 0
    assert 0 <= r.metrics["trimmed_fraction"] <= fit_settings.trim_fraction
    assert r.promote_ok, r.reason
    assert set(r.train_stats) >= {"tails", "columns", "scale", "score_quantiles"}
    assert r.params["n_estimators"] == 30 and r.params["random_state"] == 42
    assert r.params["alerts_per_day"] == fit_settings.alerts_per_day


def test_trim_drops_past_events_and_refits(fit_settings):
    X = feature_rows(4000)
    X[2000:2010] += 25.0  # one gross past event in the training window
    # 30-s steps: a 33-hour window, so that the alert level pass 1 trims at (the budget's,
    # 2 a day) rests on more than a day; on an hour of rows it is an extrapolation far
    # beyond everything and nothing is trimmed
    ts = np.arange(4000) * 30.0
    fit_settings = replace(fit_settings, trim_fraction=0.15, feature_scale=30.0,
                           train_hours=40.0, calibration_hours=40.0)
    r = trainer.fit(X, fit_settings, ts=ts)
    assert 10 <= r.metrics["rows_trimmed"] <= fit_settings.trim_fraction * r.metrics["rows_train"]
    # the refit never saw the event: its tails call it far rarer than the untrimmed fit would
    untrimmed = trainer.fit(X, replace(fit_settings, trim_fraction=0.0), ts=ts)
    assert untrimmed.metrics["rows_trimmed"] == 0
    assert _served(r).score(X[2000:2010]).max() < _served(untrimmed).score(X[2000:2010]).max()


def test_the_second_trim_pass_catches_what_the_first_had_learned(fit_settings, monkeypatch):
    """A gross past event (+100) widens pass 1's fitted tail of that feature, so a moderate
    one (+8, 5 rows) stays below pass 1's alert level; the model refitted without the gross
    event re-scores every row and trims the moderate one too."""
    X = feature_rows(4000)
    X[1000:1010, 0] += 100.0
    X[1800:1805, 0] += 8.0
    ts = np.arange(4000) * 30.0
    fit_settings = replace(fit_settings, trim_fraction=0.1, feature_scale=30.0,
                           train_hours=40.0, calibration_hours=40.0)
    masks, trim_mask = [], budget.trim_mask

    def spy(*args, **kw):
        masks.append(trim_mask(*args, **kw))
        return masks[-1]

    monkeypatch.setattr(budget, "trim_mask", spy)
    r = trainer.fit(X, fit_settings, ts=ts)
    assert trainer.TRIM_PASSES == len(masks) == 2
    first, second = masks
    assert not first[1000:1010].any() and first[1800:1805].all()
    # pass 2 trims the moderate event: its rows above pass 2's alert level (4 of the 5 since
    # the budget's GPD is matched at quantiles: row 1800 scores just under the level)
    assert not second[1000:1010].any() and np.count_nonzero(~second[1800:1805]) >= 4
    assert r.metrics["rows_trimmed"] == np.count_nonzero(~second)


def _stream(days: float, seed: int, gap: float = 15.0):
    """Trades at random times (mean `gap` s apart): a random walk with Student-t(4) steps
    and a volatility that follows the time of day and drifts, lognormal sizes -- no
    anomaly, but heavy tails, clustering and a daily cycle, as a market has."""
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / gap)
    ts = T0.timestamp() + np.cumsum(rng.exponential(gap, n))
    vol = 5e-4 * np.exp(0.3 * np.sin(2 * np.pi * ts / 86400)
                        + np.cumsum(rng.normal(0, 0.003, n)))
    r = vol * rng.standard_t(4, n) / np.sqrt(2)
    return ts, 30_000 * np.exp(np.cumsum(r)), rng.lognormal(0, 1, n), rng.random(n) < 0.5


def test_alert_budget_holds_out_of_sample(make_settings):
    """The threshold calibrated on 2 days gives about `alerts_per_day` events a day on the
    next 12 days of the same process (the point of modelling the tail of event peaks)."""
    s = make_settings(train_min_rows=500, n_estimators=50, feature_scale=15.0,
                      min_history_seconds=0.0, min_trades=1, train_hours=48.0,
                      calibration_hours=48.0, holdout_fraction=0.05)
    ts, p, size, tb = _stream(14.0, seed=5)
    X = features.batch(ts, p, size, tb, engine=features.FeatureEngine.from_settings(s))
    fit_end = int(np.searchsorted(ts, ts[0] + 2 * 86400))
    r = trainer.fit(X[:fit_end], s, features.FEATURE_NAMES, ts=ts[:fit_end])
    assert r.promote_ok, r.reason
    rest = features.grid_rows(ts[fit_end:], s.feature_scale) + fit_end
    scores = _served(r).score(X[rest])
    days = (ts[-1] - ts[fit_end]) / 86400
    per_day = len(budget.events(ts[rest], scores < r.threshold, s.event_gap_seconds)) / days
    assert s.alerts_per_day / 3 <= per_day <= s.alerts_per_day * 3, per_day


def test_nan_rows_dropped_and_too_few_rows(fit_settings):
    X = feature_rows(400)
    X[:150, 2] = np.nan  # windows still warming up
    X[200, 0] = np.inf
    with pytest.raises(trainer.TooFewRows, match="249 warm feature rows, need 250"):
        trainer.fit(X, replace(fit_settings, train_min_rows=250))
    r = trainer.fit(X, fit_settings)
    assert r.metrics["rows_calibration"] + r.metrics["rows_holdout"] == 249
    with pytest.raises(trainer.TooFewRows):
        trainer.fit(np.full((1000, 3), np.nan), fit_settings)


def test_constant_feature_blocks_promotion(fit_settings):
    X = feature_rows(2000)
    X[:, 3] = 1.5
    names = [f"c{i}" for i in range(X.shape[1])]
    r = trainer.fit(X, fit_settings, names)
    assert not r.promote_ok and r.reason == "constant features: c3"


def test_shifted_recent_data_blocks_promotion(fit_settings):
    X = feature_rows(3000)
    X[-300::3] += 6.0  # the held-out, most recent slice: an anomaly every third row ...
    fit_settings = replace(fit_settings, feature_scale=60.0)  # ... each its own event
    r = trainer.fit(X, fit_settings)
    assert r.metrics["holdout_events"] > budget.holdout_limit(
        fit_settings.alerts_per_day, r.metrics["holdout_days"],
        fit_settings.max_holdout_rate_factor)
    assert not r.promote_ok and "held-out events" in r.reason
    relaxed = trainer.fit(X, replace(fit_settings, max_holdout_rate_factor=1000.0))
    assert relaxed.promote_ok


def test_copy_binary_parser_rejects_garbage():
    with pytest.raises(ValueError, match="not a binary COPY"):
        tape_reads.parse_copy_binary(b"hello")
    good = tape_reads.SIGNATURE + bytes(8) + b"\x00\x05" + bytes(10) + b"\xff\xff"
    with pytest.raises(ValueError, match="whole rows"):
        tape_reads.parse_copy_binary(good)


async def test_training_matrix_equals_features_batch_over_the_range(settings, pg_dsn):
    rows = walk_rows(2500)
    other = [("ETH-USD", *r[1:]) for r in walk_rows(50, seed=3)]
    await insert_trades(pg_dsn, rows[::-1] + other)  # insertion order must not matter
    end = rows[2000][2]
    pool = await db.create_pool(pg_dsn)
    try:
        s = replace(settings, train_hours=0.25, calibration_hours=0.25)
        X, meta = await trainer.load_training_matrix(pool, s, end)
        assert await tape_reads.newest_trade_time(pool, "BTC-USD") == rows[-1][2]
    finally:
        await pool.close()
    start = end - timedelta(hours=0.25)
    chosen = [r for r in rows if start < r[2] <= end]
    expect = features.batch([r[2].timestamp() for r in chosen], [float(r[3]) for r in chosen],
                            [float(r[4]) for r in chosen], [r[5] == "sell" for r in chosen],
                            engine=features.FeatureEngine.from_settings(s))
    np.testing.assert_allclose(X, expect, rtol=0, atol=1e-9)
    assert X.shape == (len(chosen), len(features.FEATURE_NAMES))
    assert meta["trades"] == len(chosen) and meta["first_trade_id"] == chosen[0][1]
    assert meta["last_trade_id"] == chosen[-1][1]
    assert meta["feature_rows"] == int(np.isfinite(X).all(axis=1).sum()) > 0
    assert meta["data_end"] == end.isoformat() and meta["feature_names"][0] == "z_1"
    assert start > T0  # the window really cut the tape


async def test_train_command_with_too_few_rows_exits_1(settings, pg_dsn, capsys):
    await insert_trades(pg_dsn, walk_rows(100))
    code = await asyncio.to_thread(train_cli.main, settings, None)
    assert code == 1
    assert "too few rows" in capsys.readouterr().err


def _served(result) -> ServedModel:
    return ServedModel(result.forest, result.feature_names, result.threshold, "test", "1",
                       "now", result.train_stats)


async def test_worker_process_is_ended_mid_task(make_settings):
    import time

    from blink.model import worker as model_worker

    process = model_worker.spawn(make_settings())
    pid = await asyncio.wrap_future(process.submit(os.getpid))  # the worker is up
    assert pid != os.getpid()
    busy = asyncio.wrap_future(process.submit(time.sleep, 60))
    await asyncio.sleep(0.2)  # the sleep has started
    [child] = process._processes.values()
    model_worker.stop(process)
    await asyncio.to_thread(child.join, 20)
    assert not child.is_alive()
    with pytest.raises(BaseException):  # noqa: B017 - cancelled or broken: either way, ended
        await busy
