"""POST /score bodies: parse, validate (naming the field and the row), score.

Accepted: `{"features": {name: number, ...}}` (one row) or `{"instances": [{...}, ...]}` with
at most `max_score_rows` rows, and optionally `"product"` (default the first product; its own
model scores the rows; an unknown product is a 404 naming the known ones). Every row must
carry exactly the model's feature names, each a finite number. Rows are scored together with
the served model's compiled forest.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

import numpy as np
from aiohttp import web

from blink.model.served import ServedModel
from blink.runtime import keys
from blink.web import selection
from blink.web.security import JsonError

BODY_SECONDS = 10.0  # longest wait for a POSTed body (a client trickling bytes holds a handler)


def pipeline(app: web.Application, product: str | None = None):
    """(detector, model slot) of `product` (default the first), each None where this role
    has none (ingest: the detectors; any watcher: the slots)."""
    if product is None or product == app[keys.SETTINGS].pair:
        return app.get(keys.DETECTOR), app.get(keys.MODEL)
    detectors, slots = app.get(keys.DETECTORS) or {}, app.get(keys.MODELS) or {}
    return detectors.get(product), slots.get(product)


def current_model(app: web.Application, product: str | None = None) -> ServedModel | None:
    """The ServedModel scoring `product`'s stream (its detector's), else its registry slot's,
    or None."""
    detector, slot = pipeline(app, product)
    if detector is not None and detector.model is not None:
        return detector.model
    return slot.served if slot is not None else None


def is_json(content_type: str) -> bool:
    """application/json or a structured `+json` type (parameters such as charset aside)."""
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json"))


def load_json(raw: bytes):
    """The parsed body or JsonError(400) in our own words (never Python's hint texts)."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise JsonError(400, f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") \
            from None
    except UnicodeDecodeError:
        raise JsonError(400, "invalid JSON: not UTF-8 text") from None
    except RecursionError:  # ~1000 nested arrays fit in 2 KB
        raise JsonError(400, "invalid JSON: nested too deeply") from None
    except ValueError:  # an integer past sys.get_int_max_str_digits() (4300 digits)
        raise JsonError(400, "invalid JSON: a number has too many digits") from None


def parse_rows(body, names: list[str], max_rows: int) -> tuple[np.ndarray, bool]:
    """(X in the model's column order, single) from a parsed body, or JsonError(400/413)."""
    if not isinstance(body, dict) or ("features" in body) == ("instances" in body):
        raise JsonError(400, "body must be an object with exactly one of 'features' or "
                             "'instances'")
    single = "features" in body
    rows = [body["features"]] if single else body["instances"]
    if not isinstance(rows, list) or not rows:
        raise JsonError(400, "'instances' must be a non-empty array of objects",
                        field="instances")
    if len(rows) > max_rows:
        raise JsonError(413, f"too many rows: {len(rows)} > {max_rows}", field="instances",
                        max_rows=max_rows)
    X = np.empty((len(rows), len(names)), dtype=np.float64)
    expected = set(names)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise JsonError(400, "row must be an object of feature values",
                            field="features" if single else "instances", row=i)
        for key in row:
            if key not in expected:
                raise JsonError(400, "unknown feature", field=key, row=i, expected=names)
        for j, name in enumerate(names):
            if name not in row:
                raise JsonError(400, "missing feature", field=name, row=i)
            value = row[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise JsonError(400, "not a number", field=name, row=i)
            try:
                value = float(value)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise JsonError(400, "not a finite number", field=name, row=i)
            X[i, j] = value
    return X, single


def score(app: web.Application, model, X: np.ndarray, product: str | None = None) -> np.ndarray:
    """score_raw per row with the compiled forest; only this call is timed.

    Through the detector when it serves this very model (it counts the API predictions);
    otherwise (api-only role, or a swap in between) with the model, counted here.
    """
    product = product or app[keys.SETTINGS].pair
    detector, metrics = pipeline(app, product)[0], app[keys.METRICS]
    via_detector = detector is not None and detector.model is model
    t0 = time.perf_counter()
    scores = detector.score_rows(X) if via_detector else model.score(X)
    metrics.predict_latency.observe(time.perf_counter() - t0)
    if not via_detector:
        metrics.predictions.labels(path="api", product=product).inc(len(X))
    return np.asarray(scores, dtype=np.float64)


def results(model, X: np.ndarray, scores: np.ndarray) -> list[dict]:
    """score_raw is higher = more normal: a row is anomalous below the threshold."""
    out = []
    for x, s in zip(X, scores, strict=True):
        anomalous = bool(model.is_anomaly(float(s)))
        item = {"score_raw": float(s), "anomaly": anomalous}
        if anomalous:
            item["explanation"] = model.explain(x)
        out.append(item)
    return out


async def handle_post(request: web.Request) -> web.Response:
    app = request.app
    settings = app[keys.SETTINGS]
    if (request.content_length or 0) > settings.max_body_bytes:
        raise JsonError(413, "body too large", max_bytes=settings.max_body_bytes)
    if not is_json(request.content_type):
        raise JsonError(415, "unsupported media type", detail="send Content-Type: "
                        "application/json", accept=["application/json"])
    try:
        async with asyncio.timeout(BODY_SECONDS):
            raw = await request.read()  # raises 413 past client_max_size
    except TimeoutError:
        raise JsonError(408, "request timeout",
                        detail=f"the body took longer than {BODY_SECONDS:g} s") from None
    if len(raw) > settings.max_body_bytes:
        raise JsonError(413, "body too large", max_bytes=settings.max_body_bytes)
    body = load_json(raw)
    product = selection.product(request, body.get("product") if isinstance(body, dict)
                                else None)
    model = current_model(app, product)
    if model is None:
        name = "model" if product == settings.pair else f"model:{product}"
        component = app[keys.HEALTH].components.get(name)
        detail = component.last_error if component and component.last_error else None
        raise JsonError(503, "no model", reason="no_model", detail=detail, product_id=product)
    names = list(model.feature_names)
    X, single = parse_rows(body, names, settings.max_score_rows)
    scores = score(app, model, X, product)
    rows = results(model, X, scores)
    head = {"model": model.label, "version": model.version, "threshold": model.threshold,
            "product_id": product}
    if single:
        return web.json_response({**head, **rows[0]})
    return web.json_response({**head, "results": rows})
