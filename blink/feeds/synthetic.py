"""A realistic, seeded trade stream with labelled anomalies, for one product or several.

The generator of one product is `blink.feeds.simulation.Market` (intensity, bursts, sizes,
price, its own anomalies: see there). `Markets` runs one per product on one event clock:

- **Seeds**: the first product keeps `seed` (so one product is exactly the single-product
  stream of that seed); every other product gets its own seed, derived from `seed` and its id,
  so the products move independently.
- **Price levels**: BTC ~ 100,000 (the single-product default), ETH ~ 3,500, SOL ~ 150, any
  other base ~ 500. Features are scale-free: the level only makes the dashboard plausible.
- **Anomalies**: each product has its own (labelled `"products": [that product]`); with
  several products there are also **market-wide** ones: the same shock (kind, start, end,
  size), drawn from a schedule of its own seed, hits every product at once, the first 6-9 min
  in, then one every ~15-30 min after the last ended, labelled once with every product. With
  one product there are none, and labels are `{"kind", "start", "end"}` as always.

`labels` lists every label as its anomaly starts (a market-wide one once); `product_labels[p]`
the labels that concern product `p` (with one product, the same list as `labels`).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal  # noqa: F401 - (kept where the generator used to be: tests use it)
from operator import attrgetter
from pathlib import Path

from blink.config import Settings
from blink.feeds.simulation import DT, KINDS, Anomaly, Market, draw
from blink.runtime.warmup import Warmup
from blink.tape import Tape, by_product
from blink.trade import Trade

__all__ = ["DT", "KINDS", "Anomaly", "Market", "Markets", "SyntheticSource", "generate",
           "generate_markets", "write_labels"]

PRICES = {"BTC": 100_000.0, "ETH": 3_500.0, "SOL": 150.0}
OTHER_PRICE = 500.0  # (a cent is then 0.002 %: price ticks do not drown the volatility)
SHOCK_FIRST = (360.0, 540.0)  # seconds from the start to the first market-wide anomaly
SHOCK_SPACING = (900.0, 1800.0)  # seconds from the end of one to the start of the next


def price_of(product: str) -> float:
    return PRICES.get(product.split("-")[0], OTHER_PRICE)


def seed_of(seed: int, product: str) -> int:
    """An independent, reproducible seed for `product` (never Python's salted `hash`)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{product}".encode()).digest()[:8], "big")


class Markets:
    """One `Market` per product on one event clock, plus the market-wide shocks."""

    def __init__(self, seed: int, start: float, products: Sequence[str] = ("BTC-USD",),
                 first_ids: Mapping[str, int] | None = None, labels: list[dict] | None = None,
                 product_labels: dict[str, list[dict]] | None = None) -> None:
        first_ids, several = first_ids or {}, len(products) > 1
        self.start, self.products = start, tuple(products)
        self.labels: list[dict] = [] if labels is None else labels
        self.product_labels = product_labels if product_labels is not None else {
            p: [] if several else self.labels for p in products}
        self.markets = {p: Market(seed if i == 0 else seed_of(seed, p), start, p,
                                  first_ids.get(p, 1), price=price_of(p),
                                  labels=self.product_labels[p], tag=several)
                        for i, p in enumerate(products)}
        self._seen = dict.fromkeys(products, 0)  # own labels copied to `labels` so far
        self.rng = random.Random(seed_of(seed, "market-wide"))
        self._kinds: list[str] = []
        self._next = self._shock(start + self.rng.uniform(*SHOCK_FIRST)) if several else None

    @property
    def t(self) -> float:
        return self.markets[self.products[0]].t

    def advance(self, until: float) -> list[Trade]:
        """Every product's trades up to event time `until`, merged in time order."""
        while self._next is not None and self._next.start < until:
            shock = self._next
            for p, market in self.markets.items():
                market.shocks.append(shock)
                self.product_labels[p].append(shock.label())
            self.labels.append(shock.label())
            self._next = self._shock(shock.end + self.rng.uniform(*SHOCK_SPACING))
        parts = [m.advance(until) for m in self.markets.values()]
        if len(parts) == 1:
            return parts[0]
        for p in self.products:  # the products' own anomalies begun by now
            own = [lb for lb in self.product_labels[p][self._seen[p]:]
                   if lb["products"] == [p]]
            self.labels.extend(own)
            self._seen[p] = len(self.product_labels[p])
        return list(heapq.merge(*parts, key=attrgetter("time")))

    def _shock(self, at: float) -> Anomaly:
        if not self._kinds:
            self._kinds = self.rng.sample(KINDS, len(KINDS))
        shock = draw(self.rng, self._kinds.pop(0), at)
        shock.products = self.products
        return shock


def generate(seed: int, start: datetime | float, duration: float,
             product_id: str = "BTC-USD", **kw) -> tuple[list[Trade], list[dict]]:
    """`duration` seconds of trades from `start`, and the labels of anomalies begun by then."""
    t0 = start.timestamp() if isinstance(start, datetime) else float(start)
    market = Market(seed, t0, product_id, **kw)
    return market.advance(t0 + duration), market.labels


def generate_markets(seed: int, start: datetime | float, duration: float,
                     products: Sequence[str]) -> tuple[dict[str, list[Trade]], list[dict]]:
    """Several products' trades (by product, each in id order) and every label (each with
    its `products`: one product's own anomaly, or all of them for a market-wide one)."""
    t0 = start.timestamp() if isinstance(start, datetime) else float(start)
    markets = Markets(seed, t0, products)
    out: dict[str, list[Trade]] = {p: [] for p in products}
    for trade in markets.advance(t0 + duration):
        out[trade.product_id].append(trade)
    return out, sorted(markets.labels, key=lambda lb: lb["start"])


def write_labels(path: str | Path, labels: list[dict]) -> None:
    """The labels as a JSON list of windows `[{"kind", "start", "end"}]` (what evaluate reads)."""
    Path(path).write_text(json.dumps(labels, indent=1) + "\n")


class SyntheticSource:
    """Plays `Markets` (every product of `settings.pairs`) at `settings.speed` x wall time (0:
    as fast as possible), after playing the first `settings.bootstrap_hours` (event time in
    the past, up to now) at once."""

    name = "synthetic"
    TICK = 0.05  # wall seconds between batches when paced
    CHUNK = 60.0  # most event seconds generated between two yields to the loop

    def __init__(self, settings: Settings, warmup: Warmup | None = None) -> None:
        self.settings, self.warmup = settings, warmup
        self.labels: list[dict] = []  # grows as anomalies start (the dashboard shades them)
        several = len(settings.pairs) > 1
        self.product_labels = {p: [] if several else self.labels for p in settings.pairs}
        self.market: Markets | None = None

    async def run(self, tapes: Mapping[str, Tape] | Tape) -> None:
        tapes = by_product(tapes, self.settings.pair)
        loop = asyncio.get_running_loop()
        now = math.floor(time.time())
        if self.market is None:  # a restarted run continues the same stream
            first_ids = {p: (getattr(t, "contiguous_id", None) or 0) + 1
                         for p, t in tapes.items()}
            self.market = Markets(self.settings.seed, now - self.settings.bootstrap_hours * 3600,
                                  self.settings.pairs, first_ids, self.labels,
                                  self.product_labels)
        await self.prefill(tapes, now)
        market, speed = self.market, self.settings.speed
        wall0, event0 = loop.time(), market.t
        while True:
            goal = market.t + self.CHUNK
            if speed > 0:
                goal = min(goal, event0 + (loop.time() - wall0) * speed)
            for trade in market.advance(goal):
                tapes[trade.product_id].add(trade, via="synthetic")
            await asyncio.sleep(self.TICK if speed > 0 and market.t + DT > goal else 0)

    async def prefill(self, tapes: dict, until: float) -> None:
        """Play the markets' past up to `until` (now) at once, `CHUNK` event seconds between
        yields to the loop: the history a first model trains on. A no-op once caught up."""
        market, warmup = self.market, self.warmup
        span = until - market.start
        if market.t + DT > until:
            return
        report = warmup is not None and warmup.history is None
        if report:
            warmup.history_begin("synthetic", span / 3600)
        added = 0
        while market.t + DT <= until:
            for trade in market.advance(min(until, market.t + self.CHUNK)):
                tapes[trade.product_id].add(trade, via="synthetic")
                added += 1
            if report:
                warmup.history_progress(added, (market.t - market.start) / span)
            await asyncio.sleep(0)
        if report:
            warmup.history_done()
