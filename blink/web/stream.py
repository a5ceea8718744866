"""GET /api/stream: Server-Sent Events carrying the broadcaster's live updates.

Each message is `event: <kind>` + `data: <json>`; a comment line every HEARTBEAT seconds keeps
proxies and the browser's EventSource from timing out. On app shutdown every stream ends
cleanly (the SHUTDOWN event is set by `on_shutdown`, before the server waits for handlers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from blink.runtime import keys

routes = web.RouteTableDef()

HEARTBEAT = 15.0
RETRY_MS = 3000  # EventSource reconnect delay


def frame(kind: str, payload: dict) -> bytes:
    data = json.dumps(payload, default=str, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


@routes.get("/api/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    app = request.app
    stop = app[keys.SHUTDOWN]
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform",
               "X-Accel-Buffering": "no"}
    if request.method == "HEAD":  # the headers only: an endless body would corrupt the reply
        return web.Response(headers=headers)
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MS}\n".encode() + frame("hello", {
        "source": app[keys.LATEST].source, "product_id": app[keys.LATEST].product_id}))
    stopping = asyncio.ensure_future(stop.wait())
    getter: asyncio.Future | None = None
    try:
        async with app[keys.EVENTS].subscribe() as queue:
            while not stop.is_set():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, stopping}, timeout=HEARTBEAT,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await response.write(frame(*getter.result()))
                    continue
                getter.cancel()  # nothing taken: no message is lost
                if stopping not in done:
                    await response.write(b": heartbeat\n\n")
    except ConnectionError:
        pass  # the client went away
    finally:
        for f in (getter, stopping):
            if f is not None and not f.done():
                f.cancel()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def on_shutdown(app: web.Application) -> None:
    app[keys.SHUTDOWN].set()
