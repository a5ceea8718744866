"""The fake exchange with several products: one subscription for all, a `last_match` and a
heartbeat per product, its own tape and REST pages per product, faults on every product."""

from __future__ import annotations

import aiohttp

from tests.fakes import rest_url, serve_fake, ws_url
from tests.unit.test_fake_coinbase import frames

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")
SUB = {"type": "subscribe", "product_ids": list(PRODUCTS), "channels": ["matches", "heartbeat"]}


async def test_one_subscription_serves_every_product_with_its_own_tape(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, products=PRODUCTS, history=30,
                                    heartbeat_interval=0.05)
    assert fake.trades is fake.tapes["BTC-USD"] and set(fake.tapes) == set(PRODUCTS)
    prices = {p: fake.tapes[p][-1].price for p in PRODUCTS}
    assert prices["BTC-USD"] > 10 * prices["ETH-USD"] > 10 * prices["SOL-USD"]
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server)) as ws:
        await ws.send_json(SUB)
        sub, *lasts = await frames(ws, 4)
        assert {c["name"]: sorted(c["product_ids"]) for c in sub["channels"]} == {
            "matches": sorted(PRODUCTS), "heartbeat": sorted(PRODUCTS)}
        assert {m["product_id"]: (m["type"], m["trade_id"]) for m in lasts} == {
            p: ("last_match", fake.tapes[p][-1].trade_id) for p in PRODUCTS}
        base = fake.trades[-1].trade_id
        fake.drop = {base + 2}
        new = fake.emit(4)  # 4 per product, interleaved by time; id base+2 lost everywhere
        got = await frames(ws, 9)
        beats = await frames(ws, 3, skip=("match",))
    assert len(new) == 12 and [t.time for t in new] == sorted(t.time for t in new)
    for p in PRODUCTS:
        assert [m["trade_id"] for m in got if m["product_id"] == p] == [
            base + 1, base + 3, base + 4], p
    assert {b["product_id"]: b["last_trade_id"] for b in beats} == dict.fromkeys(
        PRODUCTS, base + 4)  # the newest generated, per product


async def test_rest_pages_per_product_and_the_request_log(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, products=PRODUCTS, history=30)
    async with aiohttp.ClientSession(headers={"User-Agent": "t"}) as s:
        for p in PRODUCTS:
            after = fake.tapes[p][-1].trade_id
            async with s.get(f"{rest_url(server)}/products/{p}/trades",
                             params={"after": after, "limit": 3}) as r:
                assert r.status == 200
                page = await r.json()
            want = fake.tapes[p][-4:-1][::-1]
            assert [(i["trade_id"], i["price"]) for i in page] == [
                (t.trade_id, format(t.price, "f")) for t in want]
        async with s.get(f"{rest_url(server)}/products/DOGE-USD/trades") as r:
            assert r.status == 404
    assert [pid for _, pid in fake.rest_log] == [*PRODUCTS, "DOGE-USD"]
