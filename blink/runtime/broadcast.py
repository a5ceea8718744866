"""In-process fan-out of live updates to subscribers (SSE clients, alerting).

`publish` is synchronous and never blocks the publisher: each subscriber has a bounded queue,
and a subscriber that falls behind loses its oldest messages (it is told via a "lag" message).
A listener is a synchronous callback called in `publish` (it must not raise or block): the
SSE hub (web/sse.py) is one, so a tick costs one call, not one queue and one task per client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable


class Broadcaster:
    def __init__(self, maxsize: int = 256) -> None:
        self._subscribers: set[asyncio.Queue] = set()
        self._listeners: list[Callable[[str, dict], None]] = []
        self._maxsize = maxsize

    def listen(self, callback: Callable[[str, dict], None]) -> None:
        self._listeners.append(callback)

    def publish(self, kind: str, payload: dict) -> None:
        for callback in self._listeners:
            callback(kind, payload)
        for q in self._subscribers:
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                q.put_nowait(("lag", {}))
                continue
            q.put_nowait((kind, payload))

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue]:
        """`async with b.subscribe() as q: kind, payload = await q.get()`."""
        q: asyncio.Queue = asyncio.Queue(self._maxsize)
        self._subscribers.add(q)
        try:
            yield q
        finally:
            self._subscribers.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
