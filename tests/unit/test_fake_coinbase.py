"""The fake Coinbase Exchange itself behaves as spec §6 says (so the feed tests are honest)."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import aiohttp
import pytest

from tests.fakes import serve_fake, ws_url

SUB = {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches", "heartbeat"]}
TIME6 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def frames(ws, n: int, skip=("heartbeat",)) -> list[dict]:
    out = []
    while len(out) < n:
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        m = json.loads(msg.data)
        if m["type"] not in skip:
            out.append(m)
    return out


async def test_subscribe_last_match_then_typed_consecutive_matches(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=50)
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server), compress=15) as ws:
        assert ws.compress  # permessage-deflate offered and accepted
        await ws.send_json(SUB)
        sub, last = await frames(ws, 2)
        assert sub["type"] == "subscriptions"
        assert {c["name"] for c in sub["channels"]} == {"matches", "heartbeat"}
        assert all(c["account_ids"] is None for c in sub["channels"])
        assert last["type"] == "last_match" and last["trade_id"] == fake.trades[-1].trade_id
        new = fake.emit(6)
        got = await frames(ws, 6)
    assert [m["trade_id"] for m in got] == [t.trade_id for t in new]
    assert [m["trade_id"] for m in got] == list(range(got[0]["trade_id"], got[0]["trade_id"] + 6))
    seqs = [last["sequence"]] + [m["sequence"] for m in got]
    assert all(b - a > 1 for a, b in zip(seqs, seqs[1:], strict=False))  # rising, with jumps
    for m, t in zip(got, new, strict=True):
        assert m["type"] == "match" and isinstance(m["trade_id"], int)
        assert isinstance(m["sequence"], int) and isinstance(m["price"], str)
        assert Decimal(m["price"]) == t.price and Decimal(m["size"]) == t.size
        assert m["side"] == t.side and m["side"] in ("buy", "sell")
        assert TIME6.match(m["time"]) and m["product_id"] == "BTC-USD"
        uuid.UUID(m["maker_order_id"]), uuid.UUID(m["taker_order_id"])


async def test_object_form_subscriptions_accumulate_and_unsubscribe(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=5)
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server)) as ws:
        await ws.send_json({"type": "subscribe",
                            "channels": [{"name": "heartbeat", "product_ids": ["BTC-USD"]}]})
        (sub,) = await frames(ws, 1)
        assert [c["name"] for c in sub["channels"]] == ["heartbeat"]
        await ws.send_json({"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["matches"]})
        sub, last = await frames(ws, 2)
        assert {c["name"] for c in sub["channels"]} == {"heartbeat", "matches"}
        assert last["type"] == "last_match"
        await ws.send_json({"type": "unsubscribe", "product_ids": ["BTC-USD"],
                            "channels": ["heartbeat"]})
        (sub,) = await frames(ws, 1)
        assert [c["name"] for c in sub["channels"]] == ["matches"]


async def test_errors_once_per_channel_and_the_socket_stays_open(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=5)
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server)) as ws:
        await ws.send_json({**SUB, "product_ids": ["BTC-USD", "NOPE-USD", "LUNA-USD"]})
        got = await frames(ws, 6)
        errors = [m["reason"] for m in got if m["type"] == "error"]
        assert sorted(errors) == sorted(["NOPE-USD is not a valid product"] * 2
                                        + ["LUNA-USD is delisted"] * 2)
        assert {m["type"] for m in got} == {"error", "subscriptions", "last_match"}
        await ws.send_json({"type": "subscribe", "product_ids": ["BTC-USD"],
                            "channels": ["level2"]})
        await ws.send_json({"type": "subscribe", "product_ids": ["BTC-USD"]})
        auth, nochan = await frames(ws, 2)
        assert "require authentication" in auth["reason"]
        assert nochan["reason"] == "No channels provided"
        fake.emit(1)
        (m,) = await frames(ws, 1)
        assert m["type"] == "match"  # still subscribed, still open


async def test_no_subscribe_in_time_closes_with_the_configured_code(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, subscribe_timeout=0.2,
                                    subscribe_timeout_code=4001)
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server)) as ws:
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 4001


async def test_heartbeats_report_the_newest_generated_id(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=5, heartbeat_interval=0.05)
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server)) as ws:
        await ws.send_json(SUB)
        await frames(ws, 2)
        new = fake.emit(5)
        fake.drop.update(t.trade_id for t in new)  # nothing more on the wire...
        fake.emit(3)
        hb = (await frames(ws, 1, skip=("match",)))[0]
        hb = (await frames(ws, 1, skip=("match",)))[0]  # ...heartbeats still tell the truth
        assert hb["type"] == "heartbeat" and hb["last_trade_id"] == fake.trades[-1].trade_id
        assert isinstance(hb["sequence"], int) and hb["product_id"] == "BTC-USD"
        assert TIME6.match(hb["time"])
        fake.heartbeat_zero = True
        hb = (await frames(ws, 1, skip=("match",)))[0]
        assert hb["last_trade_id"] == 0


async def test_wire_faults_drop_duplicate_reorder_and_noise(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=5)
    async with aiohttp.ClientSession() as s, s.ws_connect(ws_url(server)) as ws:
        await ws.send_json(SUB)
        await frames(ws, 2)
        base = fake.trades[-1].trade_id
        fake.drop, fake.duplicate, fake.reorder = {base + 2}, {base + 4}, {base + 5}
        fake.noise = True
        fake.emit(7)
        got = await frames(ws, 1 + 7 + 7)  # made-up type, tickers, 7 matches (1 drop, 1 dup)
    kinds = [m["type"] for m in got]
    assert "brand_new_type" in kinds and kinds.count("ticker") == 7
    matches = [m for m in got if m["type"] == "match"]
    assert all("extra_key" in m for m in matches)
    offs = [m["trade_id"] - base for m in matches]
    assert offs == [1, 3, 4, 6, 5, 7, 4]


async def _after_text(ws) -> aiohttp.WSMessage:
    """The first non-text message (heartbeats already queued may come before it)."""
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return msg


async def test_stall_abort_clean_close_and_slow_consume(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=5, heartbeat_interval=0.05)
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(ws_url(server)) as ws:
            await ws.send_json(SUB)
            await frames(ws, 3, skip=())  # subscriptions, last_match, a heartbeat
            fake.stall_all()
            fake.emit(3)
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.4)  # open, but silent: no heartbeats either
        async with s.ws_connect(ws_url(server)) as ws:
            await ws.send_json(SUB)
            await frames(ws, 2)
            fake.abort_all()
            msg = await _after_text(ws)
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert ws.close_code == 1006  # no close frame
        for reason in ("", "deprecated hostname"):
            async with s.ws_connect(ws_url(server)) as ws:
                await ws.send_json(SUB)
                await frames(ws, 2)
                fake.close_all(1000, reason)
                msg = await _after_text(ws)
                assert msg.type is aiohttp.WSMsgType.CLOSE
                assert (msg.data, msg.extra) == (1000, reason)
        fake.slow_consume_limit = 10
        async with s.ws_connect(ws_url(server)) as ws:
            await ws.send_json(SUB)
            await frames(ws, 2)
            fake.emit(100)  # the backlog passes the limit before anything is sent
            (err,) = await frames(ws, 1)
            assert err["type"] == "error" and err["message"] == "ErrSlowConsume"
            msg = await _after_text(ws)
            assert msg.type is aiohttp.WSMsgType.CLOSE


async def test_disconnect_mid_burst_leaves_last_match_ahead(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, history=5)
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(ws_url(server)) as ws:
            await ws.send_json(SUB)
            await frames(ws, 2)
            new = fake.emit(10, cut_after=4)
            got = await frames(ws, 4)
            assert [m["trade_id"] for m in got] == [t.trade_id for t in new[:4]]
            assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSED,
                                                         aiohttp.WSMsgType.ERROR)
        async with s.ws_connect(ws_url(server)) as ws:
            await ws.send_json(SUB)
            _, last = await frames(ws, 2)
            assert last["trade_id"] == got[-1]["trade_id"] + 6


async def test_connection_rate_is_limited(aiohttp_server):
    fake, server = await serve_fake(aiohttp_server, ws_rate=0.5, ws_burst=2)
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.ws_connect(ws_url(server)):
                pass
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(ws_url(server))
        assert e.value.status == 429 and fake.refused == 1
