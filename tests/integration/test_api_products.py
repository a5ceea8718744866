"""GET /api/products over the real app factory and a real PostgreSQL: one and several
products, the JSON shape, the sparkline's window and size, each product's last anomaly, the
token; and the dashboard page's `?product=` (kept by `/`, an unknown one sent back to /demo)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from blink.runtime import keys
from blink.web import api, products
from tests.support.overview import PAIRS, CalibratedModel, detectors, per_product
from tests.support.trades import T0
from tests.support.web import (
    BlinkTestServer,
    fill_latest,
    insert_event,
    insert_features,
    serve,
    web_app,
)

FIELDS = {"product_id", "state", "ready", "reason", "price", "as_of", "score_raw",
          "anomaly_score", "anomaly", "threshold", "model", "trade_rate", "last_anomaly",
          "spark"}
TOKEN = "tok-products-5Hq2"


@pytest.fixture
def make_app(pg_dsn, make_settings, aiohttp_client):
    """(app, client) over the real app factory; `prepare(app)` runs before it starts."""
    async def make(prepare=lambda app: None, **overrides):
        app = web_app(make_settings(pg_dsn=pg_dsn, **overrides))
        prepare(app)
        return app, await aiohttp_client(BlinkTestServer(app))
    return make


def spark_times(item) -> list[datetime]:
    return [datetime.fromisoformat(t) for t, _ in item["spark"]]


async def test_one_product(make_app):
    app, client = await make_app()
    serve(app, CalibratedModel())
    fill_latest(app[keys.LATEST])
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", T0, 3000, anomalous=(100, 101))  # 50 min
        await insert_event(conn, "BTC-USD", T0 - timedelta(hours=2), peak=-0.9)
        await insert_event(conn, "BTC-USD", T0 - timedelta(seconds=101))  # the newest
    r = await client.get("/api/products")
    assert r.status == 200
    body = await r.json()
    assert set(body) == {"products", "default", "market"}
    assert body["default"] == "BTC-USD" and body["market"] is None
    [item] = body["products"]
    assert set(item) == FIELDS
    assert item["product_id"] == "BTC-USD" and item["ready"] is True and item["reason"] is None
    assert item["state"] == "normal"
    assert item["price"] == 97_000.5 and item["as_of"] == T0.isoformat()
    assert item["score_raw"] == -0.45 and item["anomaly"] is False
    assert item["anomaly_score"] == pytest.approx(0.125)  # the served model's calibration
    assert item["threshold"] == -0.6 and item["trade_rate"] == 7.5
    assert item["model"] == "blink_iforest@production v7"
    assert item["last_anomaly"] == {
        "start": (T0 - timedelta(seconds=101)).isoformat(),
        "end": (T0 - timedelta(seconds=97)).isoformat(),
        "peak_score": -0.72, "explanation": "ret_5s +5.10σ"}
    # the last 30 min of event time before the newest row, in at most 120 buckets
    times = spark_times(item)
    assert 110 <= len(times) <= products.SPARK_POINTS
    assert times == sorted(times) and times[-1] == T0
    assert times[0] > T0 - timedelta(seconds=products.SPARK_SECONDS)
    assert times[0] <= T0 - timedelta(seconds=products.SPARK_SECONDS - 30)
    scores = [s for _, s in item["spark"]]
    assert min(scores) == -0.72  # each bucket's lowest score: the anomalous rows survive
    assert all(-0.51 < s < -0.39 for s in scores if s != -0.72)


async def test_several_products_in_order(make_app):
    def prepare(app):
        per_product(app)
        detectors(app, {"ETH-USD": CalibratedModel()})
    app, client = await make_app(prepare, pairs=PAIRS)
    serve(app, CalibratedModel())
    latests = app[keys.LATESTS]
    fill_latest(latests["BTC-USD"])
    fill_latest(latests["ETH-USD"], anomaly=True, as_of=T0 + timedelta(minutes=5))
    latests["ETH-USD"].price = 3_100.25
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", T0, 600)
        await insert_features(conn, "ETH-USD", T0 + timedelta(hours=3), 60, anomalous=(3,))
        await insert_event(conn, "ETH-USD", T0 + timedelta(hours=3) - timedelta(seconds=4))
        await conn.execute(  # an explanation in the model's own words
            "INSERT INTO anomalies (product_id, start_time, end_time, peak_time, peak_score,"
            " threshold, explanation) VALUES ('BTC-USD', $1, $1, $1, -0.8, -0.6, $2::jsonb)",
            T0 - timedelta(minutes=1), json.dumps([
                {"feature": "ret_300", "value": -9.0, "text": "5-min return −9.0σ"},
                {"feature": "vol_60", "value": 3.2, "text": "1-min volatility 3.2× its usual"}]))
    body = await (await client.get("/api/products")).json()
    assert [p["product_id"] for p in body["products"]] == ["BTC-USD", "ETH-USD", "SOL-USD"]
    assert body["default"] == "BTC-USD"
    btc, eth, sol = body["products"]
    assert all(set(p) == FIELDS for p in body["products"])
    assert btc["last_anomaly"]["explanation"] == "5-min return −9.0σ"
    assert eth["ready"] is True and eth["anomaly"] is True and eth["price"] == 3_100.25
    assert eth["anomaly_score"] == pytest.approx(0.875)  # its own detector's model
    assert eth["last_anomaly"]["peak_score"] == -0.72
    assert eth["as_of"] == (T0 + timedelta(minutes=5)).isoformat()
    # each product's sparkline ends at its own newest row, with its own rows only
    assert spark_times(btc)[-1] == T0 and spark_times(eth)[-1] == T0 + timedelta(hours=3)
    # fixed ~15 s buckets (30 min / 119), whatever the data present: 60 s in 4-5, 600 s in 40-41
    assert 4 <= len(eth["spark"]) <= 5 and min(s for _, s in eth["spark"]) == -0.72
    assert 40 <= len(btc["spark"]) <= 41
    assert (btc["state"], eth["state"]) == ("normal", "anomaly")
    assert sol == {"product_id": "SOL-USD", "state": "warming_up", "ready": False,
                   "reason": "no_features",
                   "price": None, "as_of": None, "score_raw": None, "anomaly_score": None,
                   "anomaly": False, "threshold": None, "model": None, "trade_rate": 0.0,
                   "last_anomaly": None, "spark": []}


async def test_not_ready_product_and_no_model(make_app):
    app, client = await make_app(per_product, pairs="BTC-USD,ETH-USD")
    fill_latest(app[keys.LATESTS]["ETH-USD"], ready=False)
    body = await (await client.get("/api/products")).json()
    btc, eth = body["products"]
    assert (btc["ready"], btc["reason"]) == (False, "no_features")
    assert (eth["ready"], eth["reason"], eth["price"]) == (False, "no_model", 97_000.5)
    assert eth["anomaly_score"] is None and eth["threshold"] is None  # no model anywhere


async def test_token(make_app):
    app, client = await make_app(per_product, pairs="BTC-USD,ETH-USD", api_token=TOKEN)
    r = await client.get("/api/products")
    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
    for wrong in ("Bearer nope", f"Basic {TOKEN}", TOKEN):
        assert (await client.get("/api/products", headers={"Authorization": wrong})).status \
            == 401
    assert (await client.get(f"/api/products?token={TOKEN}")).status == 401  # stream only
    r = await client.get("/api/products", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200 and len((await r.json())["products"]) == 2


async def test_dashboard_page_keeps_the_product(make_app):
    app, client = await make_app(per_product, pairs=PAIRS)
    r = await client.get("/?product=ETH-USD", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/demo?product=ETH-USD"
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/demo"
    html = await (await client.get("/demo?product=ETH-USD")).text()
    assert 'data-pair="ETH-USD"' in html and "<title>Blink · ETH-USD</title>" in html
    assert html.count('class="card"') == 3 and 'data-products="BTC-USD,ETH-USD,SOL-USD"' in html
    assert html.index('data-product="BTC-USD"') < html.index('data-product="SOL-USD"')
    current = html.index('aria-current="page"')
    assert html.rindex('data-product="', 0, current) == html.index('data-product="ETH-USD"')
    for bad in ("DOGE-USD", "eth-usd", "<b>"):
        r = await client.get("/demo", params={"product": bad}, allow_redirects=False)
        assert r.status == 302 and r.headers["Location"] == "/demo", bad
    assert 'data-pair="BTC-USD"' in await (await client.get("/demo")).text()


async def test_dashboard_page_with_one_product_has_no_overview(make_app):
    _, client = await make_app()
    html = await (await client.get("/demo")).text()
    assert 'id="overview"' not in html and 'class="card"' not in html
    assert 'data-pair="BTC-USD"' in html


async def test_market_context(make_app):
    app, client = await make_app(per_product, pairs="BTC-USD,ETH-USD,SOL-USD")
    latests = app[keys.LATESTS]
    for p, z in (("BTC-USD", 4.2), ("ETH-USD", -3.5), ("SOL-USD", 0.4)):
        fill_latest(latests[p])
        latests[p].features = {"z_5": z, "z_30": 0.1, "z_300": 0.2}
    market = (await (await client.get("/api/products")).json())["market"]
    assert market["moving"] == ["BTC-USD", "ETH-USD"] and market["of"] == 3  # |z| >= 3
    assert datetime.fromisoformat(market["as_of"]) == T0
    latests["ETH-USD"].as_of = T0 + timedelta(minutes=5)  # BTC's move is not concurrent
    market = (await (await client.get("/api/products")).json())["market"]
    assert market["moving"] == ["ETH-USD"]


async def test_a_product_whose_live_trades_stopped_is_feed_down(make_app):
    """One websocket carries every product: a product can go quiet while the feed is up."""
    app, client = await make_app(per_product, pairs="BTC-USD,ETH-USD")
    for product in ("BTC-USD", "ETH-USD"):
        fill_latest(app[keys.LATESTS][product])
        app[keys.LATESTS][product].source = "coinbase"
    app[keys.LATESTS]["ETH-USD"].updated_wall -= api.FEED_STALE_SECONDS + 5
    body = await (await client.get("/api/products")).json()
    assert [p["state"] for p in body["products"]] == ["normal", "feed_down"]
    single = await (await client.get("/demo/data?product=ETH-USD&minutes=5")).json()
    assert single["status"]["state"] == "feed_down"  # the single view's pill says the same
