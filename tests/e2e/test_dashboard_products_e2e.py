"""The dashboard with several products, in headless Chromium, against an app whose state the
test fills by hand: the overview (a card per product: state, price, sparkline, last anomaly),
the switcher (the URL keeps the choice: reload, back and forward), the stream events of other
products kept out of the single-product view; one product: no overview. And the layout: the
chart's date axis never covers the "Recent anomalies" heading (bounding boxes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from blink.runtime import keys
from blink.web import api
from tests.support.browser import Watched, open_page
from tests.support.overview import PAIRS, per_product
from tests.support.web import FakeModel, fill_latest, insert_event, insert_features, serve

pytestmark = pytest.mark.e2e
WAIT = 15_000  # ms: generous upper bound for a condition the page will reach
CARD = "#cards .card[data-product='{}']"

# every value #r-price shows, in order (the test reads it back)
WATCH_PRICE = """() => {
  window.__prices = [];
  new MutationObserver(() => window.__prices.push(document.getElementById('r-price').textContent))
    .observe(document.getElementById('r-price'), {childList: true, characterData: true,
                                                   subtree: true});
}"""

# the heading, the chart's div, its SVG and its lowest x tick label, as page coordinates
BOXES = """() => {
  const box = (el) => el.getBoundingClientRect();
  const ticks = [...document.querySelectorAll('#chart .xtick text')].map((t) => box(t).bottom);
  return {heading: box(document.querySelector('.panel h2')).top,
          chart: box(document.getElementById('chart')).bottom,
          svg: box(document.querySelector('#chart .main-svg')).bottom,
          ticks: ticks.length ? Math.max(...ticks) : null,
          cards: document.getElementById('cards')
            ? box(document.getElementById('cards')).bottom : null,
          readouts: box(document.querySelector('.readouts')).top};
}"""


async def three_products(app, table: int = 0) -> datetime:
    """BTC normal, ETH anomalous (one event), SOL warming up; `table` more events for BTC (the
    default product: its table). Returns now."""
    now = datetime.now(UTC).replace(microsecond=0)
    latests = app[keys.LATESTS]
    serve(app, FakeModel())
    fill_latest(latests["BTC-USD"], as_of=now)
    fill_latest(latests["ETH-USD"], anomaly=True, as_of=now)
    latests["ETH-USD"].price = 3_100.25
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", now, 900)
        await insert_features(conn, "ETH-USD", now, 900, anomalous=(4, 5))
        await insert_event(conn, "ETH-USD", now - timedelta(seconds=5))
        for k in range(table):
            await insert_event(conn, "BTC-USD", now - timedelta(seconds=5 + 60 * k))
    return now


def tick(product: str, price: float) -> dict:
    return {"product_id": product, "price": price, "score_raw": -0.45, "anomaly": False,
            "not_ready": None, "trade_rate": 3.0}


async def test_overview_switcher_and_url(browser, blink_app):
    app, base = await blink_app(per_product, pairs=PAIRS)
    await three_products(app)
    w = await open_page(browser, f"{base}/demo")
    page = w.page
    cards = page.locator("#cards .card")
    await expect(cards).to_have_count(3)
    assert [await c.get_attribute("data-product") for c in await cards.all()] == [
        "BTC-USD", "ETH-USD", "SOL-USD"]
    btc, eth, sol = (page.locator(CARD.format(p)) for p in ("BTC-USD", "ETH-USD", "SOL-USD"))
    await expect(eth.locator(".pill")).to_have_text("Anomaly", timeout=WAIT)
    await expect(btc.locator(".pill")).to_have_text("Normal")
    await expect(sol.locator(".pill")).to_have_text("Warming up")
    await expect(eth.locator(".card-price")).to_have_text("3,100.25")
    await expect(btc.locator(".card-price")).to_have_text("97,000.50")
    await expect(sol.locator(".card-price")).to_have_text("—")
    # 15 min of 1 s rows in ~15 s buckets; plotly drew each sparkline
    assert 60 <= int(await btc.locator(".spark").get_attribute("data-points")) <= 61
    assert await sol.locator(".spark").get_attribute("data-points") == "0"
    assert await eth.locator(".spark .main-svg").count() >= 1
    assert "peak -0.720" in await eth.locator(".card-last").text_content()
    await expect(eth.locator(".card-expl")).to_have_text("ret_5s +5.10σ")  # the first line
    await expect(sol.locator(".card-last")).to_have_text("No anomaly yet")
    await expect(sol.locator(".card-expl")).to_have_text("")
    await expect(btc).to_have_attribute("aria-current", "page")
    assert await page.locator("#market").is_hidden()  # no market context given
    await expect(page.locator("#conn")).to_have_attribute("data-mode", "live", timeout=WAIT)

    # the switcher: in place (the same document), the URL keeps the choice
    await page.evaluate("window.__sameDocument = true")
    await eth.click()
    await expect(page).to_have_url(f"{base}/demo?product=ETH-USD")
    await expect(page.locator("#brand-pair")).to_have_text("ETH-USD")
    await expect(page).to_have_title("Blink · ETH-USD")
    await expect(eth).to_have_attribute("aria-current", "page")
    assert await btc.get_attribute("aria-current") is None
    for path in ("/demo/data?", "/api/anomalies?"):
        await page.wait_for_function(  # the view asks for its product's data
            "([p]) => performance.getEntriesByType('resource').some((e) => e.name.includes(p)"
            " && e.name.includes('product=ETH-USD'))", arg=[path], timeout=WAIT)
    # and shows it: ETH's price, state and anomaly event
    await expect(page.locator("#r-price")).to_have_text("3,100.25", timeout=WAIT)
    await expect(page.locator("#pill")).to_have_text("Anomaly", timeout=WAIT)
    await expect(page.locator("#anomalies tbody tr[data-id]")).to_have_count(1, timeout=WAIT)

    # stream events: another product's move its card only; the shown product's the readouts
    await page.evaluate(WATCH_PRICE)
    app[keys.EVENTS].publish("tick", tick("SOL-USD", 151.5))
    await expect(sol.locator(".card-price")).to_have_text("151.50", timeout=WAIT)
    await expect(sol.locator(".pill")).to_have_text("Normal")
    app[keys.EVENTS].publish("tick", tick("ETH-USD", 3_200.75))
    await expect(eth.locator(".card-price")).to_have_text("3,200.75", timeout=WAIT)
    await page.wait_for_function("window.__prices.includes('3,200.75')", timeout=WAIT)
    assert "151.50" not in await page.evaluate("window.__prices")

    await sol.click()
    await expect(page).to_have_url(f"{base}/demo?product=SOL-USD")
    await page.go_back()  # back and forward switch in place (popstate)
    await expect(page).to_have_url(f"{base}/demo?product=ETH-USD")
    await expect(page.locator("#brand-pair")).to_have_text("ETH-USD")
    await expect(eth).to_have_attribute("aria-current", "page")
    await page.go_forward()
    await expect(page.locator("#brand-pair")).to_have_text("SOL-USD")
    await expect(sol).to_have_attribute("aria-current", "page")
    assert await page.evaluate("window.__sameDocument === true")

    await page.reload()  # a reload keeps the choice
    await expect(page.locator("#brand-pair")).to_have_text("SOL-USD")
    await expect(sol).to_have_attribute("aria-current", "page")
    await expect(sol.locator(".pill")).to_have_text("Warming up", timeout=WAIT)
    await page.go_back()
    await expect(page).to_have_url(f"{base}/demo?product=ETH-USD")
    await expect(page.locator("#brand-pair")).to_have_text("ETH-USD")
    await page.go_back()
    await expect(page).to_have_url(f"{base}/demo")
    await expect(page.locator("#brand-pair")).to_have_text("BTC-USD")
    await expect(btc).to_have_attribute("aria-current", "page")
    await expect(page.locator("#r-price")).not_to_have_text("—", timeout=WAIT)  # reloaded
    await w.screenshot("dashboard_products.png")
    assert w.errors == []
    assert w.foreign_requests() == []


async def test_a_quiet_product_card_says_feed_down(browser, blink_app):
    """One websocket carries every product: one can stop trading while the others go on."""
    app, base = await blink_app(per_product, pairs="BTC-USD,ETH-USD")
    serve(app, FakeModel())
    now, latests = datetime.now(UTC).replace(microsecond=0), app[keys.LATESTS]
    for product in ("BTC-USD", "ETH-USD"):
        fill_latest(latests[product], as_of=now)
        latests[product].source = "coinbase"
    latests["ETH-USD"].updated_wall -= api.FEED_STALE_SECONDS + 5  # no ETH trade for 125 s
    w = await open_page(browser, f"{base}/demo")
    eth, btc = (w.page.locator(CARD.format(p)) for p in ("ETH-USD", "BTC-USD"))
    await expect(eth.locator(".pill")).to_have_text("Feed down", timeout=WAIT)
    await expect(eth.locator(".pill")).to_have_attribute("data-state", "feed_down")
    await expect(btc.locator(".pill")).to_have_text("Normal")
    assert w.errors == []


async def test_url_opens_a_product_and_modified_click_is_a_link(browser, blink_app):
    app, base = await blink_app(per_product, pairs=PAIRS)
    await three_products(app)
    w = await open_page(browser, f"{base}/?product=ETH-USD")  # `/` keeps the product
    page = w.page
    await expect(page).to_have_url(f"{base}/demo?product=ETH-USD")
    await expect(page.locator("#brand-pair")).to_have_text("ETH-USD")
    await expect(page.locator(CARD.format("ETH-USD"))).to_have_attribute("aria-current", "page")
    assert await page.locator(CARD.format("SOL-USD")).get_attribute("href") == \
        "/demo?product=SOL-USD"
    async with page.context.expect_page() as opened:  # a ctrl-click opens a tab, as links do
        await page.locator(CARD.format("SOL-USD")).click(modifiers=["Control"])
    tab = await opened.value
    await tab.wait_for_load_state()
    assert tab.url == f"{base}/demo?product=SOL-USD"
    await expect(page).to_have_url(f"{base}/demo?product=ETH-USD")  # this page stays
    assert w.errors == []


async def test_one_product_has_no_overview(browser, blink_app):
    app, base = await blink_app()
    serve(app, FakeModel())
    now = datetime.now(UTC).replace(microsecond=0)
    async with app[keys.POOL].acquire() as conn:
        await insert_features(conn, "BTC-USD", now, 120)
    fill_latest(app[keys.LATEST], as_of=now)
    w = await open_page(browser, f"{base}/demo")
    page = w.page
    await expect(page.locator("#pill")).to_have_text("Normal", timeout=WAIT)
    assert await page.locator("#overview, #cards, .card").count() == 0
    assert not any("/api/products" in u for u in w.requests)  # nothing extra is fetched
    assert any("/demo/data?" in u and "product=BTC-USD" in u for u in w.requests)
    assert w.errors == []


@pytest.mark.parametrize("products", [1, 3])
async def test_date_axis_never_covers_the_table_heading(browser, blink_app, products):
    """A full table (drawn after the chart) used to squeeze the chart's div under plotly's
    SVG: the date axis sat on the heading. Several viewports and ranges."""
    if products == 1:
        app, base = await blink_app()
        now = datetime.now(UTC).replace(microsecond=0)
        serve(app, FakeModel())
        fill_latest(app[keys.LATEST], as_of=now)
        async with app[keys.POOL].acquire() as conn:
            await insert_features(conn, "BTC-USD", now, 900)
            for k in range(12):
                await insert_event(conn, "BTC-USD", now - timedelta(seconds=5 + 60 * k))
        url = f"{base}/demo"
    else:
        app, base = await blink_app(per_product, pairs=PAIRS)
        await three_products(app, table=12)
        url = f"{base}/demo?product=BTC-USD"
    for width, height, minutes in ((1440, 900, 60), (1024, 700, 1440), (600, 800, 5)):
        w = await open_page(browser, url, width, height)
        page = w.page
        await page.click(f"button[data-minutes='{minutes}']")
        await expect(page.locator("#anomalies tbody tr[data-id]")).to_have_count(12, timeout=WAIT)
        # drawn for the range clicked (15 min of 1 s rows: 300 points in 5 min, else 900)
        await expect(page.locator("#chart")).to_have_attribute(
            "data-points", "300" if minutes == 5 else "900", timeout=WAIT)
        await expect(page.locator("#chart .xtick text").first).to_be_visible(timeout=WAIT)
        b = await page.evaluate(BOXES)
        where = f"{products} product(s), {width}x{height}, {minutes} min: {b}"
        assert b["ticks"] is not None and b["ticks"] <= b["chart"] <= b["heading"], where
        assert b["svg"] <= b["chart"] + 1, where  # plotly's drawing fits its div
        if b["cards"] is not None:
            assert b["cards"] <= b["readouts"], where
        await w.screenshot(f"dashboard_layout_{products}p_{width}x{height}.png")
        assert w.errors == []
        await page.context.close()


async def test_market_line(browser, blink_app):
    """The market context line, from /api/products' "market" (set here on the way to the
    page, whatever the app gives)."""
    app, base = await blink_app(per_product, pairs=PAIRS)
    await three_products(app)
    context = await browser.new_context()
    page = await context.new_page()
    w = Watched(page)

    async def with_market(route):
        response = await route.fetch()
        body = await response.json()
        body["market"] = {"moving": ["BTC-USD", "ETH-USD"], "of": 3, "as_of": None}
        await route.fulfill(response=response, json=body)

    await page.route("**/api/products", with_market)
    await page.goto(f"{base}/demo")
    await expect(page.locator("#market")).to_have_text(
        "Market: 2 of 3 products moving: BTC-USD, ETH-USD", timeout=WAIT)
    assert await page.locator("#market").is_visible()
    assert w.errors == []
