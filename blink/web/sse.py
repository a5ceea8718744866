"""Fan-out of live updates to the /api/stream clients: encoded once, ticks coalesced, bounded.

The hub listens to the broadcaster (a synchronous callback, no task). Each update is encoded
once, whatever the number of clients:
- `tick` (one per second of event time and product: ~40/s at ×600) is kept as the latest tick
  of each product only; each client sends the products' latest ticks at most `TICK_HZ` times
  a second and skips the ones in between, so a client costs `TICK_HZ` wake-ups a second
  however fast the feed runs, and one product's ticks never hide another's;
- every other kind (`anomaly_start`, `anomaly_end`, `model`) is queued for each client in
  order and never dropped; a tick published before it is sent before it.
A client may ask for some products only (`products`; `/api/stream?product=P`): it is sent
their ticks and events alone (an update naming no product goes to every client).

A client that does not read is disconnected (its EventSource reconnects and the page reloads
its data): when `QUEUE_MAX` updates wait for it, or when one write has not drained for
`WRITE_SECONDS`. So a client holds at most the transport's buffer plus `QUEUE_MAX` frames,
and no handler waits on a client for long. At shutdown every stream ends at once; a client
whose socket is full is cut instead of being waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator

from blink.runtime.logs import RateLimited

log = logging.getLogger(__name__)
_limited = RateLimited(log)

TICK_HZ = 4.0  # most ticks a second per client (the dashboard redraws a few times a second)
QUEUE_MAX = 64  # events waiting for one client before it counts as not reading
WRITE_SECONDS = 10.0  # longest one write may wait for the client to read
HEARTBEAT = 15.0  # a comment line after this long without a write (proxies, EventSource)
EOF_BUFFER = 2 ** 16  # at shutdown: bytes unsent above which the client is cut, not flushed


def frame(kind: str, payload: dict) -> bytes:
    data = json.dumps(payload, default=str, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


class Gone(Exception):
    """The client went away or was disconnected for not reading."""


class Client:
    def __init__(self, hub: Hub, transport: asyncio.Transport | None,
                 products: frozenset[str] | None = None) -> None:
        self.hub, self.transport = hub, transport
        self.products = products  # None: every product
        self.frames: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.seen = hub.tick_seq - 1 if hub.tick_seq else 0  # the latest ticks first
        self.sent: dict[str | None, int] = {}  # product -> seq of the last tick sent
        self.dropped: str | None = None  # why the hub gave up on this client
        self.writing = False

    def wants(self, product: str | None) -> bool:
        return self.products is None or product is None or product in self.products

    def push(self, data: bytes) -> None:
        if len(self.frames) >= QUEUE_MAX:
            self.drop("not reading (update queue full)")
            return
        self.frames.append(data)
        self.wake.set()

    def drop(self, why: str) -> None:
        """Disconnect now: a write in progress fails at once."""
        if self.dropped is None:
            self.dropped = why
            self.frames.clear()
            _limited.warning("drop", "stream client disconnected: %s", why)
        self.cut()

    def cut(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()
        self.wake.set()

    async def _write(self, write: Callable[[bytes], Awaitable[None]], data: bytes) -> None:
        self.writing = True
        try:
            async with asyncio.timeout(WRITE_SECONDS):
                await write(data)
        except TimeoutError:
            self.drop(f"not reading (a write waited {WRITE_SECONDS:g} s)")
            raise Gone from None
        except ConnectionError:
            raise Gone from None
        finally:
            self.writing = False
        if self.dropped is not None:
            raise Gone

    async def run(self, write: Callable[[bytes], Awaitable[None]], first: bytes,
                  stop: asyncio.Event) -> None:
        """Send `first`, then updates, until `stop` is set or the client is gone."""
        loop = asyncio.get_running_loop()
        hub, gap = self.hub, 1.0 / TICK_HZ
        next_tick = 0.0
        try:
            await self._write(write, first)
            last = loop.time()
            while not stop.is_set() and self.dropped is None:
                self.wake.clear()
                now = loop.time()
                out = list(self.frames)
                self.frames.clear()
                if hub.tick_seq != self.seen and now >= next_tick:
                    ticks = hub.new_ticks(self)
                    self.seen = hub.tick_seq
                    if ticks:
                        out.extend(ticks)
                        next_tick = now + gap
                if not out and now - last >= HEARTBEAT:
                    out.append(b": heartbeat\n\n")
                if out:
                    await self._write(write, b"".join(out))
                    last = loop.time()
                    continue
                if hub.tick_seq != self.seen:  # a tick waits for this client's next slot
                    timeout = next_tick - now
                else:
                    hub.waiting.add(self)  # woken by the next tick
                    timeout = last + HEARTBEAT - now
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self.wake.wait()
        except Gone:
            pass

    async def close(self, write_eof: Callable[[], Awaitable[None]]) -> None:
        """End the response: the last chunk if the client can take it, else cut."""
        transport = self.transport
        if self.dropped is not None or transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > EOF_BUFFER:
            self.cut()
            return
        try:
            async with asyncio.timeout(1.0):
                await write_eof()
        except (TimeoutError, ConnectionError):
            self.cut()


class Hub:
    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.waiting: set[Client] = set()  # clients idle until the next tick
        self.tick_seq = 0  # ticks published so far (every product)
        self._ticks: dict[str | None, tuple[int, dict]] = {}  # product -> (seq, latest tick)
        self._frames: dict[str | None, bytes] = {}  # product -> its latest tick, encoded

    def latest_tick(self, product: str | None = None) -> bytes:
        """A product's latest tick (default: the newest of any), encoded once (on first use:
        no client, no encoding)."""
        if product is None and product not in self._ticks:
            product = max(self._ticks, key=lambda p: self._ticks[p][0])
        data = self._frames.get(product)
        if data is None:
            data = self._frames[product] = frame("tick", self._ticks[product][1])
        return data

    def new_ticks(self, client: Client) -> list[bytes]:
        """The latest tick of each product the client wants and was not sent yet."""
        out = []
        for product, (seq, _) in self._ticks.items():
            if seq > client.sent.get(product, 0) and client.wants(product):
                client.sent[product] = seq
                out.append(self.latest_tick(product))
        return out

    def deliver(self, kind: str, payload: dict) -> None:
        """The broadcaster's listener: synchronous, never blocks; a tick costs O(clients
        idle since their last tick), not O(clients)."""
        product = payload.get("product_id") if isinstance(payload, dict) else None
        if kind == "tick":
            self.tick_seq += 1
            self._ticks[product] = (self.tick_seq, payload)
            self._frames.pop(product, None)
            for client in self.waiting:
                client.wake.set()
            self.waiting.clear()
            return
        if not self.clients:
            return
        data = frame(kind, payload)
        for client in self.clients:
            if not client.wants(product):
                continue
            if client.seen != self.tick_seq:  # the ticks before this event go out first
                for tick in self.new_ticks(client):
                    client.push(tick)
                client.seen = self.tick_seq
            client.push(data)

    @contextlib.contextmanager
    def join(self, transport: asyncio.Transport | None,
             products: frozenset[str] | None = None) -> Iterator[Client]:
        client = Client(self, transport, products)
        self.clients.add(client)
        try:
            yield client
        finally:
            self.clients.discard(client)
            self.waiting.discard(client)

    def shutdown(self) -> None:
        """Wake every client (its loop sees the stop); cut the ones stuck in a write."""
        for client in list(self.clients):
            if client.writing:
                client.cut()
            client.wake.set()
