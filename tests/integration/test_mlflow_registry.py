"""MLflow on a real sqlite store: log, register, promote, watch, fall back, survive an outage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from aiohttp import web

from blink import features
from blink.cli import train as train_cli
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES
from blink.model import registry, tracking
from blink.model.served import ServedModel
from blink.runtime import keys
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.service import retrain, watcher
from blink.store import db
from tests.support.mlflow_store import META
from tests.support.mlflow_store import fit_small as _fit
from tests.support.trades import walk_rows
from tests.support.training import feature_rows, insert_trades
from tests.support.waiting import wait_until


class FakeDetector:
    def __init__(self) -> None:
        self.models = []

    def set_model(self, served) -> None:
        self.models.append(served)


async def executor_ctx(app):
    with ThreadPoolExecutor(2) as pool:
        app[keys.EXECUTOR] = pool
        yield


def service_app(settings) -> web.Application:
    app = web.Application()
    app[keys.SETTINGS], app[keys.HEALTH], app[keys.METRICS] = settings, Health(), Metrics()
    app[keys.LATEST], app[keys.DETECTOR] = Latest(settings.pair), FakeDetector()
    return app


@pytest.fixture
async def watch_app(ml_settings):
    """An app holding what the watcher needs (not started: tests drive `check` directly)."""
    executor = ThreadPoolExecutor(2)
    app = web.Application()
    app[keys.SETTINGS] = ml_settings()
    app[keys.HEALTH], app[keys.METRICS] = Health(), Metrics()
    app[keys.EXECUTOR], app[keys.DETECTOR] = executor, FakeDetector()
    app[keys.MODEL] = registry.ModelSlot()
    app[keys.MODEL_RELOAD] = asyncio.Event()
    yield app
    executor.shutdown(wait=True)


async def test_log_register_promote_and_watcher_serves_it(ml_settings, aiohttp_client):
    from mlflow import MlflowClient

    settings = ml_settings()
    result = _fit(settings)
    info = await asyncio.to_thread(tracking.log_to_mlflow, result, settings, META)
    assert info.promoted and info.version == "1" and info.label.endswith("@production v1")
    c = MlflowClient(settings.mlflow_uri)
    assert str(c.get_model_version_by_alias(settings.model_name, "production").version) == "1"
    run = c.get_run(info.run_id)
    assert run.data.params["n_estimators"] == "25"
    assert run.data.params["feature_names"] == ",".join(FEATURE_NAMES)
    assert run.data.params["data_end"] == META["data_end"]
    assert run.data.params["window_z_1"] == "1.0"
    assert run.data.params["feature_engine"] == features.ENGINE
    assert run.data.params["alerts_per_day"] == str(settings.alerts_per_day)
    assert run.data.metrics["holdout_events"] == result.metrics["holdout_events"]
    assert run.data.metrics["threshold"] == result.threshold
    assert "fit_seconds" in run.data.metrics and "score_q0.01" in run.data.metrics
    assert run.data.tags["blink.promote_ok"] == "true"

    # the real watcher, in a started app, picks the alias up and swaps it into the detector
    app = service_app(settings)
    app.cleanup_ctx.extend([executor_ctx, watcher.watcher_ctx])
    await aiohttp_client(app)
    await wait_until(lambda: app[keys.MODEL].served is not None, "a model served", limit=30)
    served = app[keys.MODEL].served
    assert served is not None and app[keys.DETECTOR].models == [served]
    assert served.label == f"{settings.model_name}@production v1" and served.version == "1"
    assert served.threshold == result.threshold
    assert served.train_stats == result.train_stats  # tail tables survive the registry
    X = feature_rows(500, seed=5)
    # what serves is the forest the fit grew, bit for bit, and the fit's own score_raw
    for name, value in result.forest.arrays().items():
        np.testing.assert_array_equal(served.forest.arrays()[name], value, err_msg=name)
    fitted = ServedModel(result.forest, result.feature_names, result.threshold, "fit", "0", "",
                         result.train_stats)
    assert served.score(X).tolist() == fitted.score(X).tolist()
    # the logged pyfunc predicts the same forest's score_samples (where Blink is installed)
    import mlflow.pyfunc

    pyfunc = await asyncio.to_thread(mlflow.pyfunc.load_model, info.model_uri)
    frame = pd.DataFrame(X, columns=list(FEATURE_NAMES))
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(frame)),
                                  result.forest.score_samples(X))
    assert (served.score(X) <= 0).all()
    assert app[keys.METRICS].model_reloads.labels(product="BTC-USD")._value.get() == 1
    assert app[keys.HEALTH]["model"].ok is True
    info_metric = app[keys.METRICS].model_info.collect()[0].samples
    assert [(s.labels["product"], s.labels["version"], s.value) for s in info_metric] == [
        ("BTC-USD", "1", 1.0)]


async def test_not_promoted_keeps_the_alias(ml_settings, watch_app):
    from mlflow import MlflowClient

    settings = ml_settings()
    good = await asyncio.to_thread(tracking.log_to_mlflow, _fit(settings), settings, META)
    assert await watcher.check(watch_app) is True
    X = feature_rows(3000)
    X[-300::3] += 6.0  # the recent slice: anomalies every third grid step (60 s), each its
    bad_fit = _fit(replace(settings, feature_scale=60.0), X)  # own event: above the limit
    assert not bad_fit.promote_ok
    bad = await asyncio.to_thread(tracking.log_to_mlflow, bad_fit, settings, META)
    assert (good.version, bad.version, bad.promoted) == ("1", "2", False)
    c = MlflowClient(settings.mlflow_uri)
    assert str(c.get_model_version_by_alias(settings.model_name, "production").version) == "1"
    tags = c.get_model_version(settings.model_name, "2").tags
    assert "held-out events" in tags["blink.not_promoted"]
    assert await watcher.check(watch_app) is False  # still v1: nothing reloaded
    assert watch_app[keys.MODEL].label.endswith("@production v1")
    assert watch_app[keys.METRICS].model_reloads.labels(product="BTC-USD")._value.get() == 1


async def test_fallback_to_newest_passing_run_without_alias(ml_settings, watch_app):
    settings = ml_settings(pair="FALLBACK-USD")
    meta = {**META, "product_id": "FALLBACK-USD"}
    await asyncio.to_thread(tracking.log_to_mlflow, _fit(settings), settings, meta)
    newest = await asyncio.to_thread(
        tracking.log_to_mlflow, _fit(replace(settings, random_state=3)), settings, meta)
    orphan = replace(settings, model_name=settings.model_name + "_never_registered")
    resolved = await asyncio.to_thread(registry.resolve, orphan)
    assert resolved.label == f"run:{newest.run_id}" and resolved.version is None
    watch_app[keys.SETTINGS] = orphan
    assert await watcher.check(watch_app) is True
    assert watch_app[keys.MODEL].served.label == f"run:{newest.run_id}"
    for other in (replace(orphan, pair="NOTHING-USD"), replace(orphan, source="synthetic")):
        assert await asyncio.to_thread(registry.resolve, other) is None


def test_replayed_and_synthetic_models_have_their_own_name(ml_settings):
    live = ml_settings()
    assert tracking.registered_name(live) == live.model_name
    synthetic = ml_settings(source="synthetic")
    assert tracking.registered_name(synthetic) == live.model_name + "_synthetic"


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9", "sqlite:////proc/blink/mlflow.db"])
async def test_store_unreachable_keeps_the_current_model(ml_settings, watch_app, monkeypatch,
                                                         uri):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    settings = ml_settings()
    await asyncio.to_thread(tracking.log_to_mlflow, _fit(settings), settings, META)
    assert await watcher.check(watch_app) is True
    served, health = watch_app[keys.MODEL].served, watch_app[keys.HEALTH]["model"]
    watch_app[keys.SETTINGS] = replace(settings, mlflow_tracking_uri=uri)
    task = asyncio.create_task(watcher._watch(watch_app))
    try:
        for _ in range(400):
            if health.ok is False:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert health.ok is False and health.last_error
    assert watch_app[keys.MODEL].served is served
    assert watch_app[keys.DETECTOR].models == [served]


async def test_train_command_then_service_retrain_and_reload(ml_settings, pg_dsn,
                                                             aiohttp_client, capsys):
    rows = walk_rows(2500)
    await insert_trades(pg_dsn, rows)
    settings = ml_settings(pg_dsn=pg_dsn, train_hours=1.0)
    assert await asyncio.to_thread(train_cli.main, settings, None) == 0
    assert f"registered {settings.model_name} v1" in capsys.readouterr().out

    app = service_app(settings)
    app[keys.POOL] = pool = await db.create_pool(pg_dsn)
    app[keys.LATEST].as_of = rows[-1][2]  # event time: the newest trade
    app.cleanup_ctx.extend([executor_ctx, watcher.watcher_ctx, retrain.trainer_ctx])
    try:
        await aiohttp_client(app)
        # the watcher serves v1 at start-up; the first scheduled retrain promotes v2 and
        # makes the watcher re-resolve at once (the poll interval is 30 s)
        await wait_until(lambda: app[keys.MODEL].label == f"{settings.model_name}@production v2",
                         "v2 served", limit=30)
        assert [m.version for m in app[keys.DETECTOR].models] == ["1", "2"]
        metrics, health = app[keys.METRICS], app[keys.HEALTH]["training"]
        assert metrics.training_runs.labels(outcome="promoted", product="BTC-USD")._value.get() == 1
        assert metrics.training_seconds._sum.get() > 0
        assert health.ok is True and health.detail["outcome"] == "promoted"
        assert health.detail["last_attempt"] == rows[-1][2].isoformat()
    finally:
        await pool.close()


async def test_retrain_with_mlflow_unreachable_is_counted_and_shown(ml_settings, pg_dsn,
                                                                    monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    rows = walk_rows(1500)
    await insert_trades(pg_dsn, rows)
    app = service_app(ml_settings(pg_dsn=pg_dsn, mlflow_tracking_uri="http://127.0.0.1:9"))
    app[keys.POOL] = pool = await db.create_pool(pg_dsn)
    try:
        with ThreadPoolExecutor(1) as executor:
            app[keys.EXECUTOR] = executor
            assert await retrain.attempt(app, rows[100][2]) == "too_few_rows"
            assert "warm feature rows" in app[keys.HEALTH]["training"].detail["waiting"]
            assert await retrain.attempt(app, rows[-1][2]) == "error"
    finally:
        await pool.close()
    health = app[keys.HEALTH]["training"]
    assert health.ok is False and "127.0.0.1:9" in health.last_error
    runs = app[keys.METRICS].training_runs
    assert runs.labels(outcome="error", product="BTC-USD")._value.get() == 1


def test_no_git_warning_where_there_is_no_git(tmp_path):
    """The image has no git: MLflow's git lookup must be quiet (it warned 17 lines a log)."""
    code = ("import os; from blink import config; from blink.model import tracking; "
            "tracking.client(config.load(env={'BLINK_DATA_DIR': os.environ['D']})); "
            "from mlflow.utils.git_utils import get_git_commit; print(get_git_commit('.'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "BLINK_", "MLFLOW_"))}
    env.update(PATH=str(tmp_path), D=str(tmp_path / "data"))  # no git on this PATH
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"  # no commit, and no word about it
    assert "git" not in r.stderr.lower(), r.stderr


def test_retrains_are_staggered_over_the_interval(make_settings):
    s = make_settings(pairs="BTC-USD,ETH-USD,SOL-USD", retrain_seconds=3600)
    assert [retrain.stagger(s, p).total_seconds() for p in s.pairs] == [0, 1200, 2400]
    assert retrain.stagger(make_settings(), "BTC-USD").total_seconds() == 0


async def test_each_product_has_its_own_model_name_and_slot(ml_settings, watch_app):
    from mlflow import MlflowClient

    settings = ml_settings(pairs="BTC-USD,ETH-USD")
    watch_app[keys.SETTINGS] = settings
    watch_app[keys.MODELS] = slots = {p: registry.ModelSlot() for p in settings.pairs}
    watch_app[keys.MODEL] = slots["BTC-USD"]
    detectors = watch_app[keys.DETECTORS] = {p: FakeDetector() for p in settings.pairs}
    eth = settings.for_product("ETH-USD")
    assert eth.model_name == f"{settings.model_name}-ETH-USD"
    info = await asyncio.to_thread(tracking.log_to_mlflow, _fit(eth), eth,
                                   {**META, "product_id": "ETH-USD"})
    assert info.name == eth.model_name and info.promoted
    c = MlflowClient(settings.mlflow_uri)
    assert str(c.get_model_version_by_alias(eth.model_name, "production").version) == "1"
    # only ETH-USD has a model: it is swapped into ETH's slot and detector alone
    assert await watcher.check(watch_app, "ETH-USD") is True
    assert slots["ETH-USD"].label == f"{eth.model_name}@production v1"
    assert [m.label for m in detectors["ETH-USD"].models] == [slots["ETH-USD"].label]
    assert slots["BTC-USD"].served is None and detectors["BTC-USD"].models == []
    health = watch_app[keys.HEALTH]
    assert health["model:ETH-USD"].detail["model"] == slots["ETH-USD"].label
    info_metric = watch_app[keys.METRICS].model_info.collect()[0].samples
    assert [(s.labels["product"], s.labels["version"]) for s in info_metric] == [
        ("ETH-USD", "1")]
    assert watch_app[keys.METRICS].model_reloads.labels(product="ETH-USD")._value.get() == 1
