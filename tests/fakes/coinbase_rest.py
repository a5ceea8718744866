"""The fake Coinbase Exchange REST side: `/products/{id}/trades` and `/products/{id}/candles`.

Spec §6, 22-25: `after=X` gives ids < X newest first, `before=X` the ids just above X;
CB-BEFORE / CB-AFTER headers; items without product_id and with trimmed fractional seconds;
400 for non-integer cursors and for a missing User-Agent; 429 above 10 req/s (burst 15) per
client (token bucket); candles with six granularities, at most 300 buckets, empty ones left out.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from aiohttp import web

from tests.fakes.trades import wire_decimal, wire_time

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)


class TokenBucket:
    """Lazy-fill token bucket per client key."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> bool:
        now = time.monotonic()
        tokens, at = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        ok = tokens >= 1
        self._state[key] = (tokens - 1 if ok else tokens, now)
        return ok


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _cursor(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        body = json.dumps({"message": f"Invalid value for pagination {name}"})
        raise web.HTTPBadRequest(text=body, content_type="application/json")
    return int(raw)


def routes(fake) -> web.RouteTableDef:
    """REST routes over `fake` (a FakeCoinbase: .tapes per product, knobs)."""
    r = web.RouteTableDef()

    def gate(request: web.Request) -> web.Response | None:
        fake.rest_requests += 1
        fake.rest_log.append((time.monotonic(), request.match_info["pid"]))
        if not request.headers.get("User-Agent"):
            return _error(400, "User-Agent header is required.")
        if fake.rest_429 > 0 and fake.rest_requests > fake.rest_429_after:
            fake.rest_429 -= 1
            fake.rest_429_sent += 1
            return _error(429, "Public rate limit exceeded")
        if not fake.rest_bucket.take(request.remote or "?"):
            fake.rest_429_sent += 1
            return _error(429, "Public rate limit exceeded")
        if request.match_info["pid"] not in fake.tapes:
            return _error(404, "NotFound")
        return None

    @r.get("/products/{pid}/trades")
    async def trades(request: web.Request) -> web.Response:
        if (refused := gate(request)) is not None:
            return refused
        after, before = _cursor(request, "after"), _cursor(request, "before")
        raw_limit = request.query.get("limit", "1000")
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            return _error(400, "Invalid limit")
        limit = min(int(raw_limit), fake.rest_max_limit)
        tape = fake.tapes[request.match_info["pid"]]
        first = tape[0].trade_id if tape else 0
        top = len(tape)  # index one past the newest
        if after is not None:
            top = max(0, min(top, after - first))
            idx = range(top - 1, max(-1, top - 1 - limit), -1)
        elif before is not None:
            low = max(0, before - first + 1)
            idx = range(min(len(tape), low + limit) - 1, low - 1, -1)
        else:
            idx = range(top - 1, max(-1, top - 1 - limit), -1)
        items = [tape[i] for i in idx if tape[i].trade_id not in fake.rest_missing]
        body = [{"time": wire_time(t.time, trim=True), "trade_id": t.trade_id,
                 "price": wire_decimal(t.price), "size": wire_decimal(t.size), "side": t.side}
                for t in items]
        headers = {}
        if items:
            headers = {"CB-BEFORE": str(items[0].trade_id), "CB-AFTER": str(items[-1].trade_id)}
        return web.json_response(body, headers=headers)

    @r.get("/products/{pid}/candles")
    async def candles(request: web.Request) -> web.Response:
        if (refused := gate(request)) is not None:
            return refused
        try:
            gran = int(request.query.get("granularity", "60"))
        except ValueError:
            gran = -1
        if gran not in GRANULARITIES:
            return _error(400, "Unsupported granularity")
        try:
            start = datetime.fromisoformat(request.query["start"]).timestamp()
            end = datetime.fromisoformat(request.query["end"]).timestamp()
        except (KeyError, ValueError):
            end = datetime.now(UTC).timestamp()
            start = end - 300 * gran
        if (end - start) / gran > 300:
            return _error(400, "granularity too small for the requested time range")
        buckets: dict[int, list] = {}
        for t in fake.tapes[request.match_info["pid"]]:
            ts = t.time.timestamp()
            if start <= ts < end:
                b = int(ts // gran * gran)
                px, sz = float(t.price), float(t.size)
                c = buckets.setdefault(b, [b, px, px, px, px, 0.0])
                c[1], c[2], c[4], c[5] = min(c[1], px), max(c[2], px), px, c[5] + sz
        return web.json_response(sorted(buckets.values(), reverse=True))

    return r
