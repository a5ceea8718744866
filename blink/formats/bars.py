"""How an OHLCV bar becomes trades, and the tick rule that gives them a side.

A bar's price path is open, low, high, close when it closes at or above its open, else open,
high, low, close (the usual "nearest extreme first" convention); consecutive equal prices merge.
The points are spread evenly over the bar, the first at the bar's start time. The volume is
split evenly in 1e-8 BTC units with the remainder on the last trade; a volume too small to split
(or zero) gives one trade at the close. Trade ids come from `ids`, consecutively.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from blink.trade import Trade

SATOSHI = Decimal("1E-8")


class TickRule:
    """Coinbase maker side from price moves: up-tick → "sell" (the taker bought), down-tick →
    "buy"; an unchanged price keeps the previous side (the first trade: "sell")."""

    def __init__(self) -> None:
        self.price: Decimal | None = None
        self.side = "sell"

    def __call__(self, price: Decimal) -> str:
        if self.price is not None and price != self.price:
            self.side = "sell" if price > self.price else "buy"
        self.price = price
        return self.side


def bar_length(starts: list[datetime], default: float = 60.0) -> timedelta:
    """The smallest positive step between bar start times (`default` seconds without one)."""
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    return timedelta(seconds=min((s for s in steps if s > 0), default=default))


def problem(o: Decimal, h: Decimal, lo: Decimal, c: Decimal, vol: Decimal) -> str | None:
    """Why a bar is inconsistent, or None."""
    if not (0 < lo <= min(o, c) and max(o, c) <= h):
        return "inconsistent bar: need 0 < low <= open, close <= high"
    if vol < 0:
        return "inconsistent bar: negative volume"
    return None


def bar_trades(product: str, ids: Iterator[int], start: datetime, length: timedelta,
               o: Decimal, h: Decimal, lo: Decimal, c: Decimal, vol: Decimal,
               tick: TickRule) -> tuple[Trade, ...]:
    path = (o, lo, h, c) if c >= o else (o, h, lo, c)
    points = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
    if vol < SATOSHI * len(points):
        points = [c]
    n = len(points)
    share = (vol / n).quantize(SATOSHI, rounding=ROUND_DOWN)
    return tuple(
        Trade(product, next(ids), start + length * k / n, price,
              share if k < n - 1 else vol - share * (n - 1), tick(price))
        for k, price in enumerate(points))
