"""Which product a request is about: `?product=` (POST /score: the body's "product"), the
first of `settings.pairs` by default; an unknown one is a 404 naming the known ones."""

from __future__ import annotations

from aiohttp import web

from blink.runtime import keys
from blink.web.security import JsonError

NAME_MAX = 64  # longest unknown name echoed back in the error


def product(request: web.Request, raw: object = None) -> str:
    """The product id asked for (`raw`, else the `product` query parameter), or JsonError."""
    pairs = request.app[keys.SETTINGS].pairs
    if raw is None:
        raw = request.query.get("product")
    if raw is None or raw == "":
        return pairs[0]
    if not isinstance(raw, str):
        raise JsonError(400, "'product' must be a product id such as "
                        f"{pairs[0]}", field="product", products=list(pairs))
    if raw not in pairs:
        raise JsonError(404, f"unknown product '{raw[:NAME_MAX]}'", products=list(pairs))
    return raw
