"""PostgreSQL: the embedded server (pgserver), the connection pool, versioned migrations."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from importlib import resources
from pathlib import Path

import asyncpg

from blink.store import pgwatch

log = logging.getLogger(__name__)

MIGRATIONS_LOCK = 0x0B11_4B00  # advisory lock id: one migrator at a time
CLOSE_SECONDS = 10.0  # a graceful pool close waits this long for busy connections
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema(schema: str) -> str:
    """A schema name is quoted into SQL (identifiers cannot be parameters): allow only a
    plain lower-case identifier, such as Blink's own public/replay/synthetic/backtest."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    return schema


class EmbeddedPostgres:
    """A real PostgreSQL 16 (from the pgserver wheel) living in `<data_dir>/pg`.

    The server outlives no service: a stop stops it, and a watchdog process stops it when the
    service dies without one (SIGKILL); a server left behind anyway is reused by the next start
    on the same directory and stopped by its stop (see pgwatch.py)."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir.resolve() / "pg"
        self._server = None
        self._watchdog = None

    def start(self) -> str:
        """Blocking (~0.5 s warm, a few s on first initdb): run it in an executor."""
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pgserver  # only needed without PG_DSN

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self.pgdata.is_dir():  # holders that died without stopping it hold it no more
            pgwatch.prune_handles(self.pgdata)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        if self._watchdog is None:
            self._watchdog = pgwatch.start_watchdog(self.pgdata)
        return self._server.get_uri()

    def stop(self) -> None:
        if self._server is not None:
            pgwatch.prune_handles(self.pgdata)  # a holder that died holds it no more
            self._server._cleanup()  # stops the server when this process holds the last handle
            self._server = None
        if self._watchdog is not None:
            pgwatch.release_watchdog(self._watchdog)
            self._watchdog = None


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file in migrations/, in order."""
    out = []
    for entry in resources.files("blink.store").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text()))
    return sorted(out)


async def migrate(conn: asyncpg.Connection, schema: str = "public") -> list[str]:
    """Apply the migrations not yet applied to `schema`; safe to run any number of times."""
    applied_now, schema = [], check_schema(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATIONS_LOCK)
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied_now.append(name)
    if applied_now:
        log.info("applied migrations %s to schema %s", applied_now, schema)
    return applied_now


async def create_pool(dsn: str, schema: str = "public", **kw) -> asyncpg.Pool:
    """A pool whose connections see `schema` first; migrations applied once at creation."""
    check_schema(schema)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, schema)
    finally:
        await conn.close()
    return await asyncpg.create_pool(
        dsn,
        min_size=kw.pop("min_size", 1),
        max_size=kw.pop("max_size", 8),
        server_settings={"search_path": f'"{schema}"', "application_name": "blink"},
        **kw,
    )


async def close_pool(pool: asyncpg.Pool, bound: float = CLOSE_SECONDS) -> None:
    """Close `pool` gracefully, but never wait forever: `Pool.close` waits for every
    connection to be released, and one that never is (a task stuck mid-query, a server that
    stopped answering) would hang the shutdown. After `bound` s the pool is terminated
    (connections dropped; asyncpg advises this bound itself) and one WARNING says so."""
    try:
        async with asyncio.timeout(bound):
            await pool.close()
    except TimeoutError:
        log.warning("database pool not closed within %.0f s: connections terminated", bound)
        pool.terminate()


async def start_embedded(data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    pg = EmbeddedPostgres(data_dir)
    dsn = await asyncio.get_running_loop().run_in_executor(None, pg.start)
    return pg, dsn
