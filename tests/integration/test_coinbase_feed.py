"""The Coinbase feed end to end against the fake exchange: for every fault, the stored tape
(SELECT from `trades`) equals the generated tape exactly (ids, times, prices, sizes, sides)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from blink.feeds.coinbase import CoinbaseSource
from blink.runtime import keys
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.runtime.warmup import Warmup
from blink.tape import Tape
from tests.fakes.rig import slow_consumer
from tests.support.faultkit import free_port
from tests.support.waiting import wait_until


async def test_clean_stream_is_stored_exactly_and_health_shows_the_feed(rig):
    r = await rig()
    r.fake.emit(300)
    await r.assert_complete()
    await wait_until(lambda: "last_frame" in r.app[keys.HEALTH]["coinbase"].detail,
                     "a heartbeat reached the health detail")
    comp = r.app[keys.HEALTH]["coinbase"].as_dict()
    assert comp["ok"] is True and comp["connected"] is True and comp["reconnects"] == 0
    assert r.app[keys.LATEST].source == "coinbase"
    assert r.metric("blink_trades_ingested_total", source="coinbase", product="BTC-USD") == 301
    assert r.metric("blink_feed_gaps_total") == 0 and await r.gaps() == []
    assert r.metric("blink_feed_lag_seconds", product="BTC-USD") != 0


async def test_dropped_ids_are_refilled_and_recorded(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    r.fake.drop = {base + 3, base + 10, base + 11, base + 12}
    r.fake.emit(40)
    await r.assert_complete()
    await r.gaps_closed()
    gaps = await r.gaps()
    assert [(g["from_id"], g["to_id"], g["detected_by"]) for g in gaps] == [
        (base + 3, base + 3, "jump"), (base + 10, base + 12, "jump")]
    assert sum(g["filled_count"] for g in gaps) == 4
    assert r.metric("blink_trades_backfilled_total") == 4


async def test_trailing_drop_before_a_quiet_spell_is_found_by_heartbeat(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    r.fake.emit(20)
    r.fake.drop = {base + 21, base + 22, base + 23}
    r.fake.emit(3)  # the last trades before the quiet spell never arrive
    await r.assert_complete()
    gaps = await r.gaps()
    assert [(g["from_id"], g["to_id"], g["detected_by"]) for g in gaps] == [
        (base + 21, base + 23, "heartbeat")]


async def test_silent_stall_reconnects_and_refills(rig):
    r = await rig()
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.stall_all()
    r.fake.emit(25)  # made while the socket is silent
    await r.assert_complete()
    assert r.metric("blink_feed_reconnects_total", reason="stall") >= 1
    assert "reconnect" in {g["detected_by"] for g in await r.gaps()}


async def test_abrupt_close_mid_burst_reconnects_and_refills(rig):
    r = await rig()
    r.fake.emit(30, cut_after=12, how="abort")
    r.fake.emit(5)
    await r.assert_complete()
    assert r.metric("blink_feed_reconnects_total", reason="abnormal_close") >= 1


@pytest.mark.parametrize("reason, label", [("", "clean_close"),
                                           ("deprecated hostname", "deprecated_hostname")])
async def test_clean_close_reconnects_and_deprecated_hostname_is_an_error(rig, caplog, reason,
                                                                          label):
    r = await rig()
    with caplog.at_level(logging.ERROR, logger="blink.feeds.coinbase"):
        r.fake.emit(10)
        await r.fake.wait_sent()
        r.fake.close_all(1000, reason)
        r.fake.emit(10)
        await r.assert_complete()
    assert r.metric("blink_feed_reconnects_total", reason=label) == 1
    assert r.fake.connections >= 2
    errors = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    if reason:
        assert any(r.settings.coinbase_ws_url in m and "deprecated hostname" in m
                   for m in errors)
    else:
        assert errors == []


async def test_duplicates_out_of_order_and_noise_are_handled(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    r.fake.duplicate = {base + i for i in (2, 5, 9)}
    r.fake.reorder = {base + i for i in (3, 7, 20)}
    r.fake.noise = r.fake.heartbeat_zero = True
    r.fake.emit(30)
    await r.assert_complete()
    assert r.metric("blink_feed_duplicates_total") >= 3
    assert r.metric("blink_trades_backfilled_total") == 0  # reordered ids filled live
    assert r.fake.connections == 1 and r.metric("blink_feed_bad_messages_total", kind="json") == 0


async def test_malformed_frames_are_counted_and_skipped_connection_stays_up(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    for raw in ("not json{", "[1, 2]",
                '{"type":"match","trade_id":"x","product_id":"BTC-USD"}',
                f'{{"type":"match","trade_id":{base + 1},"product_id":"BTC-USD","price":1,'
                '"size":"1","side":"buy","time":"2026-01-01T00:00:00Z"}',
                '{"type":"heartbeat","last_trade_id":"12","product_id":"BTC-USD"}'):
        r.fake.send_raw(raw)
    r.fake.emit(15)
    await r.assert_complete()
    bad = {k: r.metric("blink_feed_bad_messages_total", kind=k)
           for k in ("json", "shape", "match", "heartbeat")}
    assert bad == {"json": 1, "shape": 1, "match": 2, "heartbeat": 1}
    assert r.fake.connections == 1


async def test_slow_consumer_error_is_counted_and_recovered(rig):
    r = await rig()
    await slow_consumer(r)
    await r.assert_complete()
    assert r.metric("blink_feed_reconnects_total", reason="ErrSlowConsume") == 1


async def test_429_during_backfill_is_retried(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    r.fake.drop = {base + 5, base + 6}
    r.fake.rest_429 = 3
    before = r.fake.rest_requests
    r.fake.emit(20)
    await r.assert_complete()
    assert r.fake.rest_requests - before >= 4 and r.fake.rest_429 == 0
    await r.gaps_closed()
    assert [g["filled_count"] for g in await r.gaps()] == [2]


async def test_restart_mid_stream_resumes_and_refills_the_downtime(rig):
    r = await rig()
    base = r.fake.trades[-1].trade_id
    r.fake.emit(20)
    await r.assert_complete()
    r.fake.drop = {base + 25}
    r.fake.rest_429 = 10**6  # this hole cannot be filled before the stop
    r.fake.emit(10)
    await wait_until(lambda: r.tape.open_gaps() == [(base + 25, base + 25)], "hole seen")
    await r.stop()  # graceful: the writer flushes; the hole stays in the stored tape
    r.fake.drop, r.fake.rest_429 = set(), 0
    r.fake.emit(40)  # while Blink is down
    await r.start()
    r.fake.emit(10)
    await r.assert_complete()
    by = {g["detected_by"] for g in await r.gaps()}
    assert {"restart", "startup"} <= by


@pytest.mark.parametrize("bootstrap_hours", [0.0, 1.0])  # websocket first / REST first
async def test_unreachable_coinbase_at_start_says_so_once_naming_make_demo(
        make_settings, caplog, bootstrap_hours):
    port = free_port()  # nothing listens there: every connection is refused
    settings = make_settings(pairs="BTC-USD,ETH-USD", coinbase_ws_url=f"ws://127.0.0.1:{port}/",
                             coinbase_rest_url=f"http://127.0.0.1:{port}", rest_rate=50,
                             reconnect_base_seconds=0.01, reconnect_cap_seconds=0.02,
                             bootstrap_hours=bootstrap_hours)
    metrics = Metrics()
    tapes = {p: Tape(p, metrics, "coinbase") for p in settings.pairs}
    async with aiohttp.ClientSession(headers={"User-Agent": "test"}) as session:
        health = Health()
        source = CoinbaseSource(settings, metrics, health, session, warmup=Warmup())
        with caplog.at_level(logging.WARNING, logger="blink.feeds.coinbase"):
            task = asyncio.create_task(source.run(tapes))
            if bootstrap_hours:  # REST is asked first (the history search), again and again
                await wait_until(lambda: health["backfill"].failures >= 4, "REST refused")
                assert source.reconnects == 0  # (the websocket was not tried yet)
            else:
                await wait_until(lambda: source.reconnects >= 5, "five failed connections")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    hints = [r.getMessage() for r in caplog.records if "make demo" in r.getMessage()]
    assert len(hints) == 1, hints
    assert "cannot reach Coinbase" in hints[0] and str(port) in hints[0]
