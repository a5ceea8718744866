"""Time from start to the first score on a FRESH data directory (embedded PostgreSQL, new
MLflow store): `make demo`'s command, and a first live start against the fake exchange.

- demo: `python -m blink run --source synthetic --speed 10` (what `make demo` runs);
- live: `python -m blink run` against `tests.fakes.coinbase.FakeCoinbase` served in this
  process with `HISTORY_HOURS` of REST history (~6.6 trades/s, stationary rate), its REST
  rate limit as Coinbase's public one (10 req/s, burst 15, 429 above) and live trades paced at
  the average rate (`bench.feed.pace`); Blink on its default `rest_rate` (4/s).

The clock starts when the process is started and stops at the first `GET /score` with
`"ready": true`; `/readyz`'s warm-up (what it waits for) is sampled on the way. One run each.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.feed import pace
from bench.report import table, write_section
from bench.service import free_port
from tests.fakes.coinbase import FakeCoinbase

HISTORY_HOURS = 4.0
LIMIT = 600.0  # give up after this many seconds


async def _get(http: aiohttp.ClientSession, url: str) -> dict:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
            return await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}


async def _first_score(env: dict, args: list[str]) -> tuple[float, list[tuple[float, str]]]:
    """(seconds to the first ready /score, the warm-up stages seen with their start times)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **env, "BLINK_PORT": str(port), "BLINK_DATA_DIR": f"{tmp}/data",
               "MLFLOW_DISABLE_TELEMETRY": "true", "LOG_LEVEL": "INFO"}
        for k in ("PG_DSN", "REDIS_URL", "REDIS_HOST", "MLFLOW_TRACKING_URI"):
            env.pop(k, None)
        log = Path(tmp, "log")
        with log.open("w") as out:  # noqa: ASYNC230 - once, before the clock matters
            t0 = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "blink", "run", *args, env=env, stdout=out,
                stderr=asyncio.subprocess.STDOUT)
        stages: list[tuple[float, str]] = []
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                while time.perf_counter() - t0 < LIMIT:
                    if proc.returncode is not None:
                        raise RuntimeError(log.read_text()[-3000:])  # noqa: ASYNC240
                    if (await _get(http, f"{base}/score")).get("ready"):
                        return time.perf_counter() - t0, stages
                    warm = (await _get(http, f"{base}/readyz")).get("warmup") or {}
                    stage = warm.get("waiting_for") or "starting"
                    if not stages or stages[-1][1] != stage:
                        stages.append((time.perf_counter() - t0, stage))
                    await asyncio.sleep(0.25)
            raise RuntimeError(f"no score after {LIMIT:.0f} s")
        finally:
            proc.terminate()
            await proc.wait()


async def _live() -> tuple[float, list, int, int]:
    fake = FakeCoinbase(history_seconds=HISTORY_HOURS * 3600, heartbeat_interval=1.0,
                        compress=False)
    runner = web.AppRunner(fake.app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    feed = asyncio.create_task(_paced(fake))
    try:
        took, stages = await _first_score(
            {"BLINK_COINBASE_WS_URL": f"ws://127.0.0.1:{port}/",
             "BLINK_COINBASE_REST_URL": f"http://127.0.0.1:{port}"}, [])
    finally:
        feed.cancel()
        await runner.cleanup()
    return took, stages, len(fake.trades), fake.rest_requests


async def _paced(fake: FakeCoinbase) -> None:
    """Live trades at the average rate, made a few at a time (making a million up front would
    block this loop, which also serves the fake's REST)."""
    while True:
        await pace(fake, 100)


def _stages(stages: list) -> str:
    return " → ".join(f"{s} @{t:.0f}s" for t, s in stages)


def main() -> None:
    load0 = os.getloadavg()[0]
    demo, demo_stages = asyncio.run(_first_score({}, ["--source", "synthetic", "--speed", "10"]))
    live, live_stages, trades, requests = asyncio.run(_live())
    rows = [("`make demo` (synthetic ×10, 3 h of history generated at start)",
             f"{demo:.1f} s", "≤ 30 s", _stages(demo_stages)),
            (f"first live start, fake exchange with {HISTORY_HOURS:g} h of REST history "
             f"({trades:,} trades), 3 h loaded at 4 req/s ({requests} REST requests)",
             f"{live:.1f} s", "≤ 180 s", _stages(live_stages))]
    body = ("## Time to the first score (fresh data directory)\n\n"
            "Start of `python -m blink run` → first `GET /score` with `ready: true`, on an empty "
            "data directory (embedded PostgreSQL initialised, new MLflow store), one run each; "
            "the stages are `/readyz`'s `warmup.waiting_for` as sampled. Before this change: "
            "117 s for the demo (no history: 5,000 live warm rows), ~20 min live.\n\n"
            + table(rows, ("what", "start → /score ready", "target", "stages"))
            + f"\n\nLoad average (1 min) at the start / end of the runs: {load0:.1f} / "
            f"{os.getloadavg()[0]:.1f} (other work on the same 2 cores).")
    write_section("firstscore", body)
    print(body)
