"""GET /api/stream: Server-Sent Events carrying the broadcaster's live updates.

Each message is `event: <kind>` + `data: <json>`; a comment line after HEARTBEAT seconds
without a message keeps proxies and the browser's EventSource from timing out. Ticks are
coalesced per client and product (at most `sse.TICK_HZ` a second), anomaly events never
dropped, a client that stops reading disconnected: see web/sse.py. Every product's updates by
default; `?product=P` for one product's alone (unknown: 404). On app shutdown every stream
ends at once (`on_shutdown` runs before the server waits for handlers), a client that does not
read is cut.
"""

from __future__ import annotations

from aiohttp import web

from blink.runtime import keys
from blink.web import selection, sse

routes = web.RouteTableDef()

RETRY_MS = 3000  # EventSource reconnect delay


@routes.get("/api/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    app = request.app
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform",
               "X-Accel-Buffering": "no"}
    if request.method == "HEAD":  # the headers only: an endless body would corrupt the reply
        return web.Response(headers=headers)
    products = frozenset({selection.product(request)}) if request.query.get("product") else None
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    about = {"source": app[keys.LATEST].source, "product_id": app[keys.LATEST].product_id}
    if len(app[keys.SETTINGS].pairs) > 1:  # (one product: the hello as before)
        about["products"] = sorted(products) if products else list(app[keys.SETTINGS].pairs)
    hello = f"retry: {RETRY_MS}\n".encode() + sse.frame("hello", about)
    with app[keys.STREAMS].join(request.transport, products) as client:
        await client.run(response.write, hello, app[keys.SHUTDOWN])
        await client.close(response.write_eof)
    return response


async def on_shutdown(app: web.Application) -> None:
    app[keys.SHUTDOWN].set()
    app[keys.STREAMS].shutdown()
