"""GET /api/stream: Server-Sent Events from the broadcaster, heartbeats, clean close."""

from __future__ import annotations

import json

import pytest

from blink.runtime import keys
from blink.web import stream
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




async def test_stream_pushes_broadcast_messages(live):
    app, client = live
    r = await client.get("/api/stream")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/event-stream"
    assert r.headers["Cache-Control"].startswith("no-cache")
    assert (await r.content.readline()).startswith(b"retry: ")
    assert await read_event(r) == ("hello", {"source": "synthetic", "product_id": "BTC-USD"})
    await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
    app[keys.EVENTS].publish("tick", {"price": 97000.5, "score_raw": 0.4})
    app[keys.EVENTS].publish("anomaly_start", {"id": 3, "peak_score": 4.2})
    assert await read_event(r) == ("tick", {"price": 97000.5, "score_raw": 0.4})
    assert await read_event(r) == ("anomaly_start", {"id": 3, "peak_score": 4.2})
    r.close()


async def test_stream_heartbeat_and_lag(live, monkeypatch):
    monkeypatch.setattr(stream, "HEARTBEAT", 0.05)
    app, client = live
    r = await client.get("/api/stream")
    await r.content.readline()
    assert (await read_event(r))[0] == "hello"
    assert await read_event(r) == ("comment", {"text": "heartbeat"})
    for i in range(300):  # more than the subscriber queue holds: the client is told it lagged
        app[keys.EVENTS].publish("tick", {"i": i})
    kinds = set()
    for _ in range(300):
        kind, _data = await read_event(r)
        kinds.add(kind)
        if kind == "lag":
            break
    assert "lag" in kinds
    r.close()


async def test_stream_ends_cleanly_on_shutdown(live):
    app, client = live
    r = await client.get("/api/stream")
    await r.content.readline()
    assert (await read_event(r))[0] == "hello"
    await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
    await app.shutdown()  # what run_app does on SIGTERM, before waiting for handlers
    assert await read_event(r) == ("eof", None)
    assert app[keys.EVENTS].subscribers == 0


async def test_stream_unsubscribes_when_client_leaves(live, monkeypatch):
    monkeypatch.setattr(stream, "HEARTBEAT", 0.02)
    app, client = live
    r = await client.get("/api/stream")
    await r.content.readline()
    await wait_until(lambda: app[keys.EVENTS].subscribers == 1)
    r.close()
    await wait_until(lambda: app[keys.EVENTS].subscribers == 0)
