"""Headless Debian Chromium driven by Playwright, watching for console errors and for any
request that leaves localhost. A missing Chromium fails under BLINK_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("BLINK_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def require_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    why = f"{CHROMIUM} not found (apt-get install chromium)"
    if os.environ.get("BLINK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"Chromium missing and BLINK_REQUIRE_SERVICES=1: {why}")
    pytest.skip(why)


class Watched:
    """A page plus what it did: console errors, page errors, every request URL."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(
            f"console: {m.text} @ {m.location.get('url', '')}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests
                if not u.startswith(("data:", "blob:")) and urlsplit(u).hostname not in LOCAL_HOSTS]

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await self.page.screenshot(path=str(path), full_page=True)
        return path


async def open_page(browser, url: str, width: int = 1440, height: int = 900) -> Watched:
    """A watched page in a fresh browser context of that viewport, at `url`."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    watched = Watched(await context.new_page())
    await watched.page.goto(url)
    return watched


async def chart_trace_points(page, name: str) -> int:
    """How many points the named Plotly trace of the chart holds."""
    return await page.evaluate(
        """(name) => {
             const gd = document.getElementById('chart');
             const t = (gd.data || []).find((t) => t.name === name);
             return t ? t.x.length : -1;
           }""", name)


async def rendered_markers(page) -> int:
    """Marker points Plotly actually drew (SVG paths) for the anomaly traces."""
    return await page.evaluate(
        """() => document.querySelectorAll('#chart .scatterlayer .trace .points path').length""")
