"""Which side a trade was on: the tick rule for rows without one, and taker to maker side.

Blink keeps Coinbase's MAKER side ("sell" = the taker bought). Most exchanges and tools
(Tardis, Binance, ccxt) give the TAKER side; `MAKER_SIDE` turns one into the other.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

MAKER_SIDE = {"buy": "sell", "sell": "buy"}  # taker side -> Coinbase's maker side


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


def tick_takers(texts: list[str], values: np.ndarray, tick: TickRule) -> np.ndarray:
    """The tick rule's taker side (True = up-tick) for consecutive prices (`texts`, and their
    floats `values`), advancing `tick` as calling it on each would. Floats order decimals
    correctly where they differ (rounding is monotonic); where two floats are equal the
    decimals are compared exactly."""
    n = len(texts)
    move = np.empty(n, np.int8)
    move[1:] = values[1:] > values[:-1]
    move[1:] -= values[1:] < values[:-1]  # (not a difference: inf - inf is nan)
    for i in np.flatnonzero(move[1:] == 0).tolist():
        if texts[i] != texts[i + 1]:
            move[i + 1] = _compare(Decimal(texts[i + 1]), Decimal(texts[i]))
    last = tick.price
    move[0] = 0 if last is None else _compare(Decimal(texts[0]), last)
    at = np.where(move != 0, np.arange(n), -1)  # the last move so far: the side carries
    np.maximum.accumulate(at, out=at)
    taker = np.where(at >= 0, move[np.maximum(at, 0)] > 0, tick.side == "sell")
    tick.price, tick.side = Decimal(texts[-1].strip()), "sell" if taker[-1] else "buy"
    return taker


def _compare(a: Decimal, b: Decimal) -> int:
    return (a > b) - (a < b)
