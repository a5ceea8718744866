"""The HTTP API: /score (GET, POST), /demo/data, /api/anomalies, /openapi.json.

Handlers read in-memory state (GET /score) or run one short parameterised query; scoring a
POSTed body is the compiled forest only. Errors are JSON (see security.py). Every route is
about one product: `?product=` (default the first of `settings.pairs`; see selection.py).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from importlib import resources

import orjson
from aiohttp import web

from blink.runtime import keys
from blink.store import reads as queries
from blink.times import iso_or_none
from blink.web import scoring, selection, warming
from blink.web.security import JsonError

routes = web.RouteTableDef()

FEED_STALE_SECONDS = 120.0  # no update for this long (wall time) while the feed ran: feed down
SOURCE_LABEL = {"coinbase": "Live", "replay": "Replay", "synthetic": "Synthetic"}


@routes.get("/score")
async def score_get(request: web.Request) -> web.Response:
    # the hottest route: orjson encodes the payload ~5x faster than json.dumps
    latest = request.app[keys.LATESTS][selection.product(request)]
    body = orjson.dumps(latest.score_payload(), option=orjson.OPT_SERIALIZE_NUMPY)
    return web.Response(body=body, content_type="application/json")


@routes.post("/score")
async def score_post(request: web.Request) -> web.Response:
    return await scoring.handle_post(request)


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """A query integer in [lo, hi]: ASCII digits only (Python's int() would also take spaces,
    `+`, `_` and other scripts' digits), never more digits than `hi` has."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise JsonError(400, f"'{name}' must be an integer (ASCII digits)", field=name)
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(hi)) or not lo <= int(digits) <= hi:
        raise JsonError(400, f"'{name}' must be between {lo} and {hi}", field=name)
    return int(digits)


def time_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace(" ", "+"))
        # in UTC, so an offset cannot push it past year 1 or 9999 later (in the driver)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise JsonError(400, f"'{name}' must be an ISO 8601 time", field=name) from None



def event_json(r) -> dict:
    return {"id": r["id"], "start_time": iso_or_none(r["start_time"]),
            "end_time": iso_or_none(r["end_time"]),
            "peak_time": iso_or_none(r["peak_time"]), "peak_score": r["peak_score"],
            "threshold": r["threshold"], "model_version": r["model_version"],
            "explanation": json.loads(r["explanation"]) if r["explanation"] else [],
            "points": r["points"]}


def _source(app: web.Application, latest, now: float) -> tuple:
    """The health component of the product's source (it reports as its name), and the wall
    seconds since the product's state last changed (None: never)."""
    feed = app[keys.HEALTH].components.get(latest.source)
    return feed, (now - latest.updated_wall if latest.updated_wall else None)


def _state(latest, feed, age: float | None) -> str:
    stale = latest.source == "coinbase" and age is not None and age > FEED_STALE_SECONDS
    if (feed is not None and feed.ok is False) or stale:  # (a replay may simply have ended)
        return "feed_down"
    if latest.not_ready or latest.score_raw is None:
        return "warming_up"
    return "anomaly" if latest.anomaly else "normal"


def state_of(app: web.Application, latest, now: float) -> str:
    """A product's state as the dashboard's pills say it: feed_down (its source failing, or
    no live trade of it for FEED_STALE_SECONDS of wall time), warming_up, anomaly or normal."""
    return _state(latest, *_source(app, latest, now))


def feed_status(app: web.Application, product: str | None = None) -> dict:
    """The dashboard pill and readouts of `product` (default the first), from memory only."""
    latest, now = app[keys.LATESTS][product or app[keys.SETTINGS].pair], time.time()
    feed, age = _source(app, latest, now)
    state = _state(latest, feed, age)
    lag = now - latest.as_of.timestamp() if latest.as_of and latest.source == "coinbase" else None
    return {"state": state, "reason": latest.not_ready, "source": latest.source,
            "source_label": SOURCE_LABEL.get(latest.source, latest.source),
            "feed_lag_seconds": lag, "updated_age_seconds": age,
            "feed_error": feed.last_error if feed is not None and feed.ok is False else None,
            "as_of": iso_or_none(latest.as_of), "price": latest.price,
            "score_raw": latest.score_raw, "warmup": warming.status(app)}


def model_info(app: web.Application, product: str | None = None) -> dict:
    product = product or app[keys.SETTINGS].pair
    latest, model = app[keys.LATESTS][product], scoring.current_model(app, product)
    if model is None:
        return {"label": latest.model, "version": None, "trained_at": latest.model_trained_at,
                "threshold": latest.threshold}
    trained = getattr(model, "trained_at", None)
    return {"label": model.label, "version": model.version,
            "trained_at": trained.isoformat() if isinstance(trained, datetime) else trained,
            "threshold": model.threshold}


@routes.get("/demo/data")
async def demo_data(request: web.Request) -> web.Response:
    app = request.app
    settings, product = app[keys.SETTINGS], selection.product(request)
    latest = app[keys.LATESTS][product]
    minutes = int_param(request, "minutes", 60, 1, 1440)
    async with app[keys.POOL].acquire() as conn:
        end, width, rows = await queries.series(conn, product, minutes,
                                                settings.feature_cadence_seconds)
        start = end - timedelta(minutes=minutes) if end else None
        events = await queries.events_in_range(conn, product, start, end) if end else []
    model = model_info(app, product)
    labels = [lb for lb in latest.labels if start and _overlaps(lb, start, end)]
    body = {
        "minutes": minutes, "product_id": product, "source": latest.source,
        "start": iso_or_none(start), "end": iso_or_none(end),
        "bin_seconds": width,
        "times": [iso_or_none(r["time"]) for r in rows],
        "prices": [r["price"] for r in rows],
        "score_raw": [r["score_raw"] for r in rows],
        "anomaly": [bool(r["anomaly"]) for r in rows],
        # seed contract: a label per point, -1 anomalous, 1 normal, null before a model
        "score": [None if r["score_raw"] is None else (-1 if r["anomaly"] else 1) for r in rows],
        "threshold": model["threshold"] if model["threshold"] is not None else latest.threshold,
        "events": [event_json(r) for r in events],
        "labels": labels,
        "status": feed_status(app, product),
        "model": model,
        "trade_rate": latest.trade_rate,
    }
    return web.json_response(body, dumps=_dumps)


def _dumps(obj) -> str:
    return json.dumps(obj, default=str)  # labels may carry datetimes


def _overlaps(label: dict, start: datetime, end: datetime) -> bool:
    try:
        a = datetime.fromisoformat(str(label.get("start")))
        b = datetime.fromisoformat(str(label.get("end", label.get("start"))))
    except ValueError:
        return False
    return a <= end and b >= start


@routes.get("/api/anomalies")
async def anomalies(request: web.Request) -> web.Response:
    app = request.app
    product = selection.product(request)
    limit = int_param(request, "limit", 50, 1, 500)
    since, before = time_param(request, "since"), time_param(request, "before")
    async with app[keys.POOL].acquire() as conn:
        rows = await queries.events_page(conn, product, since, before, limit)
    items = [event_json(r) for r in rows]
    following = items[-1]["start_time"] if len(items) == limit else None
    return web.json_response({"anomalies": items, "next_before": following, "limit": limit,
                              "product_id": product})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    text = resources.files("blink.web").joinpath("openapi.json").read_text()
    return web.Response(text=text, content_type="application/json")
