"""Bad websocket frames through the REAL Coinbase client against the fake exchange.

Invalid JSON, wrong types, missing fields, out-of-range values, binary frames and a huge frame,
interleaved with a real burst: each is counted in `blink_feed_bad_messages_total{kind}` and
skipped; the connection survives every frame except the huge one (aiohttp closes it with
1009, Blink reconnects and refills the ids from REST); the stored tape equals the generated
tape, so no real trade is lost.
"""

from __future__ import annotations

import json

from blink.feeds.coinbase import MAX_FRAME_BYTES
from tests.support.waiting import wait_until

MATCH = {"type": "match", "trade_id": 5, "maker_order_id": "m", "taker_order_id": "t",
         "side": "buy", "size": "0.1", "price": "84000.00", "product_id": "BTC-USD",
         "sequence": 1, "time": "2026-01-05T12:00:00.000000Z"}


def match(**change) -> str:
    body = {**MATCH, **change}
    return json.dumps({k: v for k, v in body.items() if v is not ...})


# (frame, kind it is counted as)
BAD = [
    ("not json{", "json"),
    ('{"type": "match", "trade_id": 1,', "json"),
    ("", "json"),
    ("[1, 2, 3]", "shape"),
    ('"match"', "shape"),
    ("null", "shape"),
    (match(trade_id="5"), "match"),
    (match(trade_id=True), "match"),
    (match(trade_id=-3), "match"),
    (match(trade_id=2**64), "match"),
    (match(price=84000.0), "match"),
    (match(price="NaN"), "match"),
    (match(price="1e200000"), "match"),  # would overflow PostgreSQL's numeric: a poison pill
    (match(size="-1"), "match"),
    (match(size=None), "match"),
    (match(side="up"), "match"),
    (match(time="yesterday"), "match"),
    (match(time="2026-01-05T12:00:00"), "match"),  # no zone
    (match(time=...), "match"),  # missing fields
    (match(price=...), "match"),
    (match(product_id=...), "match"),
    (json.dumps({"type": "last_match", "trade_id": 7}), "match"),
    (json.dumps({"type": "heartbeat", "last_trade_id": "12", "product_id": "BTC-USD"}),
     "heartbeat"),
    (json.dumps({"type": "heartbeat", "product_id": "BTC-USD"}), "heartbeat"),
]
IGNORED = [  # well-formed frames Blink has no use for: skipped without a count
    json.dumps({"type": "ticker", "product_id": "BTC-USD", "price": "1"}),
    json.dumps({"type": "brand_new", "x": [1, 2]}),
    match(product_id="ETH-USD", trade_id=10**9),
    json.dumps({"type": "status", "payload": "x" * 200_000}),  # big but under the limit
]


async def test_bad_frames_are_counted_and_skipped_without_losing_a_trade(rig):
    r = await rig()
    r.fake.emit(20)
    await r.fake.wait_sent()
    for i, (frame, _) in enumerate(BAD):  # interleaved with a real burst
        r.fake.send_raw(frame)
        if i % 5 == 0:
            r.fake.emit(3)
    for frame in IGNORED:
        r.fake.send_raw(frame)
    await r.fake.wait_sent()
    for conn in list(r.fake.conns):
        await conn.ws.send_bytes(b"\x00\x01binary")
        await conn.ws.send_bytes(json.dumps({"type": "match"}).encode())
    r.fake.emit(30)
    await r.assert_complete()
    want: dict[str, int] = {"binary": 2}
    for _, kind in BAD:
        want[kind] = want.get(kind, 0) + 1
    got = {k: r.metric("blink_feed_bad_messages_total", kind=k) for k in want}
    assert got == want
    assert r.fake.connections == 1  # every one of those was survivable
    assert r.metric("blink_trades_backfilled_total") == 0  # nothing had to be refilled


async def test_a_huge_frame_is_counted_the_connection_replaced_and_the_ids_refilled(rig):
    r = await rig()
    r.fake.emit(10)
    await r.fake.wait_sent()
    r.fake.send_raw('{"type": "match", "pad": "' + "x" * (MAX_FRAME_BYTES + 10) + '"}')
    r.fake.emit(40)  # sent after the huge frame on the doomed connection, or never seen
    await wait_until(lambda: r.fake.connections >= 2, "reconnected after the huge frame")
    r.fake.emit(10)
    await r.assert_complete()
    assert r.metric("blink_feed_bad_messages_total", kind="huge") == 1
    assert r.metric("blink_feed_reconnects_total", reason="message_too_big") == 1
