"""The one wait helper of the tests: poll a condition the event loop will make true."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_until(cond: Callable[[], bool | Awaitable[bool]], what: str = "the condition",
                     limit: float = 20.0, step: float = 0.01) -> None:
    """Poll `cond` until true; fail naming `what` if it never happens (a hang guard only)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert loop.time() < end, f"never happened: {what}"
        await asyncio.sleep(step)
