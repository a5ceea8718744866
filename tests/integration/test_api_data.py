"""GET /demo/data and GET /api/anomalies over a real PostgreSQL: contract, downsampling in
the database, feed status, paging and validation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blink.runtime import keys
from blink.store import reads as queries
from tests.support.trades import T0
from tests.support.web import fill_latest, insert_event, insert_features, start_client


@pytest.fixture
def make_client(pg_dsn, make_settings, aiohttp_client):
    return lambda model=True, **overrides: start_client(
        aiohttp_client, make_settings(pg_dsn=pg_dsn, **overrides), model)


# ------------------------------------------------------------------ /demo/data
async def test_demo_data_contract(make_client):
    app, client = await make_client()
    fill_latest(app[keys.LATEST])
    app[keys.LATEST].labels = [{"kind": "jump", "start": (T0 - timedelta(minutes=3)).isoformat(),
                                "end": (T0 - timedelta(minutes=2)).isoformat()},
                               {"kind": "old", "start": "2020-01-01T00:00:00+00:00",
                                "end": "2020-01-01T00:01:00+00:00"}]
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", T0, 600, anomalous=(30, 31))
        await insert_features(conn, "ETH-USD", T0 + timedelta(hours=1), 10)  # other product
        await insert_event(conn, "BTC-USD", T0 - timedelta(seconds=32))
        await insert_event(conn, "BTC-USD", T0 - timedelta(hours=2))  # out of range
    r = await client.get("/demo/data?minutes=5")
    assert r.status == 200
    d = await r.json()
    assert len(d["times"]) == len(d["prices"]) == len(d["anomaly"]) == len(d["score"]) \
        == len(d["score_raw"]) == 300
    assert d["end"] == T0.isoformat() and d["times"][-1] == T0.isoformat()
    assert d["times"] == sorted(d["times"])
    assert sum(d["anomaly"]) == 2 and d["score"].count(-1) == 2 and d["score"].count(1) == 298
    assert min(d["score_raw"]) == pytest.approx(-0.72)
    assert d["threshold"] == -0.6 and d["trade_rate"] == 7.5 and d["source"] == "coinbase"
    assert [e["points"] for e in d["events"]] == [3]
    assert d["events"][0]["explanation"][0]["feature"] == "ret_5s"
    assert [lb["kind"] for lb in d["labels"]] == ["jump"]
    assert d["status"]["state"] == "normal" and d["status"]["source_label"] == "Live"
    assert d["model"]["version"] == "7" and d["model"]["trained_at"] == T0.isoformat()


async def test_demo_data_downsamples_in_postgres(make_client):
    app, client = await make_client()
    async with app[keys.POOL].acquire() as conn:
        await conn.execute(
            "INSERT INTO features (product_id, time, trade_id, price, vector, score_raw, anomaly)"
            " SELECT 'BTC-USD', $1::timestamptz - make_interval(secs => g), g, 100 + g % 7,"
            " '{}'::jsonb, -(g % 100)::float, g = 5000 FROM generate_series(0, 3 * 3600 - 1) g",
            T0)
    d = await (await client.get("/demo/data?minutes=180")).json()
    assert 1000 < len(d["times"]) <= queries.MAX_POINTS
    assert d["bin_seconds"] == pytest.approx((3 * 3600 - 1) / (queries.MAX_POINTS - 1))
    young = await (await client.get("/demo/data?minutes=1440")).json()  # 3 h of data in 24 h
    assert young["bin_seconds"] == d["bin_seconds"] and len(young["times"]) == len(d["times"])
    assert sum(d["anomaly"]) == 1  # the one flagged row survives downsampling
    assert min(d["score_raw"]) == -99  # the most anomalous score of each bucket


async def test_demo_data_empty_and_validation(make_client):
    _, client = await make_client()
    d = await (await client.get("/demo/data")).json()
    assert d["times"] == [] and d["events"] == [] and d["minutes"] == 60
    assert d["status"]["state"] == "warming_up"
    for bad in ("0", "1441", "abc", "1.5", "-3"):
        r = await client.get(f"/demo/data?minutes={bad}")
        assert r.status == 400, bad
        assert (await r.json())["field"] == "minutes"


async def test_demo_data_feed_down(make_client):
    app, client = await make_client()
    fill_latest(app[keys.LATEST])
    app[keys.HEALTH]["coinbase"].failure(ConnectionResetError("1006"))
    status = (await (await client.get("/demo/data")).json())["status"]
    assert status["state"] == "feed_down" and "1006" in status["feed_error"]
    app[keys.HEALTH]["coinbase"].success()
    app[keys.LATEST].updated_wall -= 3600  # an hour without a trade while "connected"
    assert (await (await client.get("/demo/data")).json())["status"]["state"] == "feed_down"


# ------------------------------------------------------------------ /api/anomalies
async def test_anomalies_paging_and_validation(make_client):
    app, client = await make_client()
    async with app[keys.POOL].acquire() as conn:
        ids = [await insert_event(conn, "BTC-USD", T0 + timedelta(minutes=k)) for k in range(5)]
    body = await (await client.get("/api/anomalies?limit=2")).json()
    assert [e["id"] for e in body["anomalies"]] == [ids[4], ids[3]]
    page2 = await (await client.get("/api/anomalies", params={
        "limit": 2, "before": body["next_before"]})).json()
    assert [e["id"] for e in page2["anomalies"]] == [ids[2], ids[1]]
    since = (T0 + timedelta(minutes=3)).isoformat()
    body = await (await client.get("/api/anomalies", params={"since": since})).json()
    assert [e["id"] for e in body["anomalies"]] == [ids[4], ids[3]]
    assert body["next_before"] is None
    naive = await (await client.get("/api/anomalies?since=2026-01-05T12:03:00")).json()
    assert len(naive["anomalies"]) == 2  # a time without offset is UTC
    for query in ("limit=0", "limit=501", "limit=x", "since=yesterday", "before=12:00"):
        r = await client.get(f"/api/anomalies?{query}")
        assert r.status == 400, query
        assert (await r.json())["field"] == query.split("=")[0]
