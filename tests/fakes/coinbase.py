"""A fake Coinbase Exchange (websocket + REST) reproducing spec §6, behaviours 1-25.

`fake = FakeCoinbase(history=500)` (or `history_seconds=3 * 3600`: hours of past trades up to
now, at a stationary rate, for a first start's REST bootstrap), then serve `fake.app` (e.g.
`aiohttp_server(fake.app)`):
the websocket is at `/`, REST under `/products/...`. `fake.trades` is the generated tape: every
trade ever made, whatever the wire did. Drive it with `emit(n)` and the fault knobs:

Several products: `FakeCoinbase(products=("BTC-USD", "ETH-USD", ...))` serves each with its own
generated tape (`fake.tapes[p]`, `fake.gens[p]`; `fake.trades` is the first's), heartbeats and
REST pages. Every product's ids start at the same id by default, so `emit(n)` (n trades per
product, interleaved by time) and every id-based fault below hit each product at once; the
connection faults hit the one socket that carries them all. `start_ids={product: id}` gives
products id ranges of their own (the id faults then name each product's ids). `rest_log`
lists every REST request as (monotonic time, product id), for rate checks.

- `drop`, `duplicate`, `reorder`: sets of trade ids dropped / sent twice / swapped with the next
  one on the wire (heartbeats still report the true newest id);
- `heartbeat_zero` (the old `last_trade_id: 0` quirk), `noise` (ticker frames, a made-up type,
  unknown keys in matches);
- `emit(n, cut_after=k, how="abort"|"close")`: disconnect in the middle of a burst;
- `stall_all()`, `abort_all()` (no close frame: the client sees 1006), `close_all(code, reason)`,
  `slow_consume()` (error ErrSlowConsume then close; also when a connection's backlog passes
  `slow_consume_limit`); `rest_429` (next N REST answers are 429, once `rest_429_after` REST
requests were answered: a rate limit hit in the middle of paging), `rest_missing` (ids REST
  never returns); connections over `ws_rate`/s (burst `ws_burst`) per client are refused (429).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import WSMsgType, web

from tests.fakes import coinbase_rest, coinbase_subs
from tests.fakes.trades import TradeGen, product_gen, wire_decimal, wire_time


class Conn:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws, self.request = ws, request
        self.subs: dict[str, list[str]] = {}
        self.queue: asyncio.Queue = asyncio.Queue()
        self.dead = False  # nothing more is sent (closing, stalled or killed)


class FakeCoinbase:
    def __init__(self, *, seed: int = 1, product_id: str = "BTC-USD",
                 products: tuple[str, ...] | None = None,
                 start_ids: dict[str, int] | None = None, history: int = 500,
                 rate: float = 7.0, start_time: datetime | None = None,
                 heartbeat_interval: float = 1.0, subscribe_timeout: float = 5.0,
                 subscribe_timeout_code: int = 1008, ws_rate: float = 8.0, ws_burst: int = 20,
                 rest_rate: float = 10.0, rest_burst: int = 15,
                 slow_consume_limit: int = 1_000_000, compress: bool = True,
                 history_seconds: float | None = None) -> None:
        now = datetime.now(UTC)
        self.products = tuple(products or (product_id,))
        self.gens: dict[str, TradeGen] = {}
        self.tapes: dict[str, list] = {}
        for i, pid in enumerate(self.products):
            ids = {"start_id": start_ids[pid]} if start_ids and pid in start_ids else {}
            if history_seconds is not None:
                gen = product_gen(seed, i, pid, now - timedelta(seconds=history_seconds), rate,
                                  revert=0.01, **ids)
                self.tapes[pid] = gen.until(now)
            else:
                gen = product_gen(seed, i, pid, start_time or now - timedelta(
                    seconds=history / rate), rate, **ids)
                self.tapes[pid] = gen.trades(history)
            self.gens[pid] = gen
        self.product_id = self.products[0]
        self.gen, self.trades = self.gens[self.product_id], self.tapes[self.product_id]
        self.delisted = {"LUNA-USD"}
        self.sequence = 136_967_652_357
        self.heartbeat_interval, self.slow_consume_limit = heartbeat_interval, slow_consume_limit
        self.compress = compress  # accept permessage-deflate when the client offers it
        self.subscribe_timeout, self.subscribe_timeout_code = (subscribe_timeout,
                                                               subscribe_timeout_code)
        self.drop: set[int] = set()
        self.duplicate: set[int] = set()
        self.reorder: set[int] = set()
        self.heartbeat_zero = self.noise = False
        self.rest_429, self.rest_missing, self.rest_max_limit = 0, set(), 1000
        self.rest_429_after = self.rest_429_sent = 0
        self.ws_bucket = coinbase_rest.TokenBucket(ws_rate, ws_burst)
        self.rest_bucket = coinbase_rest.TokenBucket(rest_rate, rest_burst)
        self.conns: list[Conn] = []
        self.connections = self.refused = self.rest_requests = 0
        self.rest_log: list[tuple[float, str]] = []  # every REST request: (monotonic, product)
        self.received: list[dict] = []  # every client message, parsed
        self.app = web.Application()
        self.app.router.add_get("/", self._ws)
        self.app.add_routes(coinbase_rest.routes(self))
        self.app.cleanup_ctx.append(self._heartbeat_ctx)

    # ------------------------------------------------------------------ driving
    def emit(self, n: int, *, cut_after: int | None = None, how: str = "abort",
             products: tuple[str, ...] | None = None) -> list:
        """Make n trades now for every product (or `products`) and send them, interleaved by
        time, with the wire faults, to every subscriber; the new trades in wire order."""
        made = {pid: self.gens[pid].trades(n) for pid in products or self.products}
        for pid, trades in made.items():
            self.tapes[pid].extend(trades)
        frames = list(heapq.merge(*map(self._wire, made.values()), key=lambda f: f[0].time))
        for conn in self._subscribers("matches"):
            if self.noise:
                self.send(conn, '{"type":"brand_new_type","payload":[1,2,3]}')
            for i, (t, frame) in enumerate(frames):
                if i == cut_after:
                    self._act(conn, (how, 1006 if how == "abort" else 1000, ""))
                    break
                if t.product_id not in conn.subs.get("matches", ()):
                    continue
                if self.noise:
                    self.send(conn, self.ticker_frame(t))
                self.send(conn, frame)
        return list(heapq.merge(*made.values(), key=lambda t: t.time))

    def _wire(self, trades: list) -> list[tuple]:
        """One product's new trades as (trade, frame) in wire order, with the id faults."""
        frames = [(t, self.match_frame(t, "match")) for t in trades if t.trade_id not in self.drop]
        frames += [(t, f) for t, f in frames if t.trade_id in self.duplicate]
        i = 0
        while i < len(frames) - 1:
            if frames[i][0].trade_id in self.reorder:  # sent after the next one
                frames[i], frames[i + 1] = frames[i + 1], frames[i]
                i += 1
            i += 1
        return frames

    def send_raw(self, frame: str) -> None:
        """Send any text frame (malformed ones included) to every matches subscriber."""
        for conn in self._subscribers("matches"):
            self.send(conn, frame)

    def close_all(self, code: int = 1000, reason: str = "") -> None:
        for conn in list(self.conns):
            self._act(conn, ("close", code, reason))

    def abort_all(self) -> None:
        for conn in list(self.conns):
            self._act(conn, ("abort", 1006, ""))

    def stall_all(self) -> None:
        for conn in list(self.conns):
            self._act(conn, ("stall", 0, ""))

    def slow_consume(self) -> None:
        for conn in list(self.conns):
            self._act(conn, ("slow", 1011, ""))

    async def wait_sent(self) -> None:
        """Until every queued frame has been written to the sockets."""
        for conn in list(self.conns):
            await conn.queue.join()

    # ------------------------------------------------------------------ frames
    def _next_sequence(self) -> int:
        self.sequence += 20 + (self.sequence * 7919) % 900  # strictly rising, large jumps
        return self.sequence

    def match_frame(self, t, kind: str) -> str:
        extra = ',"extra_key":{"new":true}' if self.noise else ""
        return (f'{{"type":"{kind}","trade_id":{t.trade_id},"maker_order_id":"{uuid.uuid4()}",'
                f'"taker_order_id":"{uuid.uuid4()}","side":"{t.side}",'
                f'"size":"{wire_decimal(t.size)}","price":"{wire_decimal(t.price)}",'
                f'"product_id":"{t.product_id}","sequence":{self._next_sequence()},'
                f'"time":"{wire_time(t.time)}"{extra}}}')

    def ticker_frame(self, t) -> str:
        return json.dumps({"type": "ticker", "product_id": t.product_id, "trade_id": t.trade_id,
                           "side": "buy" if t.side == "sell" else "sell",  # taker side
                           "price": wire_decimal(t.price), "sequence": self.sequence,
                           "time": wire_time(t.time)})

    def _heartbeat(self, pid: str) -> str:
        last = 0 if self.heartbeat_zero else self.tapes[pid][-1].trade_id
        return json.dumps({"type": "heartbeat", "last_trade_id": last, "product_id": pid,
                           "sequence": self._next_sequence(),
                           "time": wire_time(datetime.now(UTC).replace(microsecond=0))})

    # ------------------------------------------------------------------ connections
    def _subscribers(self, channel: str) -> list[Conn]:
        """Connections subscribed to `channel` for at least one product."""
        return [c for c in self.conns if c.subs.get(channel)]

    def send(self, conn: Conn, frame: str) -> None:
        if conn.dead:
            return
        if conn.queue.qsize() >= self.slow_consume_limit:
            return self._act(conn, ("slow", 1011, ""))
        conn.queue.put_nowait(frame)

    def _act(self, conn: Conn, action: tuple) -> None:
        if conn.dead:
            return
        if action[0] == "slow":  # the backlog is dropped: only the error is still sent
            while not conn.queue.empty():
                conn.queue.get_nowait()
                conn.queue.task_done()
        conn.dead = True
        conn.queue.put_nowait(action)

    async def _sender(self, conn: Conn) -> None:
        ws = conn.ws
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                item = await conn.queue.get()
                conn.queue.task_done()
                if isinstance(item, str):
                    await ws.send_str(item)
                    continue
                what, code, reason = item
                if what == "abort":
                    conn.request.transport.abort()
                elif what == "slow":
                    await ws.send_str(json.dumps({"type": "error", "message": "ErrSlowConsume",
                                                  "reason": "client is reading too slowly"}))
                    await ws.close(code=code, message=b"ErrSlowConsume")
                elif what == "close":
                    await ws.close(code=code, message=reason.encode())
                return  # "stall": keep the socket open and send nothing, ever

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self.ws_bucket.take(request.remote or "?"):
            self.refused += 1
            return web.Response(status=429, text="Too Many Requests")
        ws = web.WebSocketResponse(compress=self.compress, autoping=True)
        await ws.prepare(request)
        conn = Conn(ws, request)
        self.conns.append(conn)
        self.connections += 1
        sender = asyncio.create_task(self._sender(conn))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.subscribe_timeout
        try:
            while not ws.closed:
                wait = None if conn.subs else max(0.0, deadline - loop.time())
                try:
                    msg = await ws.receive(timeout=wait)
                except TimeoutError:  # spec §6.2: no subscribe within 5 s
                    self._act(conn, ("close", self.subscribe_timeout_code, "subscribe timeout"))
                    continue
                if msg.type is not WSMsgType.TEXT:
                    break
                coinbase_subs.handle(self, conn, msg.data)
        finally:
            self.conns.remove(conn)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        return ws

    async def _heartbeat_ctx(self, app: web.Application):
        async def beat() -> None:
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                for conn in self._subscribers("heartbeat"):
                    for pid in conn.subs.get("heartbeat", ()):
                        self.send(conn, self._heartbeat(pid))

        task = asyncio.create_task(beat())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
