"""The dashboard tests' fixtures: headless Chromium, and the web app with state filled by hand."""

from __future__ import annotations

import pytest
from playwright.async_api import async_playwright

from tests.support.browser import ARGS, CHROMIUM, require_chromium
from tests.support.web import web_app


@pytest.fixture
async def browser():
    require_chromium()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


@pytest.fixture
async def blink_app(pg_dsn, make_settings, aiohttp_server):
    """start(prepare=None, **settings) -> (app, base URL) on the synthetic source; `prepare(app)`
    runs before the app starts (e.g. to add per-product state)."""
    async def start(prepare=None, **overrides):
        app = web_app(make_settings(pg_dsn=pg_dsn, source="synthetic", **overrides))
        if prepare is not None:
            prepare(app)
        server = await aiohttp_server(app)
        return app, f"http://127.0.0.1:{server.port}"
    return start
