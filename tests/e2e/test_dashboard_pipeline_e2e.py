"""The dashboard against a whole running Blink on the synthetic feed (a subprocess).

`python -m blink run --source synthetic --speed N` on this test's own database, with training
settings small enough that a model appears within seconds. In headless Chromium: the page loads
with no console error and no request leaving localhost, the chart draws, the pill moves from
Warming up to Normal, and an injected anomaly shows up as a chart marker and a table row.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.async_api import async_playwright, expect

from tests.support.browser import ARGS, CHROMIUM, Watched, chart_trace_points, require_chromium

pytestmark = pytest.mark.e2e
REQUIRE = os.environ.get("BLINK_REQUIRE_SERVICES") == "1"
SPEED = 60  # event time runs 60x wall time: the first anomaly is 2.5-4 event minutes in
ENV = {  # a model after ~2 event minutes; retrain every 10 event minutes
    "BLINK_MIN_HISTORY_SECONDS": "60", "BLINK_MIN_TRADES": "30",
    "BLINK_TRAIN_MIN_ROWS": "90", "BLINK_RETRAIN_SECONDS": "600",
    "BLINK_N_ESTIMATORS": "50", "BLINK_REGISTRY_POLL_SECONDS": "2",
    "MLFLOW_DISABLE_TELEMETRY": "true", "LOG_LEVEL": "INFO",
    # the synthetic stream injects an anomaly every 10-20 event minutes (~100 a day): a budget
    # of that rate, as `make demo` runs it (the default 2 a day is for a market)
    "BLINK_ALERTS_PER_DAY": "100",
}
STATES = {"Warming up", "Normal", "Anomaly", "Feed down"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())
    except OSError as e:  # urllib's HTTPError (503 from /readyz) carries the body too
        body = getattr(e, "read", None)
        return json.loads(body()) if body else None


@pytest.fixture
def blink_process(pg_dsn, tmp_path):
    port = _port()
    env = {**os.environ, **ENV, "PG_DSN": pg_dsn, "BLINK_DATA_DIR": str(tmp_path / "data")}
    for name in ("REDIS_URL", "REDIS_HOST", "MLFLOW_TRACKING_URI", "BLINK_API_TOKEN"):
        env.pop(name, None)
    log = (tmp_path / "blink.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "blink", "run", "--source", "synthetic",
                             "--speed", str(SPEED), "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, (tmp_path / "blink.log").read_text()
            if _get(f"{base}/healthz"):
                break
            time.sleep(0.1)
        ready = _get(f"{base}/readyz") or {}
        if "synthetic" not in ready.get("components", {}) and not REQUIRE:
            pytest.skip("the synthetic feed is not wired into create_app yet")
        yield base, tmp_path / "blink.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def test_dashboard_on_the_synthetic_pipeline(blink_process):
    require_chromium()
    base, log_path = blink_process
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        w = Watched(await context.new_page())
        page = w.page
        await page.goto(f"{base}/demo")
        seen: list[str] = []
        for _ in range(1200):  # the pill's states in order (at most ~2 minutes)
            text = await page.text_content("#pill")
            if not seen or seen[-1] != text:
                seen.append(text)
            if text == "Normal" or (text == "Anomaly" and "Warming up" in seen):
                break
            await asyncio.sleep(0.1)
        assert seen[0] == "Warming up" and seen[-1] in ("Normal", "Anomaly"), \
            (seen, log_path.read_text()[-3000:])
        assert set(seen) <= STATES
        await expect(page.locator("#conn")).to_have_attribute("data-mode", "live")
        await page.click("button[data-minutes='1440']")
        row = page.locator("#anomalies tbody tr[data-id]").first
        await expect(row).to_be_visible(timeout=150_000)  # an injected anomaly is detected
        await expect(page.locator("#chart")).not_to_have_attribute("data-events", "0")
        assert await chart_trace_points(page, "Anomaly event") >= 1
        assert await page.locator("#chart .main-svg").count() >= 1
        assert int(await page.get_attribute("#chart", "data-points")) > 10
        await w.screenshot("dashboard_pipeline.png")
        await browser.close()
    assert w.errors == [], w.errors
    assert w.foreign_requests() == []
