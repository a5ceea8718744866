"""Test doubles: a fake Coinbase Exchange (websocket + REST) and a realistic trade generator."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_until(cond: Callable[[], bool | Awaitable[bool]], what: str,
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


def ws_url(server) -> str:
    """The websocket URL of a fake served by the aiohttp_server fixture."""
    return str(server.make_url("/")).replace("http://", "ws://", 1)


def rest_url(server) -> str:
    return str(server.make_url("")).rstrip("/")


async def serve_fake(aiohttp_server, **kw):
    """A FakeCoinbase(**kw) served by the aiohttp_server fixture: (fake, server)."""
    from tests.fakes.coinbase import FakeCoinbase

    fake = FakeCoinbase(**kw)
    return fake, await aiohttp_server(fake.app)
