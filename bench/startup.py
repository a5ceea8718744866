"""Start-up time to /healthz 200 and RSS after start-up, against a bare `import aiohttp`; and
the same with 10 products (`PAIRS`) beside 1, in the same run (issue 15's start-up target).

Warm: the data directory (embedded PostgreSQL) exists; a first start of each case creates it
and is not counted. The 1- and 10-product starts alternate, so both see the same load."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.report import PRODUCTS, table, write_section
from bench.service import free_port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _bare_import() -> tuple[float, float]:
    """(seconds, RSS MB) of a python that only imports aiohttp."""
    code = ("import time,sys; t=time.perf_counter(); import aiohttp; "
            "d=time.perf_counter()-t; rss=[l for l in open('/proc/self/status') "
            "if l.startswith('VmRSS')][0].split()[1]; print(d, int(rss)/1024)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return time.perf_counter() - t0, float(out[1])


def _blink_startup(data_dir: str, steady_seconds: float,
                   products: tuple[str, ...] = PRODUCTS[:1]) -> tuple[float, float, float]:
    """(seconds to /healthz 200, RSS MB right after, RSS MB after `steady_seconds`)."""
    port = free_port()
    env = {**os.environ, "BLINK_PORT": str(port), "BLINK_DATA_DIR": data_dir,
           "BLINK_SOURCE": "synthetic", "BLINK_SPEED": "1", "LOG_LEVEL": "WARNING",
           "PAIRS": ",".join(products)}
    for k in ("PG_DSN", "REDIS_URL", "REDIS_HOST", "MLFLOW_TRACKING_URI", "PAIR"):
        env.pop(k, None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "blink", "run"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("blink exited during start-up") from None
                time.sleep(0.01)
        dt = time.perf_counter() - t0
        rss0 = _rss_mb(proc.pid)
        time.sleep(steady_seconds)
        rss1 = _rss_mb(proc.pid)
        return dt, rss0, rss1
    finally:
        proc.terminate()
        proc.wait(30)


def run(repeats: int = 5, steady_seconds: float = 20.0) -> str:
    blink, many = [], []
    with tempfile.TemporaryDirectory() as tmp:
        _blink_startup(tmp, 0)  # first run creates the data directory (initdb)
        _blink_startup(tmp, 0, PRODUCTS)  # and the first with every product is not counted
        for i in range(repeats):
            steady = steady_seconds if i == repeats - 1 else 0
            blink.append(_blink_startup(tmp, steady))
            many.append(_blink_startup(tmp, steady, PRODUCTS))
    bare = [_bare_import() for _ in range(repeats)]
    load = os.getloadavg()
    b_t = statistics.median(t for t, _, _ in blink)
    a_t = statistics.median(t for t, _ in bare)
    b_rss = statistics.median(r for _, r, _ in blink)
    steady = blink[-1][2]
    a_rss = statistics.median(r for _, r in bare)
    n, m_t = len(PRODUCTS), statistics.median(t for t, _, _ in many)
    m_rss = statistics.median(r for _, r, _ in many)
    rows = [
        ("start → /healthz 200 (data dir exists, embedded PostgreSQL)", f"{b_t:.2f} s",
         f"{a_t:.2f} s", f"{b_t / a_t:.1f}×", "≤ 2.5 s"),
        (f"the same with {n} products (`PAIRS`); ratio: against 1 product", f"{m_t:.2f} s",
         "", f"{m_t / b_t:.2f}×", "≤ 2.5 s"),
        ("RSS right after start-up", f"{b_rss:.0f} MB", f"{a_rss:.0f} MB",
         f"{b_rss / a_rss:.1f}×", "≤ 350 MB"),
        (f"RSS after {steady_seconds:.0f} s on the synthetic feed", f"{steady:.0f} MB",
         f"{a_rss:.0f} MB", f"{steady / a_rss:.1f}×", "≤ 350 MB"),
        (f"RSS right after start-up, {n} products; ratio: against 1 product", f"{m_rss:.0f} MB",
         "", f"{m_rss / b_rss:.2f}×", ""),
        (f"RSS after {steady_seconds:.0f} s on the synthetic feed, {n} products; ratio: "
         "against 1 product", f"{many[-1][2]:.0f} MB", "", f"{many[-1][2] / steady:.2f}×", ""),
    ]
    body = ("## Start-up and memory\n\n"
            f"Median of {repeats} starts of `python -m blink run` (embedded PostgreSQL, "
            "synthetic source), next to a bare `python -c 'import aiohttp'` in the same run. "
            "The embedded PostgreSQL server is not in Blink's RSS (separate processes). "
            "`import mlflow` stays off the start-up path. The 1- and "
            f"{n}-product starts alternate in the same run (a first start of each, which "
            "creates the data directory, is not counted). /healthz answers once every cleanup "
            "context ran; each product's model is resolved and loaded afterwards by the model "
            "watcher in the background (not in this figure). With the synthetic source every "
            "product's history (`bootstrap_hours`) is generated and played on the event loop "
            "as the app starts, so the 10-product time includes the loop time that playback "
            "takes before /healthz is answered (the live source's REST bootstrap waits on the "
            "network instead). Load average at the end "
            "(1 / 5 / 15 min): "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (2 cores, shared).\n\n"
            + table(rows, ("what", "blink", "bare aiohttp", "ratio", "target")))
    return body


def main() -> None:
    write_section("startup", run())
