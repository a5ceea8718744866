"""Middlewares and response hooks: JSON errors, token auth, security headers.

- Every 4xx/5xx answer is JSON (`{"error": ..., "status": N, ...}`), never an HTML page or a
  traceback, and is counted in `blink_http_errors_total{status}`.
- With `api_token` set, the data routes need `Authorization: Bearer <token>`, compared in
  constant time; the SSE stream (EventSource cannot send headers) also takes `?token=`.
- Every response carries a strict CSP (no inline script), nosniff, a Referrer-Policy and
  X-Frame-Options. The token is never logged: only the method and path are, never the query.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from blink.runtime import keys
from blink.runtime.logs import RateLimited

log = logging.getLogger(__name__)
_limited = RateLimited(log)
# what a query raises while PostgreSQL is down or restarting (connection refused, cut, timeout)
DB_DOWN = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
           asyncpg.OperatorInterventionError)

PROTECTED_EXACT = frozenset({"/score", "/demo/data"})
PROTECTED_PREFIX = "/api/"
QUERY_TOKEN_PATHS = frozenset({"/api/stream"})

# style-src needs 'unsafe-inline': plotly.js injects its own CSS rules (a <style> element) and
# sets style attributes on its SVG. Scripts stay strict: 'self' only, no inline, no eval.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def json_error(status: int, error: str, **extra) -> web.Response:
    """The one shape of every error body."""
    return web.json_response({"error": error, "status": status, **extra}, status=status)


class JsonError(web.HTTPException):
    """Raise from a handler to answer a JSON error with extra fields (e.g. field and row)."""

    def __init__(self, status: int, error: str, **extra) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": error, "status": status, **extra}),
                         content_type="application/json")


def is_protected(path: str) -> bool:
    return path in PROTECTED_EXACT or path.startswith(PROTECTED_PREFIX)


def _presented_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.path in QUERY_TOKEN_PATHS:
        return request.query.get("token", "")
    return ""


def token_ok(expected: str, presented: str) -> bool:
    """Constant-time compare. aiohttp decodes header bytes that are not UTF-8 as surrogate
    escapes (`\\xff` -> `\\udcff`): encode them back to the bytes sent, which never match."""
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Outermost: turn every error into JSON and count it."""
    metrics = request.app[keys.METRICS]
    try:
        response = await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        metrics.http_errors.labels(status=str(e.status)).inc()
        if e.content_type == "application/json":
            return web.Response(status=e.status, body=e.body, headers=e.headers)
        extra = {"allow": sorted(e.allowed_methods)} if isinstance(e, web.HTTPMethodNotAllowed) \
            else {}
        return json_error(e.status, e.reason.lower(), **extra)
    except asyncio.CancelledError:
        raise
    except web.RequestPayloadError:  # the body could not be read (bad Content-Encoding, cut)
        metrics.http_errors.labels(status="400").inc()
        response = json_error(400, "unreadable body",
                              detail="the body does not match its Content-Encoding or "
                                     "Transfer-Encoding")
        response.force_close()  # the rest of the body cannot be parsed: end the connection
        return response
    except DB_DOWN as e:  # PostgreSQL unreachable: the routes that query it say so, briefly
        metrics.http_errors.labels(status="503").inc()
        _limited.warning("db", "%s %s: database unavailable: %s", request.method, request.path,
                         e)
        return json_error(503, "database unavailable", detail=type(e).__name__)
    except Exception as e:  # a bug: logged with its traceback, once per kind per interval
        metrics.http_errors.labels(status="500").inc()
        _limited.error(f"500 {type(e).__name__}", "unhandled error on %s %s",
                       request.method, request.path, exc_info=True)
        return json_error(500, "internal error")
    if response.status >= 400:
        metrics.http_errors.labels(status=str(response.status)).inc()
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    expected = request.app[keys.SETTINGS].api_token
    if expected and is_protected(request.path) and request.method != "OPTIONS":
        presented = _presented_token(request)
        if not presented or not token_ok(expected, presented):
            raise JsonError(401, "unauthorized", detail="send 'Authorization: Bearer <token>'")
    return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, static files and streams included."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if response.status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="blink"')


class AccessLogger(AbstractAccessLogger):
    """Access log without query strings (the stream's `?token=` must never reach a log).

    Use with `web.run_app(..., access_log_class=AccessLogger)` when access logs are wanted.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %d %.1fms", request.method, request.path, response.status,
                         time * 1000, extra={"method": request.method, "path": request.path,
                                             "status": response.status})
