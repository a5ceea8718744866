import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from blink.service.app import create_app
from tests.support.faultkit import free_port


async def test_healthz_and_readyz(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    r = await client.get("/healthz")
    assert r.status == 200 and await r.json() == {"ok": True}
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 503  # nothing scored yet
    assert body["ready"] is False and body["reason"] == "no_features"
    assert body["components"]["database"]["ok"] is True
    assert body["components"]["database"]["last_success"]
    assert body["source"] == "coinbase"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_embedded_run_and_graceful_sigterm(tmp_path):
    """`python -m blink` on embedded defaults comes up, answers, and stops PostgreSQL on SIGTERM."""
    port = free_port()
    env = {**os.environ, "BLINK_PORT": str(port), "BLINK_DATA_DIR": str(tmp_path / "d"),
           "BLINK_SOURCE": "synthetic", "BLINK_SPEED": "10"}
    for k in ("PG_DSN", "REDIS_URL", "REDIS_HOST", "MLFLOW_TRACKING_URI"):
        env.pop(k, None)
    proc = subprocess.Popen([sys.executable, "-m", "blink"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "embedded PostgreSQL stopped" in out
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
    pid_file = tmp_path / "d" / "pg" / "postmaster.pid"
    assert not pid_file.exists()
