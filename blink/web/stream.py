"""GET /api/stream: Server-Sent Events carrying the broadcaster's live updates.

Each message is `event: <kind>` + `data: <json>`; a comment line after HEARTBEAT seconds
without a message keeps proxies and the browser's EventSource from timing out. Ticks are
coalesced per client (at most `sse.TICK_HZ` a second), anomaly events never dropped, a client
that stops reading disconnected: see web/sse.py. On app shutdown every stream ends at once
(`on_shutdown` runs before the server waits for handlers), a client that does not read is cut.
"""

from __future__ import annotations

from aiohttp import web

from blink.runtime import keys
from blink.web import sse

routes = web.RouteTableDef()

RETRY_MS = 3000  # EventSource reconnect delay


@routes.get("/api/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    app = request.app
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform",
               "X-Accel-Buffering": "no"}
    if request.method == "HEAD":  # the headers only: an endless body would corrupt the reply
        return web.Response(headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    hello = f"retry: {RETRY_MS}\n".encode() + sse.frame("hello", {
        "source": app[keys.LATEST].source, "product_id": app[keys.LATEST].product_id})
    with app[keys.STREAMS].join(request.transport) as client:
        await client.run(response.write, hello, app[keys.SHUTDOWN])
        await client.close(response.write_eof)
    return response


async def on_shutdown(app: web.Application) -> None:
    app[keys.SHUTDOWN].set()
    app[keys.STREAMS].shutdown()
