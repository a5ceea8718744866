"""GET /api/stream: Server-Sent Events from the broadcaster, heartbeats, coalesced ticks,
non-reading clients cut, clean close."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from blink.runtime import keys
from blink.web import sse
from tests.support.waiting import wait_until
from tests.support.web import web_app


@pytest.fixture
async def live(pg_dsn, make_settings, aiohttp_client):
    app = web_app(make_settings(pg_dsn=pg_dsn, source="synthetic"))
    return app, await aiohttp_client(app)


async def read_event(response) -> tuple[str, dict | None]:
    """The next `event:`/`data:` block (or a comment) from an SSE response."""
    kind, data = None, None
    while True:
        line = (await response.content.readline()).decode()
        if line.startswith(":"):
            return "comment", {"text": line[1:].strip()}
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = json.loads(line.split(":", 1)[1])
        elif line == "\n" and kind:
            return kind, data
        elif line == "":
            return "eof", None


async def connected(app, client, n: int = 1):
    r = await client.get("/api/stream")
    assert r.status == 200
    assert (await r.content.readline()).startswith(b"retry: ")
    assert await read_event(r) == ("hello", {"source": "synthetic", "product_id": "BTC-USD"})
    await wait_until(lambda: len(app[keys.STREAMS].clients) == n)
    return r


async def test_stream_pushes_broadcast_messages(live):
    app, client = live
    r = await connected(app, client)
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"].startswith("no-cache")
    app[keys.EVENTS].publish("tick", {"price": 97000.5, "score_raw": 0.4})
    app[keys.EVENTS].publish("anomaly_start", {"id": 3, "peak_score": 4.2})
    assert await read_event(r) == ("tick", {"price": 97000.5, "score_raw": 0.4})
    assert await read_event(r) == ("anomaly_start", {"id": 3, "peak_score": 4.2})
    r.close()


async def test_stream_heartbeat(live, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT", 0.05)
    app, client = live
    r = await connected(app, client)
    assert await read_event(r) == ("comment", {"text": "heartbeat"})
    r.close()


async def test_ticks_are_coalesced_and_events_never_dropped(live):
    """A burst of ticks reaches a client as a few ticks ending with the latest; every
    anomaly event arrives, in order, each after the tick published before it."""
    app, client = live
    r = await connected(app, client)
    events = app[keys.EVENTS]
    for i in range(1000):
        events.publish("tick", {"i": i})
        if i in (300, 700):
            events.publish("anomaly_start" if i == 300 else "anomaly_end", {"at": i})
    got = []
    while not got or got[-1] != ("tick", {"i": 999}):
        got.append(await read_event(r))
    kinds = [k for k, _ in got]
    assert [d for k, d in got if k != "tick"] == [{"at": 300}, {"at": 700}]
    assert got[kinds.index("anomaly_start") - 1] == ("tick", {"i": 300})
    assert got[kinds.index("anomaly_end") - 1] == ("tick", {"i": 700})
    assert kinds.count("tick") < 10  # 1000 published
    r.close()


def test_a_tick_costs_nothing_per_busy_client(monkeypatch):
    """Fan-out cost does not grow with the event rate: a tick is not encoded, queued or
    woken for a client that is not idle-waiting for it (it takes the latest when due)."""
    encoded = []
    monkeypatch.setattr(sse, "frame", lambda kind, payload: encoded.append(kind) or b"x")
    hub = sse.Hub()
    joins = [hub.join(None) for _ in range(200)]
    clients = [j.__enter__() for j in joins]
    for i in range(1000):
        hub.deliver("tick", {"i": i})
    assert encoded == [] and all(not c.frames and not c.wake.is_set() for c in clients)
    assert hub.latest_tick() == b"x" and hub.latest_tick() == b"x" and encoded == ["tick"]
    hub.deliver("anomaly_start", {"id": 1})  # encoded once, queued for each (after the tick)
    assert encoded == ["tick", "anomaly_start"]
    assert all(list(c.frames) == [b"x", b"x"] for c in clients)


def test_a_client_whose_queue_fills_is_disconnected_not_trimmed():
    hub = sse.Hub()
    with hub.join(None) as client:
        for i in range(sse.QUEUE_MAX):
            hub.deliver("anomaly_start", {"id": i})
        assert client.dropped is None and len(client.frames) == sse.QUEUE_MAX
        hub.deliver("anomaly_end", {"id": 0})
        assert client.dropped and not client.frames


def stalled_stream(port: int) -> socket.socket:
    """A client that asks for the stream and never reads (a tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


async def fill(app) -> None:
    """Publish big updates until every stream handler is blocked writing to its client."""
    hub = app[keys.STREAMS]
    for i in range(sse.QUEUE_MAX // 2):  # a bounded number of tries, never a clock
        app[keys.EVENTS].publish("model", {"i": i, "pad": "x" * 200_000})
        for _ in range(10):
            await asyncio.sleep(0.01)
            if all(c.writing for c in hub.clients):
                return
    raise AssertionError("the stream handlers never blocked on a client")


async def test_shutdown_ends_streams_even_when_clients_do_not_read(live):
    """The reason SIGTERM took 22 s: a handler blocked writing to a client that stopped
    reading waited out aiohttp's shutdown timeout twice. Now every stream ends at once."""
    app, client = live
    server = client.server.runner.server
    sockets = [stalled_stream(client.port) for _ in range(3)]
    try:
        await wait_until(lambda: len(app[keys.STREAMS].clients) == 3)
        await fill(app)
        await app.shutdown()  # what the runner does first on SIGTERM
        await wait_until(lambda: not server.connections)  # every stream connection is closed
    finally:
        for s in sockets:
            s.close()


async def test_a_client_that_stops_reading_is_cut_after_the_write_timeout(live, monkeypatch):
    monkeypatch.setattr(sse, "WRITE_SECONDS", 0.2)
    app, client = live
    server = client.server.runner.server
    s = stalled_stream(client.port)
    try:
        await wait_until(lambda: len(app[keys.STREAMS].clients) == 1)
        await fill(app)
        await wait_until(lambda: not app[keys.STREAMS].clients and not server.connections)
    finally:
        s.close()


async def test_stream_ends_cleanly_on_shutdown(live):
    app, client = live
    r = await connected(app, client)
    await app.shutdown()  # what run_app does on SIGTERM, before waiting for handlers
    assert await read_event(r) == ("eof", None)
    assert not app[keys.STREAMS].clients


async def test_stream_unsubscribes_when_client_leaves(live, monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT", 0.02)
    app, client = live
    r = await connected(app, client)
    r.close()
    await wait_until(lambda: not app[keys.STREAMS].clients)


def test_one_products_ticks_never_hide_anothers_and_a_client_may_pick_one():
    hub = sse.Hub()
    every, eth = hub.join(None), hub.join(None, frozenset({"ETH-USD"}))
    every_client, eth_client = every.__enter__(), eth.__enter__()
    for i in range(5):  # interleaved: only each product's latest counts
        hub.deliver("tick", {"product_id": "BTC-USD", "i": i})
        hub.deliver("tick", {"product_id": "ETH-USD", "i": i})
    hub.deliver("tick", {"product_id": "BTC-USD", "i": 9})
    assert hub.new_ticks(every_client) == [sse.frame("tick", {"product_id": "BTC-USD", "i": 9}),
                                           sse.frame("tick", {"product_id": "ETH-USD", "i": 4})]
    assert hub.new_ticks(every_client) == []  # nothing new since
    assert hub.new_ticks(eth_client) == [sse.frame("tick", {"product_id": "ETH-USD", "i": 4})]
    hub.deliver("tick", {"product_id": "ETH-USD", "i": 5})
    hub.deliver("anomaly_start", {"product_id": "BTC-USD", "id": 1})
    hub.deliver("anomaly_start", {"product_id": "ETH-USD", "id": 2})
    # events in order, each after the ticks published before it; the filter holds
    assert list(every_client.frames) == [
        sse.frame("tick", {"product_id": "ETH-USD", "i": 5}),
        sse.frame("anomaly_start", {"product_id": "BTC-USD", "id": 1}),
        sse.frame("anomaly_start", {"product_id": "ETH-USD", "id": 2})]
    assert list(eth_client.frames) == [
        sse.frame("tick", {"product_id": "ETH-USD", "i": 5}),
        sse.frame("anomaly_start", {"product_id": "ETH-USD", "id": 2})]
    every.__exit__(None, None, None)
    eth.__exit__(None, None, None)


async def test_stream_of_one_product(pg_dsn, make_settings, aiohttp_client):
    app = web_app(make_settings(pg_dsn=pg_dsn, pairs="BTC-USD,ETH-USD"))
    client = await aiohttp_client(app)
    r = await client.get("/api/stream?product=XRP-USD")
    assert r.status == 404 and (await r.json())["products"] == ["BTC-USD", "ETH-USD"]
    r = await client.get("/api/stream?product=ETH-USD")
    assert (await r.content.readline()).startswith(b"retry: ")
    assert await read_event(r) == ("hello", {"source": "coinbase", "product_id": "BTC-USD",
                                             "products": ["ETH-USD"]})
    await wait_until(lambda: len(app[keys.STREAMS].clients) == 1)
    app[keys.EVENTS].publish("anomaly_start", {"product_id": "BTC-USD", "id": 1})
    app[keys.EVENTS].publish("anomaly_start", {"product_id": "ETH-USD", "id": 2})
    assert await read_event(r) == ("anomaly_start", {"product_id": "ETH-USD", "id": 2})
    r.close()
