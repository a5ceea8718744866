"""A seeded generator of realistic BTC-USD trades (the generated tape the tests compare against).

Realistic enough to exercise the client: trade intensity that drifts (mean `rate` per second),
sweeps (several fills at the same time, consecutive ids, same maker side, walking the price),
heavy-tailed sizes (Pareto, 8 decimals, sometimes tiny), prices as strings with varying
decimals, and quiet spells.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from blink.trade import Trade

CENT = Decimal("0.01")
SATOSHI = Decimal("0.00000001")


class TradeGen:
    def __init__(self, seed: int = 1, product_id: str = "BTC-USD", start_id: int = 1_100_000_000,
                 start_time: datetime | None = None, price: str = "84000.00",
                 rate: float = 7.0, sweep_p: float = 0.2, quiet_p: float = 0.01,
                 revert: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.product_id, self.next_id, self.rate = product_id, start_id, rate
        self.clock = start_time or datetime.now(UTC)
        self.price = Decimal(price)
        self.sweep_p, self.quiet_p = sweep_p, quiet_p
        self.intensity = 1.0  # drifting multiplier of the rate
        # pull of log(intensity) back to 0 per order: 0 is a free walk (fine for minutes), hours
        # of history need some (0.01: stationary, sd ~0.7 in log, memory ~100 orders)
        self.revert = revert

    def trades(self, n: int) -> list[Trade]:
        out: list[Trade] = []
        while len(out) < n:
            self._advance()
            fills = 1
            if self.rng.random() < self.sweep_p:
                fills = min(n - len(out), 1 + int(self.rng.expovariate(1 / 4)))
            side = self.rng.choice(("buy", "sell"))
            step = CENT * self.rng.randint(0, 3) * (1 if side == "sell" else -1)
            for _ in range(fills):
                out.append(Trade(self.product_id, self.next_id, self.clock, self._price_text(),
                                 self._size(), side))
                self.next_id += 1
                self.price = max(CENT, self.price + step)
        return out

    def until(self, end: datetime, chunk: int = 20) -> list[Trade]:
        """Trades until the clock passes `end` (the last ones at most `chunk` trades beyond)."""
        out: list[Trade] = []
        while self.clock < end:
            out.extend(self.trades(chunk))
        return out

    def _advance(self) -> None:
        rng = self.rng
        pull = self.revert * math.log(self.intensity)
        self.intensity = min(20.0, max(0.05, self.intensity * math.exp(rng.gauss(0, 0.1) - pull)))
        gap = rng.expovariate(self.rate * self.intensity)
        if rng.random() < self.quiet_p:
            gap += rng.uniform(3, 8)  # a quiet spell: heartbeats only
        self.price = max(CENT, self.price + CENT * round(rng.gauss(0, 3)))
        self.clock += timedelta(microseconds=max(1, int(gap * 1e6)))
        if rng.random() < 0.3:  # some engine times land on whole ms (REST then trims zeros)
            self.clock += timedelta(microseconds=-self.clock.microsecond % 1000)

    def _price_text(self) -> Decimal:
        # varying decimals on the wire: "84149.24", "84149.2", "84149.20"
        p = self.price.quantize(CENT)
        return Decimal(str(p.normalize())) if self.rng.random() < 0.3 else p

    def _size(self) -> Decimal:
        rng = self.rng
        if rng.random() < 0.02:
            return SATOSHI * rng.randint(1, 9)  # dust: "0.00000004"
        size = Decimal(0.0001 * rng.paretovariate(1.2)).quantize(SATOSHI)
        return size if size > 0 else SATOSHI


PRICES = {"BTC": "84000.00", "ETH": "3200.00", "SOL": "150.00"}


def product_gen(seed: int, index: int, product_id: str, start_time: datetime, rate: float,
                **kw) -> TradeGen:
    """The generator of the `index`-th product of a fake exchange: the first keeps `seed` (a
    one-product fake is what it always was), the others their own seed and price level; all
    start at the same trade id, so id-based faults hit every product at once."""
    price = "84000.00" if index == 0 else PRICES.get(product_id.split("-")[0], "25.00")
    return TradeGen(seed + 7919 * index, product_id, start_time=start_time, price=price,
                    rate=rate, **kw)


def wire_decimal(d: Decimal) -> str:
    """A decimal as Coinbase writes it (never scientific notation)."""
    return format(d, "f")


def wire_time(t: datetime, trim: bool = False) -> str:
    """ISO-8601 UTC, 6 fractional digits and Z (websocket); REST trims trailing zeros."""
    text = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    if trim:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"
