"""The fake Coinbase's REST side and trade generator behave as spec §5-6 says."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import aiohttp

from tests.fakes import rest_url, serve_fake
from tests.fakes.trades import TradeGen


def test_generated_trades_are_realistic():
    trades = TradeGen(seed=3, rate=7.0).trades(20_000)
    ids = [t.trade_id for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    same_time = sum(1 for a, b in zip(trades, trades[1:], strict=False) if a.time == b.time)
    assert same_time > 1000  # sweeps: fills sharing one timestamp
    gaps = [(b.time - a.time) for a, b in zip(trades, trades[1:], strict=False)]
    assert max(gaps) > timedelta(seconds=3)  # quiet spells
    assert all(g >= timedelta(0) for g in gaps)
    span = (trades[-1].time - trades[0].time).total_seconds()
    assert 2 < len(trades) / span < 30  # around the mean rate, intensity drifting
    sizes = sorted(t.size for t in trades)
    assert sizes[-1] / sizes[len(sizes) // 2] > 100  # heavy tail
    assert sizes[0] <= Decimal("0.00000009")  # dust
    assert len({-t.price.as_tuple().exponent for t in trades}) > 1  # varying decimals


async def test_rest_trades_paging_headers_and_errors(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=3000, rest_rate=1000, rest_burst=1000)
    url = f"{rest_url(server)}/products/BTC-USD/trades"
    first, newest = fake.trades[0].trade_id, fake.trades[-1].trade_id
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            page = await r.json()
            assert len(page) == 1000 and page[0]["trade_id"] == newest
            assert r.headers["CB-BEFORE"] == str(newest)
            assert r.headers["CB-AFTER"] == str(newest - 999)
        x = first + 1500
        async with s.get(url, params={"after": x, "limit": 100}) as r:
            page = await r.json()
        assert [i["trade_id"] for i in page] == list(range(x - 1, x - 101, -1))
        assert set(page[0]) == {"trade_id", "side", "size", "price", "time"}
        assert all(isinstance(i["trade_id"], int) and isinstance(i["price"], str) for i in page)
        digits = {len(i["time"].split(".")[1]) - 1 for i in page if "." in i["time"]}
        assert len(digits) > 1  # variable fractional precision
        async with s.get(url, params={"before": x, "limit": 10}) as r:
            assert [i["trade_id"] for i in await r.json()] == list(range(x + 10, x, -1))
        async with s.get(url, params={"after": "2026-01-01"}) as r:
            assert r.status == 400
        async with s.get(url, params={"limit": 5}, skip_auto_headers=["User-Agent"]) as r:
            assert r.status == 400
            assert await r.json() == {"message": "User-Agent header is required."}
        async with s.get(f"{rest_url(server)}/products/BTC-USD/candles",
                         params={"granularity": 61}) as r:
            assert r.status == 400
        async with s.get(f"{rest_url(server)}/products/BTC-USD/candles",
                         params={"granularity": 60}) as r:
            candles = await r.json()
        assert candles and all(len(c) == 6 for c in candles)
        assert [c[0] for c in candles] == sorted((c[0] for c in candles), reverse=True)
        assert len({c[0] for c in candles}) == len(candles)


async def test_rest_rate_limit_is_a_token_bucket(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=10, rest_rate=0.5, rest_burst=3)
    url = f"{rest_url(server)}/products/BTC-USD/trades"
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(5):
            async with s.get(url, params={"limit": 1}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert await r.json() == {"message": "Public rate limit exceeded"}
    assert statuses == [200, 200, 200, 429, 429]
