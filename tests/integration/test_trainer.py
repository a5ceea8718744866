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
from blink.model import trainer
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
    np.testing.assert_array_equal(a.model.score_samples(_frame(a, probe)),
                                  b.model.score_samples(_frame(b, probe)))
    other = trainer.fit(X, make_settings(train_min_rows=200, n_estimators=30, random_state=7))
    assert other.threshold != a.threshold


def test_threshold_rule_and_holdout(fit_settings):
    X = feature_rows(4000)
    r = trainer.fit(X, fit_settings)
    n_train = 4000 - round(4000 * fit_settings.holdout_fraction)
    assert r.metrics["rows_train"] == n_train and r.metrics["rows_holdout"] == 4000 - n_train
    assert r.model.n_features_in_ == X.shape[1]
    train_scores = r.model.score_samples(_frame(r, X[:n_train]))
    # the (1 - q) quantile of the training scores; anomalous strictly below it
    q = 1 - fit_settings.threshold_quantile
    assert r.threshold == pytest.approx(np.quantile(train_scores, q), abs=1e-15)
    rate = np.mean(train_scores < r.threshold)
    assert q - 2 / n_train <= rate <= np.ceil(q * n_train) / n_train
    assert r.metrics["train_anomaly_rate"] == pytest.approx(rate)
    assert r.metrics["score_q0.001"] <= r.metrics["score_q0.5"] < 0
    hold = r.model.score_samples(_frame(r, X[n_train:]))
    assert r.metrics["holdout_anomaly_rate"] == pytest.approx(np.mean(hold < r.threshold))
    assert r.promote_ok, r.reason
    assert set(r.train_stats) >= {"median", "scale", "score_quantiles"}
    assert r.params["n_estimators"] == 30 and r.params["random_state"] == 42


def test_nan_rows_dropped_and_too_few_rows(fit_settings):
    X = feature_rows(400)
    X[:150, 2] = np.nan  # windows still warming up
    X[200, 0] = np.inf
    with pytest.raises(trainer.TooFewRows, match="249 warm feature rows, need 250"):
        trainer.fit(X, replace(fit_settings, train_min_rows=250))
    r = trainer.fit(X, fit_settings)
    assert r.metrics["rows_train"] + r.metrics["rows_holdout"] == 249
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
    X[-300:] += 6.0  # the held-out, most recent slice looks nothing like the rest
    r = trainer.fit(X, fit_settings)
    assert r.metrics["holdout_anomaly_rate"] > 0.05
    assert not r.promote_ok and r.reason.startswith("held-out anomaly rate")
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
        s = replace(settings, train_hours=0.25)
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
    assert meta["data_end"] == end.isoformat() and meta["feature_names"][0] == "ret_1s"
    assert start > T0  # the window really cut the tape


async def test_train_command_with_too_few_rows_exits_1(settings, pg_dsn, capsys):
    await insert_trades(pg_dsn, walk_rows(100))
    code = await asyncio.to_thread(train_cli.main, settings, None)
    assert code == 1
    assert "too few rows" in capsys.readouterr().err


def _frame(result, X):
    import pandas as pd

    return pd.DataFrame(X, columns=list(result.feature_names))


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
