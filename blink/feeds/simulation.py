"""The trade generator of one product: a realistic, seeded trade stream with labelled anomalies.

`Market` is the pure generator (no asyncio): `advance(until)` returns the trades up to an event
time. The model, stepped every 0.1 s of event time:
- **Intensity**: taker orders arrive as a Poisson process whose rate is a slow log-normal regime
  (Ornstein-Uhlenbeck log-rate, 10 min memory) plus Hawkes self-excitation (each order adds to
  the rate, decaying in ~1 s, branching ratio 0.4): about 7 trades/s on average, clustered.
- **Bursts**: each taker order fills 1+ resting orders (geometric, mean 1.5) at the SAME
  timestamp with consecutive trade ids, walking the book a cent at a time.
- **Sizes**: Pareto (tail index 1.2) from 0.0005 BTC: heavy-tailed like real fills.
- **Price**: the mid follows a GBM with ~50 % annualised volatility (scaled up when activity is
  high); trades print at the bid or ask (1-cent spread), so prices bounce.
- **Anomalies** (labelled): the first starts 2.5-4 min in, then one every ~10-20 min, the four
  kinds in a seeded order per round: `price_jump` (mid jumps 0.8-2 %, label 60 s),
  `volatility_burst` (volatility x6-12 for 2-5 min), `volume_spike` (order rate x6-10 and
  sizes x3-6 for 1-3 min), `flash_crash` (-5..-9 % in 20-60 s, then back over 2-5 min).
  A label `{"kind", "start", "end"}` (ISO times) is appended to `labels` when it starts.
- **Shocks**: market-wide anomalies planned by `blink.feeds.synthetic.Markets` (several
  products) act on the market like its own ones, on every product at once.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from blink.times import iso_fixed
from blink.trade import Trade

KINDS = ("price_jump", "volatility_burst", "volume_spike", "flash_crash")
DT = 0.1  # event-time step, seconds
MU = 1.75  # base taker-order rate per second (x1.13 regime, /0.6 Hawkes, x1.5 fills ≈ 7/s calm)
TAU, REGIME_SD = 600.0, 0.5  # log-rate regime: memory (s) and stationary sd
ALPHA, BETA = 0.4, 1.0  # Hawkes: jump per order, decay per second (branching ALPHA/BETA)
SIGMA = 0.5 / math.sqrt(365 * 86400)  # 50 % a year, per sqrt(second)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Anomaly:
    kind: str
    start: float  # epoch seconds
    end: float
    size: float  # jump fraction, volatility / rate multiplier, or crash depth
    fall: float = 0.0  # flash crash: seconds of the fall
    sizes: float = 1.0  # volume spike: size multiplier

    products: tuple[str, ...] = ()  # several products: the ones it hits (in its label)

    def label(self) -> dict:
        out = {"kind": self.kind, "start": iso_fixed(self.start), "end": iso_fixed(self.end)}
        if self.products:
            out["products"] = list(self.products)
        return out


def draw(rng: random.Random, kind: str, at: float) -> Anomaly:
    """An anomaly of `kind` starting at `at`, its duration and size drawn from `rng`."""
    if kind == "price_jump":
        return Anomaly(kind, at, at + 60, rng.choice((-1, 1)) * rng.uniform(0.008, 0.02))
    if kind == "volatility_burst":
        return Anomaly(kind, at, at + rng.uniform(120, 300), rng.uniform(6, 12))
    if kind == "volume_spike":
        return Anomaly(kind, at, at + rng.uniform(60, 180), rng.uniform(6, 10),
                       sizes=rng.uniform(3, 6))
    fall = rng.uniform(20, 60)
    return Anomaly(kind, at, at + fall + rng.uniform(120, 300), rng.uniform(0.05, 0.09),
                   fall=fall)



class Market:
    def __init__(self, seed: int, start: float, product_id: str = "BTC-USD", first_id: int = 1,
                 price: float = 100_000.0, spacing: tuple[float, float] = (600.0, 1200.0),
                 labels: list[dict] | None = None, tag: bool = False) -> None:
        """`tag`: its anomalies' labels name the product (a market of several products);
        `shocks` (filled by `synthetic.Markets`, in time order, dropped once over) are
        market-wide anomalies that hit it too."""
        self.rng = random.Random(seed)
        self.start, self.steps, self.product = start, 0, product_id
        self.next_id = first_id
        self.x = math.log(price)  # log mid
        self.regime = 0.0
        self.excite = 0.0
        self.spacing = spacing
        self.labels: list[dict] = [] if labels is None else labels
        self.anomalies: list[Anomaly] = []
        self.shocks: list[Anomaly] = []
        self.tag = tag
        self._kinds: list[str] = []
        self._plan(start + self.rng.uniform(150, 240))

    @property
    def t(self) -> float:
        return self.start + self.steps * DT

    def advance(self, until: float) -> list[Trade]:
        """Simulate up to event time `until` (epoch s); the trades, in id order."""
        out: list[Trade] = []
        while self.t + DT <= until:
            self._step(out)
        return out

    # ------------------------------------------------------------------ internals
    def _plan(self, at: float) -> None:
        rng = self.rng
        if not self._kinds:
            self._kinds = rng.sample(KINDS, len(KINDS))
        a = draw(rng, self._kinds.pop(0), at)
        if self.tag:
            a.products = (self.product,)
        self.anomalies.append(a)

    def _effects(self, t: float) -> tuple[float, float, float, float]:
        """(rate x, volatility x, size x, log drift per s) of the anomalies active at t."""
        rate = vol = size = 1.0
        drift = 0.0
        for a in (*self.anomalies[-2:], *self.shocks[:1]):
            if not a.start <= t < a.end:
                continue
            if a.kind == "price_jump":
                rate *= 3.0 if t < a.start + 30 else 1.0
            elif a.kind == "volatility_burst":
                vol, rate = a.size, 2.0
            elif a.kind == "volume_spike":
                rate, size = a.size, a.sizes
            else:  # flash crash: fall to -depth, then recover 90 % of it
                depth = -math.log(1 - a.size)
                falling = t < a.start + a.fall
                drift = -depth / a.fall if falling else 0.9 * depth / (a.end - a.start - a.fall)
                rate, vol = (5.0, 3.0) if falling else (3.0, 2.0)
        return rate, vol, size, drift

    def _step(self, out: list[Trade]) -> None:
        rng, t = self.rng, self.t
        a = self.anomalies[-1]
        if a.start <= t < a.start + DT:  # an anomaly begins in this step
            self.labels.append(a.label())
            if a.kind == "price_jump":
                self.x += math.log(1 + a.size)
            self._plan(a.end + rng.uniform(*self.spacing))
        while self.shocks and self.shocks[0].end <= t:
            self.shocks.pop(0)
        for s in self.shocks[:1]:  # a market-wide jump begins (labelled by Markets)
            if s.kind == "price_jump" and s.start <= t < s.start + DT:
                self.x += math.log(1 + s.size)
        rate, vol, size_x, drift = self._effects(t)
        self.regime += -self.regime / TAU * DT + REGIME_SD * math.sqrt(2 * DT / TAU) * rng.gauss()
        activity = math.exp(self.regime)
        n = _poisson(rng, (MU * activity * rate + self.excite) * DT)
        self.excite = self.excite * math.exp(-BETA * DT) + ALPHA * n
        sigma = SIGMA * math.sqrt(activity * min(rate, 4.0)) * vol
        self.x += drift * DT + sigma * math.sqrt(DT) * rng.gauss()
        mid = math.exp(self.x)
        for when in sorted(rng.random() for _ in range(n)):
            self._order(out, t + when * DT, mid, size_x)
        self.steps += 1

    def _order(self, out: list[Trade], ts: float, mid: float, size_x: float) -> None:
        """One taker order: 1+ fills at the same timestamp, consecutive ids."""
        rng = self.rng
        taker_buy = rng.random() < 0.5
        time = EPOCH + timedelta(microseconds=round(ts * 1e6))
        cents = round(mid * 100) + (1 if taker_buy else 0)  # ask = bid + 1 cent
        fills = 1
        while fills < 20 and rng.random() < 1 / 3:
            fills += 1
        for _ in range(fills):
            size = max(1e-8, 0.0005 * rng.paretovariate(1.2) * size_x)
            out.append(Trade(self.product, self.next_id, time, Decimal(cents) / 100,
                             Decimal(f"{min(size, 50.0):.8f}"), "sell" if taker_buy else "buy"))
            self.next_id += 1
            if rng.random() < 0.3:  # walk the book
                cents += 1 if taker_buy else -1


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
