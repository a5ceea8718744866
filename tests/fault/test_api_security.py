"""Token auth on every data route, open routes, security headers, no token in the logs."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from aiohttp.test_utils import TestServer

from blink.runtime import keys
from blink.web import security
from tests.support.web import FakeModel, fill_latest, serve, web_app

TOKEN = "s3cret-token-for-tests"
ROW = {"ret_1s": 0.1, "ret_5s": -0.2, "vol_60s": 0.3, "z_30s": 0.4}

PROTECTED = [
    ("GET", "/score", None),
    ("POST", "/score", {"features": ROW}),
    ("GET", "/demo/data?minutes=5", None),
    ("GET", "/api/anomalies", None),
    ("GET", "/api/products", None),
    ("GET", "/api/stream", None),
]
OPEN = ["/healthz", "/readyz", "/metrics", "/demo", "/openapi.json", "/static/dashboard.js",
        "/static/chart.js", "/static/table.js", "/static/format.js",
        "/static/dashboard.css", "/static/overview.js", "/static/vendor/plotly.min.js"]


@pytest.fixture
async def secured(pg_dsn, make_settings, aiohttp_client):
    app = web_app(make_settings(pg_dsn=pg_dsn, api_token=TOKEN))
    fill_latest(app[keys.LATEST])
    client = await aiohttp_client(app)
    serve(app, FakeModel())
    return app, client


async def _call(client, method, path, body, headers):
    r = await client.request(method, path, json=body, headers=headers)
    if path == "/api/stream" and r.status == 200:
        first = await r.content.readline()
        r.close()
        return 200, first
    return r.status, await r.json()


@pytest.mark.parametrize("method, path, body", PROTECTED)
async def test_protected_routes_need_the_token(secured, method, path, body):
    app, client = secured
    status, payload = await _call(client, method, path, body, {})
    assert status == 401 and payload == {"error": "unauthorized", "status": 401,
                                         "detail": "send 'Authorization: Bearer <token>'"}
    for wrong in ("Bearer nope", "Bearer " + TOKEN[:-1], "Basic " + TOKEN, TOKEN, "Bearer "):
        status, _ = await _call(client, method, path, body, {"Authorization": wrong})
        assert status == 401, wrong
    status, _ = await _call(client, method, path, body, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert app[keys.METRICS].registry.get_sample_value(
        "blink_http_errors_total", {"status": "401"}) == 6


async def test_401_carries_www_authenticate(secured):
    _, client = secured
    r = await client.get("/score")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


async def test_query_token_only_on_the_stream(secured):
    _, client = secured
    assert (await client.get(f"/score?token={TOKEN}")).status == 401
    assert (await client.get("/api/stream?token=wrong")).status == 401
    r = await client.get(f"/api/stream?token={TOKEN}")
    assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
    r.close()


@pytest.mark.parametrize("path", OPEN)
async def test_open_routes_stay_open(secured, path):
    _, client = secured
    r = await client.get(path)
    assert r.status in (200, 503), path  # /readyz may say "not ready", never 401


async def test_token_compare_is_constant_time_helper():
    assert security.token_ok("abc", "abc") and not security.token_ok("abc", "abd")
    assert not security.token_ok("abc", "") and not security.token_ok("abc", "abcd")


@pytest.mark.parametrize("path", ["/healthz", "/score", "/demo", "/demo/data", "/nope",
                                  "/static/dashboard.js", "/static/vendor/plotly.min.js",
                                  "/static/missing.js", "/metrics", "/api/anomalies?limit=0"])
async def test_security_headers_everywhere(pg_dsn, make_settings, aiohttp_client, path):
    client = await aiohttp_client(web_app(make_settings(pg_dsn=pg_dsn)))
    r = await client.get(path)
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline' " not in csp.split("script-src")[1] \
        .split(";")[0] and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    if r.status >= 400:
        assert r.headers["Content-Type"].startswith("application/json")


async def test_dashboard_page_has_no_inline_script_and_escapes(pg_dsn, make_settings,
                                                                aiohttp_client):
    # (PAIRS now refuses such product ids; the page must escape whatever it shows anyway,
    # the overview's cards too)
    settings = dataclasses.replace(make_settings(pg_dsn=pg_dsn), pair="<b>X</b>",
                                   pairs=("<b>X</b>", "<i>Y</i>"))
    client = await aiohttp_client(web_app(settings))
    html = await (await client.get("/demo")).text()
    assert "<b>X</b>" not in html and "&lt;b&gt;X&lt;/b&gt;" in html  # autoescaped
    assert "<i>" not in html and 'data-product="&lt;i&gt;Y&lt;/i&gt;"' in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/static/' in attrs and body.strip() == ""
                           for attrs, body in scripts)
    assert re.search(r"\son[a-z]+\s*=", html) is None  # no inline handlers (onclick=...)
    assert "style=" not in html


async def test_token_never_logged(pg_dsn, make_settings, aiohttp_client, caplog):
    app = web_app(make_settings(pg_dsn=pg_dsn, api_token=TOKEN))
    server = TestServer(app)
    await server.start_server(access_log_class=security.AccessLogger)  # as serve.py should
    client = await aiohttp_client(server)
    caplog.set_level(logging.DEBUG)
    await client.get(f"/api/stream?token={TOKEN}x")
    await client.get("/score", headers={"Authorization": f"Bearer {TOKEN}"})
    await client.post("/score", data=TOKEN, headers={"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in caplog.text
    assert "GET /api/stream 401" in caplog.text  # the access log still says what happened
