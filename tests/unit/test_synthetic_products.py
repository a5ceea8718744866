"""The synthetic source with several products: one independent market per product at its own
price level, each product's own anomalies plus market-wide ones (the same shock on every
product at once), labelled with the products they hit; one product is the old stream."""

from __future__ import annotations

import asyncio
import statistics
from datetime import UTC, datetime

import pytest

from blink.feeds import synthetic
from blink.feeds.sources import make_source
from tests.unit.test_synthetic import ListTape, return_sd, ts, volume_rate

START = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
DURATION = 4 * 3600.0  # several market-wide anomalies (one every ~15-30 min from minute 6-9)


@pytest.fixture(scope="module")
def markets():
    return synthetic.generate_markets(7, START, DURATION, PRODUCTS)


def test_one_product_is_exactly_the_single_product_stream():
    one, labels = synthetic.generate_markets(7, START, 1200, ("BTC-USD",))
    assert (one["BTC-USD"], labels) == synthetic.generate(7, START, 1200)
    assert all(set(lb) == {"kind", "start", "end"} for lb in labels)  # no products key


def test_each_product_its_own_ids_price_level_and_randomness(markets):
    trades, _ = markets
    assert set(trades) == set(PRODUCTS)
    for p, tape in trades.items():
        assert [t.trade_id for t in tape] == list(range(1, len(tape) + 1)), p
        assert {t.product_id for t in tape} == {p}
        assert len(tape) > DURATION * 3  # ~7 trades/s each
    level = {p: statistics.median(float(t.price) for t in tape) for p, tape in trades.items()}
    assert 50_000 < level["BTC-USD"] < 200_000 and 1_500 < level["ETH-USD"] < 7_000
    assert 70 < level["SOL-USD"] < 300 and 200 < level["DOGE-USD"] < 1_200
    sizes = {p: [t.size for t in tape[:200]] for p, tape in trades.items()}
    assert len({tuple(s) for s in sizes.values()}) == len(PRODUCTS)  # not one stream copied


def test_market_wide_and_product_only_anomalies_are_both_labelled(markets):
    _, labels = markets
    wide = [lb for lb in labels if lb["products"] == list(PRODUCTS)]
    own = [lb for lb in labels if len(lb["products"]) == 1]
    assert len(wide) >= 4 and {lb["kind"] for lb in wide} == set(synthetic.KINDS)
    assert len(wide) + len(own) == len(labels)
    assert {lb["products"][0] for lb in own} == set(PRODUCTS)  # each product its own ones
    assert [lb["start"] for lb in labels] == sorted(lb["start"] for lb in labels)


def calm_before(labels: list[dict], product: str, at: float, span: float = 300.0) -> float:
    """The end of the last `span` seconds before `at` without an anomaly of `product`."""
    while True:
        hit = [ts(lb["start"]) for lb in labels if product in lb["products"]
               and ts(lb["start"]) < at and ts(lb["end"]) > at - span]
        if not hit:
            return at
        at = min(hit)


def test_a_market_wide_shock_shows_in_every_product_at_once(markets):
    trades, labels = markets
    for lab in (lb for lb in labels if len(lb["products"]) > 1):
        a, b = ts(lab["start"]), ts(lab["end"])
        for p in PRODUCTS:
            tape, calm = trades[p], calm_before(labels, p, a)
            if lab["kind"] in ("price_jump", "flash_crash"):
                before = [float(t.price) for t in tape if a - 30 <= t.ts < a]
                inside = [float(t.price) for t in tape if a <= t.ts < b]
                move = max(abs(x / before[-1] - 1) for x in inside)
                assert move > 0.006, (lab, p)  # at least most of the smallest jump
            elif lab["kind"] == "volatility_burst":
                assert return_sd(tape, a, b) > 3 * return_sd(tape, calm - 300, calm), (lab, p)
            else:
                assert volume_rate(tape, a, b) > 3 * volume_rate(tape, calm - 300, calm), (lab, p)


async def test_the_source_feeds_every_products_tape_and_its_labels(make_settings):
    settings = make_settings(source="synthetic", speed=0, seed=5, bootstrap_hours=1.0,
                             pairs="ETH-USD,BTC-USD")
    source = make_source(settings)
    tapes = {"ETH-USD": ListTape(contiguous_id=10), "BTC-USD": ListTape()}
    tapes["ETH-USD"].target = 10**9
    tapes["BTC-USD"].target = 40_000
    task = asyncio.create_task(source.run(tapes))
    await asyncio.wait_for(tapes["BTC-USD"].reached.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    eth, btc = tapes["ETH-USD"].trades, tapes["BTC-USD"].trades
    assert eth[0].trade_id == 11 and btc[0].trade_id == 1  # each resumes its own ids
    assert {t.product_id for t in eth} == {"ETH-USD"} and {t.product_id for t in btc} == {
        "BTC-USD"}
    assert abs(eth[-1].ts - btc[-1].ts) < 60  # one event clock
    for p in settings.pairs:  # a product's labels: its own and the market-wide ones
        assert source.product_labels[p]
        assert all(p in lb["products"] for lb in source.product_labels[p])
    assert any(len(lb["products"]) == 2 for lb in source.labels)
