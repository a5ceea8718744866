"""Collect items during one event-loop step and hand them over as one list at its end.

The websocket reader parses every frame already buffered before it waits again, so during a
burst hundreds of trades go through the tape in one loop step. `StepBatch(fn).add` is a
per-item listener that turns them into one `fn(items)` call, scheduled with `call_soon` for
the end of the step (or at once every `limit` items; at once when no loop runs): the
listener can then amortise per-call work (the detector scores all rows in one forest call).
Nothing else can run between the items and that call, so no reader of the listener's state
can tell the difference; at the live rate a batch is one trade, handed over microseconds
later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from blink.runtime.logs import RateLimited

log = logging.getLogger(__name__)
_limited = RateLimited(log)

T = TypeVar("T")


class StepBatch(Generic[T]):
    def __init__(self, fn: Callable[[list[T]], None], limit: int = 1024) -> None:
        self.fn, self.limit = fn, limit
        self._items: list[T] = []
        self._due = False  # a flush is scheduled for the end of this loop step

    def add(self, item: T) -> None:
        items = self._items
        items.append(item)
        if len(items) >= self.limit:
            self.flush()
        elif not self._due:
            try:
                asyncio.get_running_loop().call_soon(self._scheduled)
                self._due = True
            except RuntimeError:  # no event loop: nothing to batch with
                self.flush()

    def flush(self) -> None:
        """Hand everything collected so far to `fn` now (never raises)."""
        items, self._items = self._items, []
        if not items:
            return
        try:
            self.fn(items)
        except Exception:  # noqa: BLE001 - like a tape listener: the feed goes on
            _limited.warning(f"batch {self.fn!r}", "batch listener %r failed on %d items",
                             self.fn, len(items), exc_info=True)

    def _scheduled(self) -> None:
        self._due = False
        self.flush()
