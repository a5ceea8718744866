"""Start a real Blink process for a benchmark and wait until it answers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

from tests.support.faultkit import free_port  # the one helper; bench.pipeline imports it from here

ADMIN_DSN = os.environ.get("BLINK_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def get(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@contextlib.contextmanager
def scratch_database():
    """A throwaway database on the local PostgreSQL (psql), dropped afterwards."""
    name = f"blink_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", ADMIN_DSN, "-qc", f'CREATE DATABASE "{name}"'], check=True)
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        subprocess.run(["psql", ADMIN_DSN, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                       check=False)


@contextlib.contextmanager
def blink(env: dict, data_dir: str, args: tuple[str, ...] = ()):
    """Run `python -m blink run` with `env`; yields (base_url, process)."""
    port = free_port()
    full = {**os.environ, "BLINK_PORT": str(port), "BLINK_DATA_DIR": data_dir,
            "LOG_LEVEL": "WARNING", "MLFLOW_DISABLE_TELEMETRY": "true", **env}
    proc = subprocess.Popen([sys.executable, "-m", "blink", "run", *args], env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(60)


def wait_ready(base: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = get(f"{base}/score")
        if status == 200 and body.get("ready"):
            return body
        time.sleep(0.5)
    raise RuntimeError(f"/score not ready after {timeout} s")
