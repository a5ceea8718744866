"""The HTTP server around the app: connection limits, shutdown, and aiohttp's own answers.

- **Keep-alive**: an idle connection is closed after `KEEPALIVE_SECONDS` (aiohttp's default is
  3630 s). aiohttp arms that timer when a connection opens and again after each response, and
  only a complete request head stops it: so the same bound applies to a client that trickles
  its request line and headers (slowloris). A slow *body* is bounded by the route that reads
  it (`scoring.BODY_SECONDS`); a client that stops reading a stream by `web/sse.py`.
- **Shutdown**: a handler still running when the server stops gets `SHUTDOWN_SECONDS` to end,
  then is cancelled and gets as long again (aiohttp's two waits). Streams end at once
  (`on_shutdown`), so only a stuck handler ever uses them.
- **Requests aiohttp's parser rejects** (bad method, request line or header line too long, bad
  Content-Length) never reach the middlewares: aiohttp answers them itself, as plain text,
  with a snippet of the offending bytes, and logs a traceback each time. `BlinkRequestHandler`
  answers them as JSON with Blink's security headers, echoes nothing, counts them in
  `blink_http_errors_total` and logs one line per kind per interval. What only a proxy in front
  can fix is listed in docs/scaling.md.
"""

from __future__ import annotations

import logging
import sys

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from blink.runtime import keys
from blink.runtime.logs import RateLimited
from blink.web import security

log = logging.getLogger(__name__)
_limited = RateLimited(log)

KEEPALIVE_SECONDS = 75.0  # idle keep-alive and request-head bound (nginx's default; ≤ 75 s)
SHUTDOWN_SECONDS = 1.5  # per wait; twice at most: ≤ 3 s of the 5 s a stop may take

# what the client is told for aiohttp's parser errors: our words, never the bytes it sent
PROBLEMS = {
    "BadHttpMethod": "bad method",
    "BadHttpMessage": "malformed request",
    "BadStatusLine": "malformed request line",
    "LineTooLong": "request line or header too long",
    "InvalidHeader": "invalid header",
    "InvalidURLError": "invalid URL",
    "ContentLengthError": "bad Content-Length",
    "TransferEncodingError": "bad Transfer-Encoding",
    "ContentEncodingError": "unsupported Content-Encoding",  # not gzip, deflate (br: no brotli)
}
# the parser's 400 where HTTP has a better word: a content coding the server cannot decode is
# 415 Unsupported Media Type (RFC 9110 §15.5.16)
STATUSES = {"ContentEncodingError": 415}


class BlinkRequestHandler(RequestHandler):
    """aiohttp's connection handler, with Blink's answer to requests it cannot parse."""

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            raise ConnectionError("response already sent, cannot send an error")
        kind = type(exc).__name__ if exc is not None else f"status {status}"
        client_error = isinstance(exc, HttpProcessingError) and 400 <= status < 500
        if client_error:
            status = STATUSES.get(kind, status)
            _limited.warning(kind, "rejected a request that cannot be parsed: %s (%d)", kind,
                             status)
            body = {"error": PROBLEMS.get(kind, "malformed request"), "status": status}
        else:
            _limited.error(kind, "error handling a request: %s (%d)", kind, status,
                           exc_info=exc)
            status, body = 500, {"error": "internal error", "status": 500}
        app = getattr(self._manager, "app", None)
        if app is not None:
            app[keys.METRICS].http_errors.labels(status=str(status)).inc()
        response = web.json_response(body, status=status, headers=security.HEADERS)
        response.force_close()
        return response

    def log_exception(self, msg: str, *args, exc_info=None, **kwargs) -> None:
        """aiohttp's "Unhandled exception" after a response, e.g. reading the rest of a body
        whose Content-Encoding is wrong: a client's fault is one line per interval."""
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        kind = f"server {type(exc).__name__}"
        if isinstance(exc, HttpProcessingError | web.RequestPayloadError | ConnectionError):
            _limited.warning(kind, msg + ": %s", *args, type(exc).__name__)
        else:
            _limited.error(kind, msg, *args, exc_info=exc or True)


class BlinkServer(Server):
    """aiohttp's Server (the protocol factory) making `BlinkRequestHandler`s."""

    app: web.Application | None = None

    def __call__(self) -> RequestHandler:
        return BlinkRequestHandler(self, loop=self._loop, **self._kwargs)


class BlinkRunner(web.AppRunner):
    """`web.AppRunner` with Blink's timeouts and error answers."""

    def __init__(self, app: web.Application, **kwargs) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_SECONDS)
        kwargs.setdefault("shutdown_timeout", SHUTDOWN_SECONDS)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = BlinkServer  # the same object; only the handler class changes
        server.app = self.app
        return server
