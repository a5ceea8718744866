"""The dashboard in headless Chromium, against an app whose state the test fills by hand.

Checks: no console errors and no request leaving localhost; the chart draws; the pill moves
Warming up -> Normal -> Anomaly as the state changes; a pushed anomaly shows up as a chart
marker and a table row; the token flow; the fallback to polling when the push channel breaks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from blink.runtime import keys
from tests.support.browser import Watched, chart_trace_points, open_page, rendered_markers
from tests.support.web import FakeModel, fill_latest, insert_event, insert_features, serve

pytestmark = pytest.mark.e2e
WAIT = 15_000  # ms: generous upper bound for a condition the page will reach


async def test_dashboard_live_updates(browser, blink_app):
    app, base = await blink_app()
    latest, events = app[keys.LATEST], app[keys.EVENTS]
    w = await open_page(browser, f"{base}/demo")
    page = w.page
    await expect(page.locator("#conn")).to_have_attribute("data-mode", "live", timeout=WAIT)
    assert await page.text_content("#pill") == "Warming up"
    # the badge is relabelled by the first status update (the page is served with the raw name)
    await expect(page.locator("#source")).to_have_text("Synthetic", timeout=WAIT)

    # the detector warms up: features stored, a model scores, a tick is pushed
    now = datetime.now(UTC).replace(microsecond=0)
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", now, 900)
    serve(app, FakeModel())
    fill_latest(latest, as_of=now)
    events.publish("tick", {"price": latest.price, "score_raw": latest.score_raw})
    await expect(page.locator("#pill")).to_have_text("Normal", timeout=WAIT)
    # 900 rows 1 s apart in the 1 h range: buckets sized on the data present, 1 s
    await expect(page.locator("#chart")).to_have_attribute("data-points", "900", timeout=WAIT)
    assert await page.locator("#chart .main-svg").count() >= 1  # Plotly drew
    assert await chart_trace_points(page, "Price") == int(
        await page.get_attribute("#chart", "data-points"))
    assert await page.locator("[data-title='Share chart...']").count() == 0  # no cloud upload
    assert await page.locator("#anomalies tbody tr.empty").count() == 1
    assert "v7" in await page.text_content("#r-model")

    # an anomaly: flagged rows, an event row, the state, a push
    async with app[keys.POOL].acquire() as conn:
        later = now + timedelta(seconds=20)
        await insert_features(conn, "BTC-USD", later, 20, anomalous=(5, 6, 7))
        event_id = await insert_event(conn, "BTC-USD", later - timedelta(seconds=7), seconds=2)
    fill_latest(latest, as_of=later, anomaly=True)
    events.publish("anomaly_start", {"id": event_id})
    await expect(page.locator(f"#anomalies tbody tr[data-id='{event_id}']")).to_have_count(
        1, timeout=WAIT)
    await expect(page.locator("#pill")).to_have_text("Anomaly", timeout=WAIT)
    row = await page.text_content(f"#anomalies tbody tr[data-id='{event_id}']")
    assert "ret_5s" in row and "-0.720" in row
    await page.click("button[data-minutes='5']")
    await expect(page.locator("button[data-minutes='5']")).to_have_attribute(
        "aria-pressed", "true", timeout=WAIT)
    await expect(page.locator("#chart")).to_have_attribute("data-points", "300", timeout=WAIT)
    assert await chart_trace_points(page, "Anomaly event") == 1
    assert await chart_trace_points(page, "Anomalous") == 3  # 1 s rows: nothing merged
    assert await rendered_markers(page) == 4
    await w.screenshot("dashboard_fixture.png")
    assert w.errors == []
    assert w.foreign_requests() == []
    assert any("/static/vendor/plotly.min.js" in u for u in w.requests)


async def test_dashboard_token_and_polling_fallback(browser, blink_app):
    app, base = await blink_app(api_token="tok-e2e-123456")
    serve(app, FakeModel())
    now = datetime.now(UTC).replace(microsecond=0)
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", now, 120)
    fill_latest(app[keys.LATEST], as_of=now)
    context = await browser.new_context()
    page = await context.new_page()
    w = Watched(page)
    await page.route("**/api/stream*", lambda route: route.abort())  # the push channel is down
    await page.goto(f"{base}/demo#token=tok-e2e-123456")
    await expect(page.locator("#pill")).to_have_text("Normal", timeout=WAIT)
    assert "token" not in page.url  # the token left the address bar
    await expect(page.locator("#conn")).to_have_attribute("data-mode", "polling", timeout=WAIT)
    assert "Polling" in await page.text_content("#conn")
    assert await page.evaluate("sessionStorage.getItem('blink.token')") == "tok-e2e-123456"
    assert w.foreign_requests() == []
    assert [e for e in w.errors if "api/stream" not in e] == []  # only the aborted stream

    # without the token the page says so and asks for it
    fresh = await (await browser.new_context()).new_page()
    await fresh.goto(f"{base}/demo")
    await expect(fresh.locator("#token-form")).to_be_visible(timeout=WAIT)
    assert "token" in (await fresh.text_content("#banner-text")).lower()
