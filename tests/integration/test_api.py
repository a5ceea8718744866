"""The HTTP API over the real app factory and a real PostgreSQL: contracts, validation, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

import blink.web
from blink.runtime import keys
from tests.support.trades import T0
from tests.support.web import FakeModel, fill_latest, sample, start_client, web_app


@pytest.fixture
def make_client(pg_dsn, make_settings, aiohttp_client):
    return lambda model=True, **overrides: start_client(
        aiohttp_client, make_settings(pg_dsn=pg_dsn, **overrides), model)


ROW = {"ret_1s": 0.1, "ret_5s": -0.2, "vol_60s": 0.3, "z_30s": 0.4}
API = {"path": "api", "product": "BTC-USD"}  # the default product's API predictions


# ------------------------------------------------------------------ GET /score
async def test_score_get_not_ready_then_ready(make_client):
    app, client = await make_client()
    r = await client.get("/score")
    assert r.status == 200
    assert await r.json() == {"ready": False, "reason": "no_features", "product_id": "BTC-USD"}
    fill_latest(app[keys.LATEST], anomaly=True)
    body = await (await client.get("/score")).json()
    assert body["ready"] is True and body["anomaly"] is True
    assert body["score_raw"] == -0.75 and body["threshold"] == -0.6
    assert body["model"] == "blink_iforest@production v7"
    assert body["as_of"] == T0.isoformat() and body["product_id"] == "BTC-USD"
    assert set(body["features"]) == set(FakeModel.feature_names)
    assert body["explanation"][0]["feature"] == "ret_5s"


# ------------------------------------------------------------------ POST /score
async def test_score_post_one_row_and_instances(make_client):
    app, client = await make_client()
    r = await client.post("/score", json={"features": ROW})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["score_raw"] == pytest.approx(-0.5) and body["anomaly"] is False
    assert body["model"] == FakeModel.label and body["threshold"] == -0.6
    rows = [ROW, {**ROW, "z_30s": 9.0}]
    body = await (await client.post("/score", json={"instances": rows})).json()
    assert [x["anomaly"] for x in body["results"]] == [False, True]
    assert body["results"][1]["score_raw"] == pytest.approx(-1.36)
    assert body["results"][1]["explanation"][0] == {"feature": "z_30s", "value": 9.0, "z": 9.0}
    assert sample(app, "blink_predictions_total", API) == 3
    assert sample(app, "blink_predict_latency_seconds_count") == 2


@pytest.mark.parametrize("payload, error, field, row", [
    ({"features": {k: v for k, v in ROW.items() if k != "vol_60s"}}, "missing feature",
     "vol_60s", 0),
    ({"instances": [ROW, {**ROW, "bogus": 1}]}, "unknown feature", "bogus", 1),
    ({"instances": [ROW, ROW, {**ROW, "ret_1s": "0.1"}]}, "not a number", "ret_1s", 2),
    ({"features": {**ROW, "ret_5s": True}}, "not a number", "ret_5s", 0),
    ({"features": {**ROW, "ret_5s": None}}, "not a number", "ret_5s", 0),
    ({"instances": [ROW, 3]}, "row must be an object of feature values", "instances", 1),
])
async def test_score_post_validation_names_field_and_row(make_client, payload, error, field,
                                                          row):
    app, client = await make_client()
    r = await client.post("/score", json=payload)
    assert r.status == 400
    body = await r.json()
    assert (body["error"], body["field"], body["row"]) == (error, field, row)
    assert app[keys.MODEL].served.calls == 0  # nothing scored
    assert sample(app, "blink_predictions_total", API) == 0
    assert sample(app, "blink_http_errors_total", {"status": "400"}) == 1


@pytest.mark.parametrize("text", [
    '{"features": {"ret_1s": NaN, "ret_5s": 0, "vol_60s": 0, "z_30s": 0}}',
    '{"instances": [{"ret_1s": 0, "ret_5s": 0, "vol_60s": 0, "z_30s": 0},'
    ' {"ret_1s": 1e999, "ret_5s": 0, "vol_60s": 0, "z_30s": 0}]}',
    '{"features": {"ret_1s": -Infinity, "ret_5s": 0, "vol_60s": 0, "z_30s": 0}}',
    '{"features": {"ret_1s": ' + "9" * 400 + ', "ret_5s": 0, "vol_60s": 0, "z_30s": 0}}',
])
async def test_score_post_rejects_non_finite(make_client, text):
    _, client = await make_client()
    r = await client.post("/score", data=text, headers={"Content-Type": "application/json"})
    body = await r.json()
    assert r.status == 400 and body["error"] == "not a finite number"
    assert body["field"] == "ret_1s" and body["row"] in (0, 1)


@pytest.mark.parametrize("text, why", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "exactly one of"),
    ('{"features": {}, "instances": []}', "exactly one of"),
    ('{"instances": []}', "non-empty"),
    ('{"instances": {"a": 1}}', "non-empty"),
    ("", "invalid JSON"),
])
async def test_score_post_bad_bodies(make_client, text, why):
    _, client = await make_client()
    r = await client.post("/score", data=text, headers={"Content-Type": "application/json"})
    assert r.status == 400 and why in (await r.json())["error"]


async def test_score_post_too_large(make_client):
    app, client = await make_client(max_body_bytes=2000, max_score_rows=5)
    r = await client.post("/score", json={"instances": [ROW] * 6})
    assert r.status == 413 and (await r.json())["max_rows"] == 5
    r = await client.post("/score", data=b'{"features": {' + b" " * 3000 + b"}}")
    body = await r.json()
    assert r.status == 413 and body["status"] == 413
    assert sample(app, "blink_http_errors_total", {"status": "413"}) == 2


async def test_score_post_without_model_is_503(make_client):
    _, client = await make_client(model=False)
    r = await client.post("/score", json={"features": ROW})
    assert r.status == 503
    body = await r.json()
    assert body["reason"] == "no_model" and body["error"] == "no model"


# ------------------------------------------------------------------ errors, metrics, spec
async def test_unknown_route_and_method_are_json(make_client):
    app, client = await make_client()
    r = await client.get("/nope")
    assert r.status == 404 and (await r.json())["error"] == "not found"
    r = await client.delete("/score")
    body = await r.json()
    assert r.status == 405 and "POST" in body["allow"]
    assert sample(app, "blink_http_errors_total", {"status": "404"}) == 1
    assert sample(app, "blink_http_errors_total", {"status": "405"}) == 1


async def test_metrics_route(make_client):
    app, client = await make_client()
    fill_latest(app[keys.LATEST])
    await client.post("/score", json={"instances": [ROW] * 4})
    await client.post("/score", json={"features": {}})  # a 400
    r = await client.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"] == CONTENT_TYPE_LATEST  # not "application/octet-stream"
    text = await r.text()
    for name in ("blink_predictions_total", "blink_predict_latency_seconds_bucket",
                 "blink_anomalies_total", "blink_features_age_seconds", "blink_feed_lag_seconds",
                 "blink_model_info", "blink_http_errors_total", "blink_trades_ingested_total",
                 "blink_training_runs_total", "blink_writer_queue_depth"):
        assert name in text, name
    assert 'blink_predictions_total{path="api",product="BTC-USD"} 4.0' in text
    assert 'blink_model_info{product="BTC-USD",version="7"} 1.0' in text
    assert 'blink_http_errors_total{status="400"} 1.0' in text
    assert 0 <= sample(app, "blink_features_age_seconds", {"product": "BTC-USD"}) < 60


def app_routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method == "HEAD":
            continue  # the static directory, and the HEAD twin of each GET
        out.add((path, route.method.lower()))
    return out


async def test_openapi_lists_every_route(make_client):
    app, client = await make_client()
    r = await client.get("/openapi.json")
    spec = await r.json()
    assert spec["openapi"].startswith("3.")
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert documented == app_routes(app)
    on_disk = json.loads((Path(blink.web.__file__).parent / "openapi.json").read_text())
    assert on_disk == spec


async def test_score_post_through_the_detector_counts_once(pg_dsn, make_settings,
                                                          aiohttp_client):
    from blink.detect.detector import Detector

    settings = make_settings(pg_dsn=pg_dsn)
    app = web_app(settings)
    detector = Detector(settings, app[keys.LATEST], app[keys.METRICS], app[keys.EVENTS])
    app[keys.DETECTOR] = detector
    client = await aiohttp_client(app)
    r = await client.post("/score", json={"features": ROW})
    assert r.status == 503  # neither the detector nor the slot has a model
    model = FakeModel()
    detector.set_model(model)
    r = await client.post("/score", json={"instances": [ROW] * 3})
    assert r.status == 200 and len((await r.json())["results"]) == 3
    assert model.calls == 1
    assert sample(app, "blink_predictions_total", API) == 3  # counted once
    assert sample(app, "blink_predict_latency_seconds_count") == 1
