"""GET /api/products: every product's state in one call (the dashboard's overview).

One entry per product, in `settings.pairs` order: its in-memory latest state (`state` as the
dashboard's pill says it, feed_down included; ready or why not, price, score, threshold,
model, trade rate), its newest anomaly event and a score
sparkline of its last SPARK_SECONDS of event time (at most SPARK_POINTS points), both read in
one query each for all products (store/reads.py). `default` is the first product (the one
/score and the dashboard show without `?product=`); `market` which products move now
(detect/market.py: {"moving", "of", "as_of"}), null with one product.
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from blink.detect import market
from blink.detect.latest import Latest
from blink.runtime import keys
from blink.store import reads as queries
from blink.times import iso_or_none
from blink.web import api, scoring

routes = web.RouteTableDef()

SPARK_SECONDS = 1800.0
SPARK_POINTS = 120


def latests(app: web.Application) -> dict[str, Latest]:
    """Every product's latest state in `settings.pairs` order."""
    return {p: app[keys.LATESTS][p] for p in app[keys.SETTINGS].pairs}


def first_line(explanation: list | None) -> str | None:
    """The first explanation line as the dashboard shows it: the model's own wording, or
    (events stored before explanations had a text) the feature and its value or z."""
    if not explanation:
        return None
    item = explanation[0]
    if not isinstance(item, dict):
        return str(item)
    if isinstance(item.get("text"), str):
        return item["text"]
    value = item.get("z", item.get("value"))
    name = str(item.get("feature", "?"))
    return f"{name} {value:+.2f}{'σ' if 'z' in item else ''}" if isinstance(
        value, int | float) else name


def product_state(latest: Latest, model) -> dict:
    """Ready and why not as GET /score says it; the threshold and the calibrated score from
    the model serving the product (the latest state's threshold without one)."""
    payload = latest.score_payload()
    ready, reason = payload["ready"], payload.get("reason")
    anomaly_score = getattr(model, "anomaly_score", None)
    return {
        "product_id": latest.product_id,
        "ready": ready,
        "reason": reason,
        "price": latest.price,
        "as_of": iso_or_none(latest.as_of),
        "score_raw": latest.score_raw,
        "anomaly_score": anomaly_score(latest.score_raw) if ready and anomaly_score else None,
        "anomaly": ready and latest.anomaly,
        "threshold": model.threshold if model is not None else latest.threshold,
        "model": latest.model,
        "trade_rate": latest.trade_rate,
    }


def event_summary(r) -> dict | None:
    if r is None:
        return None
    return {"start": iso_or_none(r["start_time"]), "end": iso_or_none(r["end_time"]),
            "peak_score": r["peak_score"],
            "explanation": first_line(json.loads(r["explanation"]) if r["explanation"] else [])}


@routes.get("/api/products")
async def products(request: web.Request) -> web.Response:
    app = request.app
    states = latests(app)
    names = list(states)
    async with app[keys.POOL].acquire() as conn:
        sparks = await queries.sparks(conn, names, SPARK_SECONDS, SPARK_POINTS)
        events = await queries.last_events(conn, names)
    now = time.time()
    items = [{**product_state(latest, scoring.current_model(app, p)),
              "state": api.state_of(app, latest, now),
              "last_anomaly": event_summary(events.get(p)),
              "spark": [[iso_or_none(r["time"]), r["score_raw"]] for r in sparks[p]]}
             for p, latest in states.items()]
    # which products move now (detect/market.py); nothing to compare with one product
    return web.json_response({"products": items, "default": app[keys.SETTINGS].pair,
                              "market": market.context(states) if len(states) > 1 else None})
