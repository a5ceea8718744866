"""/score while 200 dashboards follow /api/stream, against /score with none, in one run.

One Blink on the synthetic feed at ×600 (each second of event time is a tick: ~40 ticks/s);
`wrk` on `/score` alone, then again while `CLIENTS` SSE clients (their own process, reading
everything) are connected. The figure is the p99 ratio (target ≤ 1.5×), and what each client
received: before coalescing it got every tick (~40/s), now at most `sse.TICK_HZ` a second.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time

from bench.api import WRK_SECONDS, ensure_wrk, wrk
from bench.report import table, write_section
from bench.service import blink, get, scratch_database, wait_ready

CLIENTS = 200
SPEED = 600
BEFORE = (  # the same command on the code before coalescing (79e4600), same machine, same day
    "- before (every tick queued, encoded and written per client; commit 79e4600, "
    "2026-12-06 21:00 UTC): with 200 clients 355 req/s, p50 77.98 ms, p99 430.58 ms = "
    "**4.20×** idle (p50 37×); clients fell behind (0.6 ticks/s and 12.3 other messages/s: the "
    "`lag` notices of their full queues, and the events).\n")


async def _read_streams(url: str, n: int, seconds: float) -> dict:
    import aiohttp

    counts = {"events": 0, "ticks": 0, "bytes": 0, "connected": 0}
    all_connected = asyncio.Event()

    async def one(session: aiohttp.ClientSession) -> None:
        async with session.get(url) as r:
            counts["connected"] += 1
            if counts["connected"] == n:
                all_connected.set()
            async for line in r.content:
                counts["bytes"] += len(line)
                if line.startswith(b"event:"):
                    counts["events"] += 1
                    counts["ticks"] += line.startswith(b"event: tick")

    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as session:
        tasks = [asyncio.create_task(one(session)) for _ in range(n)]
        await all_connected.wait()
        print("connected", flush=True)
        start = dict(counts)
        await asyncio.sleep(seconds)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {k: (counts[k] - start[k]) / seconds / n for k in ("events", "ticks", "bytes")}


def read_streams(url: str, n: int, seconds: float) -> None:
    """In its own process: n readers for `seconds` after all connected; per-client rates."""
    print(json.dumps(asyncio.run(_read_streams(url, n, seconds))), flush=True)


def with_streams(base: str) -> tuple[dict, dict]:
    code = f"from bench.stream import read_streams; read_streams({base + '/api/stream'!r}, " \
           f"{CLIENTS}, {WRK_SECONDS + 4})"
    readers = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert readers.stdout.readline().strip() == "connected"
        time.sleep(2)  # every client past its first messages
        score = wrk(f"{base}/score")
        received = json.loads(readers.stdout.readline())
    finally:
        readers.kill()
        readers.wait()
    return score, received


def run() -> str:
    ensure_wrk()
    env = {"BLINK_SOURCE": "synthetic", "BLINK_SPEED": str(SPEED),
           "BLINK_TRAIN_MIN_ROWS": "300", "BLINK_RETRAIN_SECONDS": str(10 ** 7),
           "BLINK_REGISTRY_POLL_SECONDS": "2"}
    with scratch_database() as pg, tempfile.TemporaryDirectory() as tmp:
        with blink({**env, "PG_DSN": pg}, tmp) as (base, _):
            wait_ready(base)
            idle = wrk(f"{base}/score")
            busy, received = with_streams(base)
            after = wrk(f"{base}/score")  # the clients gone: back to idle?
            status, _ = get(f"{base}/healthz")
    rows = [(label, f"{r['rps']:,.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
             f"{r['p99'] / idle['p99']:.2f}")
            for label, r in (("GET /score, no stream client", idle),
                             (f"GET /score, {CLIENTS} stream clients", busy),
                             ("GET /score, clients gone", after))]
    return (
        f"## HTTP: /score with {CLIENTS} stream clients\n\n"
        f"One Blink on the synthetic feed at ×{SPEED} (~40 ticks a second of wall time), a "
        f"trained model served; `wrk -t2 -c32 -d{WRK_SECONDS}s --latency` on `/score` without "
        f"stream clients, then while {CLIENTS} `/api/stream` clients (one Python process, "
        "reading everything) are connected, then after they left — same process, same run.\n\n"
        + table(rows, ("load", "req/s", "p50 ms", "p99 ms", "p99 / idle")) + "\n\n"
        f"- `/score` p99 with {CLIENTS} stream clients / idle: "
        f"**{busy['p99'] / idle['p99']:.2f}×** (target ≤ 1.5×); p50: "
        f"{busy['p50'] / idle['p50']:.2f}×; req/s: {busy['rps'] / idle['rps']:.2f}×.\n"
        f"- each client received {received['events']:.1f} events/s "
        f"({received['ticks']:.1f} ticks/s, {received['bytes'] / 1024:.1f} KiB/s): ticks are "
        "coalesced per client (`blink/web/sse.py`, at most 4 a second, plus the tick "
        "before each event), "
        "anomaly and model events never dropped.\n" + BEFORE)


def main() -> None:
    write_section("stream", run())
