"""Fault-injection kit: a private PostgreSQL and Redis the tests can kill, Blink as a process.

- `PgInstance`: a real PostgreSQL 16 (pgserver's binaries) in its own directory on its own TCP
  port; `stop("fast")` (clean shutdown, connections cut), `stop("immediate")` (a crash:
  recovery on the next start), `start()` again on the same port. Never the shared server.
- `RedisInstance`: `redis-server --port P --save "" --appendonly no`, killed and restarted.
- `BlinkProcess`: `python -m blink run` as a subprocess with an environment, its log in a file,
  JSON GETs and a /metrics scrape, SIGTERM / SIGKILL; `kill()` also waits for (and at worst
  kills) every process the service started, so no test leaves a model worker behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import psutil

from tests.support.metrics import total

ROOT = Path(__file__).resolve().parents[2]


def alive(p: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie may wait a while for init to reap it)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: list[psutil.Process], limit: float) -> list[psutil.Process]:
    """Poll until none of `procs` runs (at most `limit` s); the ones still running."""
    end = time.monotonic() + limit
    while (left := [p for p in procs if alive(p)]) and time.monotonic() < end:
        time.sleep(0.1)
    return left


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgInstance:
    """A private PostgreSQL server the test may stop, crash and restart (same port)."""

    def __init__(self) -> None:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = Path(tempfile.mkdtemp(prefix="blink-pg-"))
        self.root.chmod(0o755)
        self.pgdata, self.log = self.root / "pgdata", self.root / "pg.log"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: pgserver's system user
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.root)
            ensure_prefix_permissions(self.bin)
            shutil.chown(self.root, self.user)
        self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                  "--encoding=utf8", "--no-sync")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, exe: str, *args: str) -> None:
        subprocess.run([str(self.bin / exe), *args], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def start(self) -> None:
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-l", str(self.log), "-o", opts,
                  "start")

    def stop(self, mode: str = "fast") -> None:
        """fast: clean shutdown, every connection cut; immediate: like a crash."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class RedisInstance:
    """A redis-server of the test's own on its own port (optionally with a password)."""

    def __init__(self, password: str = "") -> None:
        self.port, self.password = free_port(), password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, "redis-server exited"
                time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


class BlinkProcess:
    """`python -m blink run` with `env` (over a clean environment), log written to `log`."""

    def __init__(self, env: dict[str, str], log: Path, cwd: Path) -> None:
        self.port = free_port()
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("BLINK_", "PG_", "REDIS_", "MLFLOW_TRACKING"))}
        self.env = {**base, "BLINK_PORT": str(self.port), "MLFLOW_DISABLE_TELEMETRY": "true",
                    "PYTHONPATH": str(ROOT), **env}
        self.log, self.cwd = log, cwd
        self.proc: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"
        self.started: list[psutil.Process] = []  # the service's processes seen at a stop

    def start(self, *args: str) -> None:
        self.port = int(self.env["BLINK_PORT"])
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "blink", "run", *args],
                                         env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT)

    async def wait_healthy(self, limit: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while True:
            assert self.proc.poll() is None, f"blink exited: {self.text()[-3000:]}"
            try:
                if (await self.get("/healthz"))[0] == 200:
                    return
            except OSError:
                pass
            assert loop.time() < end, "blink never answered /healthz"
            await asyncio.sleep(0.1)

    async def get(self, path: str, method: str = "GET", body: dict | None = None,
                  headers: dict | None = None) -> tuple[int, dict]:
        def call() -> tuple[int, dict]:
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  **(headers or {})})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")

        return await asyncio.to_thread(call)

    async def metric(self, name: str, **labels) -> float:
        def scrape() -> str:
            with urllib.request.urlopen(self.base + "/metrics", timeout=5) as r:
                return r.read().decode()

        from prometheus_client.parser import text_string_to_metric_families

        # summed over the labels not given (every product's, unless `product=` is)
        families = text_string_to_metric_families(await asyncio.to_thread(scrape))
        return total(families, name, **labels)

    async def stop(self, sig: int = signal.SIGTERM, limit: float = 60.0) -> int:
        self.started += self.tree()
        self.proc.send_signal(sig)
        return await asyncio.to_thread(self.proc.wait, limit)

    def tree(self) -> list[psutil.Process]:
        """Every process the service started and that still runs (children, grandchildren)."""
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL the service; its children end on their own (they watch it): wait for them,
        and kill what is still running after 30 s so that no test leaks a process."""
        if self.proc is not None and self.proc.poll() is None:
            self.started += self.tree()
            self.proc.kill()
            self.proc.wait(10)
        for p in wait_gone(self.started, 30):
            p.kill()
        self.started = []

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
