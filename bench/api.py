"""HTTP: `/score` against a trivial JSON route of the same app (wrk, same run), `/score` p99
while retrains run against idle, and `/demo/data?minutes=1440` on 24 h of stored features."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time

from bench.report import table, write_section
from bench.service import blink, get, scratch_database, wait_ready

WRK_SECONDS = 10


def ensure_wrk() -> None:
    """wrk from the distribution when missing (as .ci/run installs chromium)."""
    if shutil.which("wrk"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("wrk is missing: apt-get install wrk", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def wrk(url: str, connections: int = 32, seconds: int = WRK_SECONDS) -> dict:
    """req/s, p50 and p99 (ms) from `wrk --latency`."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(q: str) -> float:
        value, unit = re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": rps, "p50": ms("50"), "p99": ms("99")}


def _env(pg: str, retrain_seconds: float) -> dict:
    return {"PG_DSN": pg, "BLINK_SOURCE": "synthetic", "BLINK_SPEED": "100",
            "BLINK_TRAIN_MIN_ROWS": "300", "BLINK_RETRAIN_SECONDS": str(retrain_seconds),
            "BLINK_REGISTRY_POLL_SECONDS": "2"}


def demo_data_latency(base: str, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        status, body = get(f"{base}/demo/data?minutes=1440", timeout=30)
        times.append(time.perf_counter() - t0)
        assert status == 200, body
    return sorted(times)[len(times) // 2] * 1000


def seed_features(pg: str, hours: int = 24) -> None:
    """24 h of 1-second feature rows (86,400) so /demo/data has a full day to downsample."""
    sql = """
    INSERT INTO synthetic.features (product_id, time, trade_id, price, vector, score_raw,
                                    anomaly, model_version)
    SELECT 'BTC-USD', now() - make_interval(secs => g), g, 60000 + sin(g / 600.0) * 300,
           '{}'::jsonb, -0.45 - random() * 0.1, random() < 0.001, 'bench'
    FROM generate_series(1, :seconds) AS g ON CONFLICT DO NOTHING"""
    subprocess.run(["psql", pg, "-v", f"seconds={hours * 3600}", "-q"], input=sql, text=True,
                   check=True)


def run() -> str:
    ensure_wrk()
    rows = []
    with scratch_database() as pg, tempfile.TemporaryDirectory() as tmp:
        # idle: no retrain after the first model (retrain cadence far beyond the run)
        with blink(_env(pg, 10 ** 7), tmp) as (base, _):
            wait_ready(base)
            trivial = wrk(f"{base}/healthz")
            score = wrk(f"{base}/score")
            seed_features(pg)
            demo_ms = demo_data_latency(base)
        # busy: a retrain every 60 s of event time = every 0.6 s of wall time at speed 100
        with blink(_env(pg, 60), tmp) as (base, _):
            wait_ready(base)
            busy = wrk(f"{base}/score")
            status, ready = get(f"{base}/readyz")
            runs = ready["components"].get("training", {})
    rows.append(("GET /healthz (trivial JSON route)", f"{trivial['rps']:,.0f}",
                 f"{trivial['p50']:.2f}", f"{trivial['p99']:.2f}", "1.00"))
    rows.append(("GET /score (ready, live features)", f"{score['rps']:,.0f}",
                 f"{score['p50']:.2f}", f"{score['p99']:.2f}",
                 f"{score['rps'] / trivial['rps']:.2f}"))
    rows.append(("GET /score while retrains run", f"{busy['rps']:,.0f}", f"{busy['p50']:.2f}",
                 f"{busy['p99']:.2f}", f"{busy['rps'] / trivial['rps']:.2f}"))
    return (
        "## HTTP: /score, retrain interference, /demo/data\n\n"
        f"`wrk -t2 -c32 -d{WRK_SECONDS}s --latency` on the same machine against one Blink "
        "process (synthetic feed at ×100, a trained model served, PostgreSQL on 127.0.0.1). "
        "The ratio column is req/s against the trivial route of the same app in the same run "
        "(target ≥ 0.8).\n\n"
        + table(rows, ("route", "req/s", "p50 ms", "p99 ms", "ratio to trivial")) + "\n\n"
        f"- `/score` p99 while retrains run / idle: **{busy['p99'] / score['p99']:.2f}×** "
        f"(target ≤ 1.5×; last retrain: {runs.get('seconds', '?')} s, "
        f"{runs.get('rows', '?')} rows).\n"
        f"- `/demo/data?minutes=1440` on 24 h of stored 1-second feature rows (86,400 rows, "
        f"downsampled in PostgreSQL): **{demo_ms:.0f} ms** median of 20.\n")


def main() -> None:
    write_section("api", run())
