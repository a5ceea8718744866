"""Several products on one websocket against the fake exchange: every fault of the fake, applied
to every product at once, leaves every product's stored tape complete (no id missing, none
twice, every field exact); the REST backfills of all products share one rate budget; each
product resumes from its own stored tape."""

from __future__ import annotations

import pytest

from blink.runtime import keys
from tests.fakes.coinbase import FakeCoinbase
from tests.fakes.coinbase_rest import TokenBucket
from tests.fakes.rig import slow_consumer
from tests.support.waiting import wait_until

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")


async def products_rig(rig, fake: FakeCoinbase | None = None, **overrides):
    fake = fake or FakeCoinbase(products=PRODUCTS, history=200, heartbeat_interval=0.1)
    return await rig(fake, pairs=",".join(fake.products), **overrides)


def drops(base: int) -> set[int]:
    """Dropped ids: two holes in the id stream, found as jumps."""
    return {base + 3, base + 10, base + 11, base + 12}


async def fault_drop(r, base):
    r.fake.drop = drops(base)
    r.fake.emit(40)


async def fault_trailing_drop(r, base):
    r.fake.emit(20)
    r.fake.drop = {base + 21, base + 22, base + 23}
    r.fake.emit(3)  # the last trades before a quiet spell: only heartbeats show the hole


async def fault_stall(r, base):
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.stall_all()
    r.fake.emit(25)  # made while the socket is silent


async def fault_abort_mid_burst(r, base):
    r.fake.emit(30, cut_after=40, how="abort")  # (frames of all products interleaved)
    r.fake.emit(5)


async def fault_clean_close(r, base):
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.close_all(1000, "")
    r.fake.emit(10)


async def fault_deprecated_hostname(r, base):
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.close_all(1000, "deprecated hostname")
    r.fake.emit(10)


async def fault_connection_rate_limit(r, base):
    r.fake.ws_bucket = TokenBucket(2.0, 1)  # reconnects past 2/s are refused (HTTP 429)
    r.fake.ws_bucket.take("127.0.0.1")  # (the bucket is empty: the next one is refused)
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.abort_all()
    r.fake.emit(20)
    await wait_until(lambda: r.fake.refused >= 1 and r.fake.conns, "refused, then back")
    r.fake.emit(5)


async def fault_duplicates_reorder_noise(r, base):
    r.fake.duplicate = {base + i for i in (2, 5, 9)}
    r.fake.reorder = {base + i for i in (3, 7, 20)}
    r.fake.noise = r.fake.heartbeat_zero = True
    r.fake.emit(30)


async def fault_slow_consumer(r, base):
    await slow_consumer(r)


async def fault_429_during_backfill(r, base):
    r.fake.drop = {base + 5, base + 6}
    r.fake.rest_429 = 5
    r.fake.emit(20)


async def fault_bad_frames(r, base):
    for pid in PRODUCTS:
        r.fake.send_raw(f'{{"type":"match","trade_id":"x","product_id":"{pid}"}}')
        r.fake.send_raw(f'{{"type":"heartbeat","last_trade_id":"12","product_id":"{pid}"}}')
    r.fake.send_raw("not json{")
    r.fake.drop = {base + 2}
    r.fake.emit(15)


FAULTS = [fault_drop, fault_trailing_drop, fault_stall, fault_abort_mid_burst, fault_clean_close,
          fault_deprecated_hostname, fault_connection_rate_limit, fault_duplicates_reorder_noise,
          fault_slow_consumer, fault_429_during_backfill, fault_bad_frames]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__.removeprefix("fault_"))
async def test_every_fault_on_every_product_leaves_every_tape_complete(rig, fault):
    r = await products_rig(rig)
    assert set(r.tapes) == set(PRODUCTS) and r.tape is r.tapes["BTC-USD"]
    base = r.fake.trades[-1].trade_id
    assert all(r.fake.tapes[p][-1].trade_id == base for p in PRODUCTS)  # ids aligned
    await fault(r, base)
    await r.assert_complete()  # every product: every id from the first last_match on
    assert len(r.fake.received) == r.fake.connections  # one subscribe per connection ...
    assert all(sorted(m["product_ids"]) == sorted(PRODUCTS) for m in r.fake.received)
    assert all(t.open_gaps() == [] for t in r.tapes.values())


async def test_each_product_finds_and_fills_its_own_holes(rig):
    r = await products_rig(rig)
    base = r.fake.trades[-1].trade_id
    r.fake.drop = drops(base)
    r.fake.emit(40)
    await r.assert_complete()
    for product in PRODUCTS:
        await r.gaps_closed(product)
        gaps = await r.gaps(product)
        assert [(g["from_id"], g["to_id"], g["detected_by"]) for g in gaps] == [
            (base + 3, base + 3, "jump"), (base + 10, base + 12, "jump")], product
        assert sum(g["filled_count"] for g in gaps) == 4
    assert r.metric("blink_trades_backfilled_total") == 4 * len(PRODUCTS)
    for product in PRODUCTS:  # each product's trades are counted under its own label
        assert r.metric("blink_trades_backfilled_total", product=product) == 4, product
        assert r.metric("blink_feed_gaps_total", product=product) == 2, product
        taken = len([t for t in r.fake.tapes[product] if t.trade_id > base])
        assert r.metric("blink_trades_ingested_total", source="coinbase",
                        product=product) >= taken, product
        assert r.metric("blink_feed_lag_seconds", product=product) != 0, product
    requested = {pid for _, pid in r.fake.rest_log}
    assert requested == set(PRODUCTS)  # each product's holes from its own REST path
    detail = r.app[keys.HEALTH]["coinbase"].detail
    await wait_until(lambda: set(detail.get("contiguous_ids", {})) == set(PRODUCTS),
                     "every product's contiguous id in the health detail")


