"""The one trade builder of the tests, and the one test epoch `T0`.

(The product's own generator, `blink.feeds.synthetic`, and the fake exchange's tape,
`tests.fakes.trades`, are what they test; these build inputs for everything else.)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import numpy as np

from blink.trade import Trade

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # the tests' epoch
PRICES = ["100000.01", "0.00000001", "123456.78901234", "1E-8", "99999.9"]


def trade(i: int, *, product: str = "BTC-USD", price: str = "84000.5") -> Trade:
    """Trade id `i`, 10 ms after trade i-1, a fixed price and size, sides alternating."""
    return Trade(product, i, T0 + timedelta(milliseconds=10 * i), Decimal(price),
                 Decimal("0.0001"), "buy" if i % 2 else "sell")


def varied(n: int, first: int = 1, product: str = "BTC-USD") -> list[Trade]:
    """Trades with awkward exact decimals (tiny, huge, exponent forms), 37 µs apart."""
    return [Trade(product, i, T0 + timedelta(microseconds=37 * i),
                  Decimal(PRICES[i % len(PRICES)]), Decimal(f"0.{i:08d}") + Decimal("1E-8"),
                  "buy" if i % 3 else "sell") for i in range(first, first + n)]


def calm(n: int, seed: int, start: float = T0.timestamp(), price: float = 40_000.0):
    """(ts, price, size, taker_buy) arrays: ~4 trades/s, small Gaussian log returns."""
    rng = np.random.default_rng(seed)
    ts = start + np.cumsum(rng.exponential(0.25, n))
    p = price * np.exp(np.cumsum(rng.normal(0, 5e-5, n)))
    return ts, np.round(p, 2), np.round(rng.lognormal(-4, 1, n), 8) + 1e-8, rng.random(n) < 0.5


def from_arrays(ts, p, size, tb, first_id: int = 1) -> list[Trade]:
    return [Trade("BTC-USD", first_id + i, datetime.fromtimestamp(t, UTC), Decimal(f"{pr:.2f}"),
                  Decimal(f"{s:.8f}"), "sell" if b else "buy")
            for i, (t, pr, s, b) in enumerate(zip(ts, p, size, tb, strict=True))]


def walk_rows(n: int, start: datetime = T0, seed: int = 1, product: str = "BTC-USD"):
    """(product_id, trade_id, time, price, size, side) rows: ~1 trade/s, a random walk."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, n)
    gaps[rng.random(n) < 0.2] = 0.0  # bursts at one timestamp
    ts = np.cumsum(gaps)
    price = 60_000 * np.exp(np.cumsum(rng.normal(0, 2e-4, n)))
    size = rng.lognormal(-4, 1, n)
    side = np.where(rng.random(n) < 0.5, "buy", "sell")
    return [(product, 1000 + i, start + timedelta(seconds=float(ts[i])),
             Decimal(f"{price[i]:.2f}"), Decimal(f"{size[i]:.8f}"), str(side[i]))
            for i in range(n)]



async def stored(dsn: str, schema: str = "public") -> list[Trade]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch("SELECT * FROM trades ORDER BY trade_id")
    finally:
        await conn.close()
    return [Trade(r["product_id"], r["trade_id"], r["time"], r["price"], r["size"], r["side"])
            for r in rows]


def random_walk(seed, n, gap, vol, p0, start=1.7e9, buy_share=0.5):
    """(ts, price, size, taker_buy): exponential gaps, Gaussian log returns."""
    rng = np.random.default_rng(seed)
    ts = start + np.cumsum(rng.exponential(gap, n))
    p = p0 * np.exp(np.cumsum(rng.normal(0, vol * math.sqrt(gap), n)))
    return ts, p, rng.lognormal(-4, 1, n), rng.random(n) < buy_share
