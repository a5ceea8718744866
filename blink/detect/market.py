"""Market context: is a product's move its own, or the whole market's?

Each product's returns are already volatility-normalised by the feature engine (z_5, z_30,
z_300: the 5-s, 30-s and 5-min log returns in units of the current, jump-robust
volatility). A product is *moving* when one of them is at least `MOVING_Z` in size on its
latest trade, and that trade is concurrent: within `CONCURRENT_SECONDS` of event time of the
moment asked about (a product that has not traded for a minute is not moving).

When a product's anomaly event starts, and when its peak moves, the detector appends one
explanation line from this context: "market-wide: 3 of 3 products moving", "ETH-USD alone" or
"2 of 3 products moving: BTC-USD, ETH-USD" (the anomalous product counts as moving). With a
single product there is nothing to compare and no line. It is an explanation only: it does
not change the score, the threshold or which moments are anomalous.

Pure functions over `Latest` objects (in-process, or restored from Redis in the api role).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES
from blink.times import iso

HORIZONS = tuple(n for n in ("z_5", "z_30", "z_300") if n in FEATURE_NAMES)
MOVING_Z = 3.0  # |return| / volatility at or above this on some horizon: moving
CONCURRENT_SECONDS = 60.0  # event-time distance within which two products' states compare


def is_moving(latest: Latest, at: float | None) -> bool:
    """Whether `latest` shows a volatility-normalised move at event time `at` (None: now)."""
    features, as_of = latest.features, latest.as_of
    if not features or as_of is None:
        return False
    if at is not None and abs(as_of.timestamp() - at) > CONCURRENT_SECONDS:
        return False
    values = [features.get(h) for h in HORIZONS]
    return any(v is not None and math.isfinite(v) and abs(v) >= MOVING_Z for v in values)


def context(latests: Mapping[str, Latest], at: float | None = None,
            own: str | None = None) -> dict:
    """{"moving": [products], "of": N, "as_of": ISO time}: which products move at event time
    `at` (default: the newest product's latest trade); `own` counts as moving (its anomaly)."""
    if at is None:
        times = [lt.as_of.timestamp() for lt in latests.values() if lt.as_of is not None]
        at = max(times) if times else None
    moving = [p for p, lt in latests.items() if p == own or is_moving(lt, at)]
    return {"moving": moving, "of": len(latests), "as_of": None if at is None else iso(at)}


def text(product: str, ctx: dict) -> str:
    moving, of = ctx["moving"], ctx["of"]
    if moving == [product]:
        return f"{product} alone"
    if len(moving) == of:
        return f"market-wide: {of} of {of} products moving"
    return f"{len(moving)} of {of} products moving: {', '.join(moving)}"


class MarketContext:
    """The detectors' shared view of every product's latest state (`app[keys.LATESTS]`)."""

    def __init__(self, latests: Mapping[str, Latest]) -> None:
        self.latests = latests

    def explain(self, product: str, at: float) -> list[dict]:
        """The explanation line for `product`'s anomaly at event time `at` ([] alone)."""
        if len(self.latests) < 2:
            return []
        ctx = context(self.latests, at, own=product)
        return [{"feature": "market", "text": text(product, ctx), "moving": ctx["moving"],
                 "of": ctx["of"]}]
