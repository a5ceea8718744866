"""Several products in one Blink, through the real app on the synthetic source (fast): each
product scored by its own model (its own registered name and alias), the API per product and
its 404, Redis keys and Prometheus series per product, the market context on each anomaly,
webhook alerts naming the product; the first product keeps the single-product contracts."""

from __future__ import annotations

import dataclasses
import json

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from blink.features import FEATURE_NAMES
from blink.runtime import keys
from blink.service.app import create_app
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")


@pytest.fixture
async def hooks(aiohttp_server):
    """A webhook receiver: (the alerts received, its URL)."""
    got: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    return got, str(server.make_url("/hook"))


@pytest.mark.parametrize("n", [2, 3])
async def test_every_product_scored_by_its_own_model(n, pg_dsn, redis_url, hooks, ml_settings,
                                                     aiohttp_client):
    # (aiohttp_client last: the app is cleaned up before the database and Redis go)
    url, prefix = redis_url
    alerts, hook = hooks
    products = PRODUCTS[:n]
    settings = ml_settings(pg_dsn=pg_dsn, pairs=",".join(products), source="synthetic",
                           speed=30, bootstrap_hours=0.5, train_min_rows=600,
                           registry_poll_seconds=1, retrain_seconds=360_000,
                           max_holdout_rate_factor=1000,  # 30 min of history: promote
                           redis_url=url, redis_prefix=prefix,
                           alert_webhooks=hook)
    app = create_app(settings)
    client = await aiohttp_client(app)
    latests = app[keys.LATESTS]
    assert list(latests) == list(products) and app[keys.LATEST] is latests[products[0]]
    await wait_until(lambda: all(lt.score_raw is not None for lt in latests.values()),
                     "every product scored", limit=240, step=0.2)

    # each product: its own detector, model slot and registered model
    name = settings.model_name
    want = {p: f"{name}_synthetic" if i == 0 else f"{name}-{p}_synthetic"
            for i, p in enumerate(products)}
    # a poll between a run's logging and its alias falls back to the newest passing run
    # ("run:<id>", the same model): the next poll (1 s) serves the alias
    await wait_until(lambda: all(app[keys.MODELS][p].label == f"{want[p]}@production v1"
                                 for p in products), "every product on its alias", limit=60)
    for p in products:
        body = await (await client.get(f"/score?product={p}")).json()
        assert body["ready"] is True and body["product_id"] == p
        assert body["model"] == f"{want[p]}@production v1"
        assert app[keys.DETECTORS][p].model.label == app[keys.MODELS][p].label == body["model"]
        assert latests[p].price is not None and latests[p].as_of is not None
    assert (await (await client.get("/score")).json())["product_id"] == products[0]
    assert len({latests[p].price for p in products}) == n  # their own streams

    # POST /score with a product: that product's model; unknown products are 404s
    row = {f: 0.0 for f in FEATURE_NAMES}
    r = await client.post("/score", json={"features": row, "product": products[-1]})
    assert r.status == 200
    assert (await r.json())["model"] == f"{want[products[-1]]}@production v1"
    for path in ("/score?product=XRP-USD", "/demo/data?product=XRP-USD",
                 "/api/anomalies?product=XRP-USD"):
        r = await client.get(path)
        assert r.status == 404, path
        assert await r.json() == {"error": "unknown product 'XRP-USD'", "status": 404,
                                  "products": list(products)}
    r = await client.post("/score", json={"features": row, "product": "XRP-USD"})
    assert r.status == 404 and (await r.json())["products"] == list(products)

    # an anomaly on every product: stored, alerted, with the market context line. The first
    # models are fitted on 30 min of history, so their budget thresholds sit far in the tail;
    # each detector is served its own model with a threshold every score is below instead
    for p in products:
        detector = app[keys.DETECTORS][p]
        detector.set_model(dataclasses.replace(detector.model, threshold=0.0))

    async def every_product_alerted() -> bool:
        return {a["product_id"] for a in alerts if a["event"] == "anomaly_start"} \
            >= set(products)
    await wait_until(every_product_alerted, "an alert for every product", limit=120,
                     step=0.2)
    for a in alerts:
        assert a["product_id"] in products and f"on {a['product_id']} at" in a["text"]
        line = [e for e in a["explanation"] if e.get("feature") == "market"]
        assert len(line) == 1 and line[0]["of"] == n and a["product_id"] in line[0]["moving"]
        assert a["market"] == line[0]["text"] and a["market"] in a["text"]
    for p in products:
        async def stored(p=p) -> bool:
            body = await (await client.get(f"/api/anomalies?product={p}")).json()
            return bool(body["anomalies"])
        await wait_until(stored, f"{p}'s anomaly events stored", step=0.5)
        body = await (await client.get(f"/api/anomalies?product={p}")).json()
        assert body["product_id"] == p
        assert all(any(e.get("feature") == "market" for e in ev["explanation"])
                   for ev in body["anomalies"])
        data = await (await client.get(f"/demo/data?product={p}&minutes=60")).json()
        assert data["product_id"] == p and len(data["times"]) > 60
        assert data["model"]["label"] == f"{want[p]}@production v1"

    # Redis: latest_features holds the first product, latest_features:<p> each one
    check = aioredis.from_url(url)
    try:
        async def mirrored() -> bool:
            return all([await check.hget(f"{prefix}latest_features:{p}", "product_id")
                        == p.encode() for p in products])
        await wait_until(mirrored, "every product's hash in Redis", step=0.2)
        first = await check.hget(f"{prefix}latest_features", "product_id")
        assert first == products[0].encode()
        entries = await check.xrange(f"{prefix}anomalies")
        assert {f[b"product_id"].decode() for _, f in entries} >= set(products)
        for _, f in entries:
            assert json.loads(f[b"event"])["product_id"] == f[b"product_id"].decode()
    finally:
        await check.aclose()

    # Prometheus: a product label on each per-product series
    text = await (await client.get("/metrics")).text()
    for p in products:
        for series in (f'blink_model_info{{product="{p}",version="1"}} 1.0',
                       f'blink_predictions_total{{path="stream",product="{p}"}}',
                       f'blink_anomalies_total{{product="{p}"}}',
                       f'blink_score_raw{{product="{p}"}}',
                       f'blink_trade_rate{{product="{p}"}}',
                       f'blink_training_runs_total{{outcome="promoted",product="{p}"}} 1.0'):
            assert series in text, series
    # /readyz: the first product's, each other product's model and training on its own
    components = (await (await client.get("/readyz")).json())["components"]
    for i, p in enumerate(products):
        suffix = "" if i == 0 else f":{p}"
        assert components[f"model{suffix}"]["model"] == f"{want[p]}@production v1"
        assert components[f"training{suffix}"]["outcome"] == "promoted"
