"""Market context: which products move together (pure: `Latest` objects in, a line out)."""

from __future__ import annotations

from datetime import timedelta

from blink.detect import market
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES
from tests.support.trades import T0

AT = T0.timestamp()


def latest(product: str, z300: float = 0.0, z5: float = 0.0, age: float = 0.0) -> Latest:
    lt = Latest(product_id=product)
    lt.features = {n: 0.1 for n in FEATURE_NAMES} | {"z_300": z300, "z_5": z5}
    lt.as_of = T0 - timedelta(seconds=age)
    return lt


def line(latests, product: str) -> str:
    (entry,) = market.MarketContext(latests).explain(product, AT)
    assert entry["feature"] == "market" and entry["of"] == len(latests)
    return entry["text"]


def test_alone_shared_and_market_wide():
    quiet = {p: latest(p) for p in ("BTC-USD", "ETH-USD", "SOL-USD")}
    assert line(quiet, "ETH-USD") == "ETH-USD alone"  # the anomalous product counts as moving
    some = quiet | {"BTC-USD": latest("BTC-USD", z300=-4.2)}
    assert line(some, "ETH-USD") == "2 of 3 products moving: BTC-USD, ETH-USD"
    every = some | {"SOL-USD": latest("SOL-USD", z5=3.5)}
    assert line(every, "ETH-USD") == "market-wide: 3 of 3 products moving"


def test_only_concurrent_large_normalised_moves_count():
    assert not market.is_moving(latest("BTC-USD", z300=2.9), AT)  # below MOVING_Z
    assert market.is_moving(latest("BTC-USD", z300=-3.0), AT)
    old = latest("BTC-USD", z300=8.0, age=market.CONCURRENT_SECONDS + 1)
    assert not market.is_moving(old, AT)  # a minute without a trade: not moving now
    assert market.is_moving(old, None)  # (no time given: its own latest state)
    nan = latest("BTC-USD")
    nan.features["z_300"] = float("nan")
    assert not market.is_moving(nan, AT)
    assert not market.is_moving(Latest(product_id="BTC-USD"), AT)  # no features yet


def test_one_product_has_no_line_and_context_defaults_to_the_newest_time():
    assert market.MarketContext({"BTC-USD": latest("BTC-USD", z300=9)}).explain(
        "BTC-USD", AT) == []
    latests = {"BTC-USD": latest("BTC-USD", z300=5, age=10), "ETH-USD": latest("ETH-USD")}
    ctx = market.context(latests)
    assert ctx == {"moving": ["BTC-USD"], "of": 2, "as_of": T0.isoformat().replace("+00:00",
                                                                                  "Z")}
    assert market.context({"BTC-USD": Latest(product_id="BTC-USD")})["as_of"] is None