async def test_ids_rest_never_returns_are_given_up_per_product(rig):
    r = await products_rig(rig)
    base = r.fake.trades[-1].trade_id
    r.fake.drop = r.fake.rest_missing = {base + 4}  # gone from every product's wire and REST
    r.fake.emit(10)
    for product in PRODUCTS:
        await r.gaps_closed(product)
        (gap,) = await r.gaps(product)
        assert gap["filled_at"] is None and "did not return 1 of 1" in gap["note"]
        want = [(t.trade_id, t.time, t.price, t.size, t.side) for t in r.fake.tapes[product]
                if t.trade_id >= r.first_id and t.trade_id != base + 4]
        await r.assert_tape(product, want)
        assert r.tapes[product].open_gaps() == [] and r.tapes[product].contiguous_id == base + 10


async def test_the_backfills_share_one_rest_rate_budget(rig):
    rate = 20.0
    fake = FakeCoinbase(products=PRODUCTS, history=200, heartbeat_interval=0.1,
                        rest_rate=1000, rest_burst=1000)  # the fake itself never refuses
    fake.rest_max_limit = 4  # short pages: every product needs many requests at once
    r = await products_rig(rig, fake, rest_rate=rate)
    base = fake.trades[-1].trade_id
    fake.drop = set(range(base + 1, base + 61))  # 60 ids lost on every product
    fake.emit(70)
    await r.assert_complete()
    log = fake.rest_log
    assert len(log) >= 3 * 15 and {pid for _, pid in log} == set(PRODUCTS)
    times = sorted(t for t, _ in log)
    # counted in the fake's request log: in any one-second window, at most `rate` requests
    # (+1 for the window's edge, +1 for the network's jitter), for all products together
    busiest = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert busiest <= rate + 2, busiest
    # ... and the products were served side by side, not one after the other
    firsts = {pid: min(t for t, p in log if p == pid) for pid in PRODUCTS}
    lasts = {pid: max(t for t, p in log if p == pid) for pid in PRODUCTS}
    assert max(firsts.values()) < min(lasts.values())


async def test_each_product_resumes_from_its_own_stored_tape(rig):
    r = await products_rig(rig)
    base = r.fake.trades[-1].trade_id
    r.fake.emit(20)
    r.fake.emit(15, products=("ETH-USD",))  # ETH is ahead of the others
    await r.assert_complete()
    await r.stop()
    r.fake.emit(30)  # while Blink is down (the products' downtimes differ)
    await r.start()
    r.fake.emit(5)
    await r.assert_complete()
    for product in PRODUCTS:
        (gap,) = [g for g in await r.gaps(product) if g["detected_by"] == "startup"]
        last = base + 20 + (15 if product == "ETH-USD" else 0)  # its highest stored id
        assert gap["from_id"] == last + 1, product  # resumed after ITS last id ...
        assert gap["to_id"] == r.fake.tapes[product][-6].trade_id - 1  # ... to its last_match
        assert gap["filled_at"] is not None


async def test_first_start_bootstraps_every_product_in_one_rest_budget(rig):
    fake = FakeCoinbase(products=PRODUCTS, history_seconds=2 * 3600, rate=0.3,
                        heartbeat_interval=0.1,
                        start_ids={"BTC-USD": 1_100_000_000, "ETH-USD": 650_000_000,
                                   "SOL-USD": 90_000_000})
    fake.rest_max_limit = 100  # many pages for each product
    r = await products_rig(rig, fake, bootstrap_hours=1.0, rest_rate=60)
    await wait_until(lambda: not any(t.bootstrapping for t in r.tapes.values()),
                     "every product's history loaded", limit=60)
    loaded = 0
    for product, tape in r.tapes.items():
        start = tape.bootstrap_from
        by_id = {t.trade_id: t for t in fake.tapes[product]}
        assert start in by_id and start - 1 in by_id, product  # inside its own id range
        assert by_id[start - 1].time < by_id[start].time  # (a cut-off between the two)
        loaded += tape.bootstrap_to - start + 1
        want = [(t.trade_id, t.time, t.price, t.size, t.side) for t in fake.tapes[product]
                if t.trade_id >= start]
        await r.assert_tape(product, want)  # the history joins the live stream, no hole
        (gap,) = await r.gaps(product)
        assert (gap["detected_by"], gap["from_id"]) == ("bootstrap", start)
    history = r.app[keys.WARMUP].history
    await wait_until(lambda: history.done, "the loading reported done")
    assert history.trades == history.total == loaded  # summed over the products
