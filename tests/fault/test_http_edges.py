"""Requests that used to get a 500 or aiohttp's own plain-text answer, connection limits, and
the log under a flood of bad requests. Every answer: JSON with Blink's security headers."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import zlib

import pytest

from blink.runtime import keys
from blink.runtime.logs import RateLimited
from blink.web import runner as server
from blink.web import security
from tests.support.web import BlinkTestServer, FakeModel, fill_latest, serve, start_client, web_app

TOKEN = "s3cret-token-for-tests"
ROW = {"ret_1s": 0.1, "ret_5s": -0.2, "vol_60s": 0.3, "z_30s": 0.4}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(pg_dsn, make_settings, aiohttp_client):
    app, client = await start_client(aiohttp_client, make_settings(pg_dsn=pg_dsn))
    fill_latest(app[keys.LATEST])
    return client


@pytest.fixture(autouse=True)
def fresh_log_limits(monkeypatch):
    """Each test sees the first line of every kind (the limiters are per module)."""
    for module in (security, server):
        monkeypatch.setattr(module, "_limited", RateLimited(module.log))


async def error_of(r, status: int) -> dict:
    raw = await r.read()
    assert r.status == status, raw[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    body = json.loads(raw)
    assert body["status"] == status and b"Traceback" not in raw
    return body


@pytest.mark.parametrize("path, method", [("/score", "GET"), ("/score", "POST"),
                                          ("/demo/data", "GET"), ("/api/anomalies", "GET"),
                                          ("/api/stream", "GET")])
async def test_a_token_that_is_not_utf8_is_401(pg_dsn, make_settings, aiohttp_client, path,
                                                method, caplog):
    app = web_app(make_settings(pg_dsn=pg_dsn, api_token=TOKEN))
    client = await aiohttp_client(BlinkTestServer(app))
    serve(app, FakeModel())
    for value in (b"Bearer \xff", b"Bearer " + TOKEN.encode() + b"\xff", b"\xff\xfe"):
        r = await client.request(method, path, json={"features": ROW},
                                 headers={"Authorization": value.decode("latin-1")})
        assert (await error_of(r, 401))["error"] == "unauthorized"
    assert "Traceback" not in caplog.text


async def test_deeply_nested_json_is_400(client):
    for body in ("[" * 1000 + "]" * 1000, '{"features": ' + '{"a": ' * 1000 + "1" + "}" * 1001):
        r = await client.post("/score", data=body, headers=JSON)
        assert (await error_of(r, 400))["error"] == "invalid JSON: nested too deeply"


async def test_a_huge_number_is_400_in_our_words(client):
    r = await client.post("/score", data='{"features": {"ret_1s": ' + "7" * 5000 + "}}",
                          headers=JSON)
    body = await error_of(r, 400)
    assert body["error"] == "invalid JSON: a number has too many digits"
    assert "sys.set_int_max_str_digits" not in json.dumps(body)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
async def test_a_body_that_does_not_match_its_content_encoding_is_400_an_unknown_one_415(
        client, encoding, caplog):
    caplog.set_level(logging.INFO)
    r = await client.post("/score", data=b'{"features": {}}' * 4,
                          headers={**JSON, "Content-Encoding": encoding})
    # gzip, deflate: the body does not decode (400); others: aiohttp refuses the coding in
    # the head, and HTTP's word for a coding the server cannot decode is 415
    known = encoding in ("gzip", "deflate")
    error = (await error_of(r, 400 if known else 415))["error"]
    assert error == ("unreadable body" if known else "unsupported Content-Encoding")
    assert "Traceback" not in caplog.text


async def test_a_compressed_body_that_decodes_is_scored(client):
    raw = json.dumps({"features": ROW}).encode()
    for encoding, data in (("gzip", gzip.compress(raw)), ("deflate", zlib.compress(raw))):
        r = await client.post("/score", data=data,
                              headers={**JSON, "Content-Encoding": encoding})
        assert r.status == 200 and "score_raw" in await r.json(), encoding


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
async def test_score_post_wants_json_content_type(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    r = await client.post("/score", data=json.dumps({"features": ROW}).encode(),
                          headers=headers, skip_auto_headers=["Content-Type"])
    assert (await error_of(r, 415))["accept"] == ["application/json"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "application/merge-patch+json", "APPLICATION/JSON"])
async def test_score_post_takes_json_types(client, content_type):
    r = await client.post("/score", data=json.dumps({"features": ROW}),
                          headers={"Content-Type": content_type})
    assert r.status == 200


@pytest.mark.parametrize("value", [" 1 ", "1 ", "+5", "1_0", "٣", "５", "0x10", "-1", "1.0"])
async def test_query_integers_are_ascii_digits_only(client, value):
    r = await client.get("/demo/data", params={"minutes": value})
    assert (await error_of(r, 400))["field"] == "minutes"
    r = await client.get("/api/anomalies", params={"limit": value})
    assert (await error_of(r, 400))["field"] == "limit"


async def test_query_integers_too_long_are_out_of_range(client):
    r = await client.get("/demo/data", params={"minutes": "9" * 5000})
    body = await error_of(r, 400)
    assert body["error"] == "'minutes' must be between 1 and 1440"
    r = await client.get("/demo/data", params={"minutes": "0005"})
    assert r.status == 200 and (await r.json())["minutes"] == 5


@pytest.mark.parametrize("value", ["bytes=-0", "bytes=-00"])
async def test_a_zero_length_suffix_range_is_416(client, value):
    for path in ("/static/vendor/plotly.min.js", "/static/dashboard.js"):
        r = await client.get(path, headers={"Range": value})
        await error_of(r, 416)
    r = await client.get("/static/dashboard.js", headers={"Range": "bytes=-10"})
    assert r.status == 206 and len(await r.read()) == 10


def raw_request(port: int, data: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send bytes, read the answer until the server closes: (status line, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return lines[0].encode(), headers, body


BAD = {
    "bad method": b"G\x01T /score HTTP/1.1\r\nHost: x\r\n\r\n",
    "long header line": b"GET /score HTTP/1.1\r\nHost: x\r\nX-Pad: SECRETECHO"
                        + b"a" * 9000 + b"\r\n\r\n",
    "long request line": b"GET /SECRETECHO" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad content-length": b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: SECRETECHO\r\n\r\n",
    "two content-lengths": b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                           b"Content-Length: 2\r\n\r\nab",
}


@pytest.mark.parametrize("name", sorted(BAD))
async def test_requests_aiohttp_cannot_parse_get_blinks_json(client, name, caplog):
    app = client.server.app
    status, headers, body = await asyncio.to_thread(raw_request, client.port, BAD[name])
    assert status.split()[1] == b"400", (status, body)
    assert headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    payload = json.loads(body)
    assert payload["status"] == 400 and payload["error"] in server.PROBLEMS.values()
    assert b"SECRETECHO" not in body and b"\x01" not in body  # nothing echoed back
    assert "Traceback" not in caplog.text
    assert app[keys.METRICS].registry.get_sample_value(
        "blink_http_errors_total", {"status": "400"}) == 1


async def test_a_flood_of_bad_requests_logs_one_line_per_kind(client, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in range(30):
        await asyncio.to_thread(raw_request, client.port, BAD["bad method"])
        await asyncio.to_thread(raw_request, client.port, BAD["long header line"])
        r = await client.post("/score", data=b"xx", headers={**JSON, "Content-Encoding": "gzip"})
        assert r.status == 400
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    kinds = sorted(r.getMessage().split(":")[1].split("(")[0].strip() for r in lines)
    assert len(lines) <= 3, [r.getMessage() for r in lines]
    assert len(set(kinds)) == len(kinds)
    assert all(r.exc_info is None for r in lines)  # a client's fault has no traceback


async def test_idle_and_slow_header_connections_are_closed(pg_dsn, make_settings,
                                                          aiohttp_client, monkeypatch):
    assert server.KEEPALIVE_SECONDS <= 75
    monkeypatch.setattr(server, "KEEPALIVE_SECONDS", 0.3)
    app = web_app(make_settings(pg_dsn=pg_dsn))
    client = await aiohttp_client(BlinkTestServer(app))

    def closed_by_server(first: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", client.port), timeout=30) as s:
            s.sendall(first)  # then nothing more: the server must hang up
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    assert await asyncio.to_thread(closed_by_server, b"") == b""  # idle from the start
    assert await asyncio.to_thread(closed_by_server, b"GET /healthz HTTP/1.1\r\nHo") == b""
    kept = await asyncio.to_thread(closed_by_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kept.startswith(b"HTTP/1.1 200")  # answered, then closed once idle


async def test_a_body_that_never_arrives_is_408(client, monkeypatch):
    from blink.web import scoring

    monkeypatch.setattr(scoring, "BODY_SECONDS", 0.2)

    def trickle() -> bytes:
        with socket.create_connection(("127.0.0.1", client.port), timeout=30) as s:
            s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{")
            out = b""
            while b"\r\n\r\n" not in out or not out.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out

    out = await asyncio.to_thread(trickle)
    assert out.startswith(b"HTTP/1.1 408") and b'"status": 408' in out
