"""Shared fixtures: real PostgreSQL and Redis, one database / key prefix per test.

Without a reachable service, tests that need it skip; BLINK_REQUIRE_SERVICES=1 (set by
.ci/run) turns those skips into failures.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import asyncpg
import pytest

from blink import config

PG_ADMIN_DSN = os.environ.get("BLINK_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("BLINK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("BLINK_REQUIRE_SERVICES") == "1"
DATA = Path(__file__).parent / "data"

# the shared MLflow store fixtures (one sqlite store per session, created only when used), and
# the hang dump (a test running past 230 s prints every asyncio task's stack)
pytest_plugins = ["tests.support.mlflow_store", "tests.support.hangs"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


def _missing(service: str, why: str) -> None:
    if REQUIRE:
        pytest.fail(f"{service} unreachable ({why}) and BLINK_REQUIRE_SERVICES=1")
    pytest.skip(f"{service} unreachable: {why}")


def _reachable(url: str, default_port: int) -> str | None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or default_port), 1).close()
        return None
    except OSError as e:
        return str(e)


@pytest.fixture
async def pg_dsn():
    """A fresh, empty PostgreSQL database for this test; dropped afterwards."""
    why = _reachable(PG_ADMIN_DSN, 5432)
    if why:
        _missing("PostgreSQL", why)
    dsn = await create_database()
    yield dsn
    await drop_database(dsn)


async def create_database() -> str:
    """A fresh, empty database on the test server; its DSN."""
    name = f"blink_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(dsn: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def redis_url():
    """The test Redis; yields (url, prefix). Keys under the prefix are deleted afterwards."""
    why = _reachable(REDIS_TEST_URL, 6379)
    if why:
        _missing("Redis", why)
    import redis.asyncio as aioredis

    prefix = f"blinktest:{uuid.uuid4().hex[:10]}:"
    yield REDIS_TEST_URL, prefix
    client = aioredis.from_url(REDIS_TEST_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def make_settings(tmp_path):
    """Settings for a test: its own data dir, no config file, overrides as keyword args."""

    def make(**overrides) -> config.Settings:
        empty = tmp_path / "empty.toml"
        empty.touch()
        flags = {"data_dir": str(tmp_path / "data"), **overrides}
        return config.load(empty, env={}, flags=flags)

    return make


@pytest.fixture
async def settings(make_settings, pg_dsn):
    """Settings pointed at this test's own database (no Redis, no embedded PostgreSQL)."""
    return make_settings(pg_dsn=pg_dsn)


@pytest.fixture
async def rig(aiohttp_server, make_settings, pg_dsn):
    """Builds a fake Coinbase exchange plus a Blink ingest app (tests/fakes/rig.py)."""
    from tests.fakes.rig import rigs

    async with rigs(aiohttp_server, make_settings, pg_dsn) as build:
        yield build
