"""Test doubles: a fake Coinbase Exchange (websocket + REST) and a realistic trade generator."""

from __future__ import annotations


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
