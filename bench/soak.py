"""Soak and overload: one real `python -m blink run` fed by the fake exchange at 100× the
live rate for `BLINK_SOAK_SECONDS` (default 600) with `/score` under steady wrk load and one
retrain, then a burst past what the machine takes, then the normal rate again.

Feed lag is measured on the exchange's schedule: the trades of second k are due at t0 + k; a
sample's lag is now minus the due time of the oldest trade Blink has not ingested yet (0 when
it has them all), with progress = the seeded id + `blink_trades_ingested_total`. (The fake's
trade times advance at the live event pace, ~100× slower than they are sent, so
`blink_feed_lag_seconds`, now minus the newest trade time, means nothing here.) Blink's own
view is `blink_feed_behind_seconds`: now minus the last heartbeat's exchange time.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from bench.api import ensure_wrk, wrk
from bench.pipeline import HISTORY, FeedServer, seed
from bench.report import pct, table, write_section
from bench.service import blink, get, scratch_database, wait_ready
from tests.fakes.trades import TradeGen

SOAK = int(os.environ.get("BLINK_SOAK_SECONDS", "600"))
RATE = 730  # trades/s: 100× Coinbase BTC-USD's ~7.3/s
WARMUP = 20  # s after /score is ready before the "start" figures are taken
OVERLOAD = int(os.environ.get("BLINK_SOAK_OVERLOAD", "200000"))  # trades in one burst
RECOVER = 60  # s at the normal rate after the burst
WRITER_QUEUE = 20_000  # a small in-memory bound so the overload shows the spill
CONNECTIONS = 4  # wrk's steady /score load


def retrain_every() -> float:
    """Event seconds between retrains so that exactly one falls ~60 % into the soak: the
    fake's generator (seed 1, as `bench.feed` runs it) is replayed to measure its event pace."""
    gen = TradeGen(1, rate=7.0)
    begin = gen.trades(HISTORY)[-1].ts
    for _ in range(SOAK):
        end = gen.trades(RATE)[-1].ts
    return 0.6 * (end - begin)


def proc_stats(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return {"rss": rss / 1024, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def scrape(base: str) -> dict[str, float]:
    """Every sample of /metrics summed over its labels (name → value)."""
    import urllib.request

    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


class Feeder:
    """Sends `RATE` trades every second (`burst` commands), optionally one big burst;
    remembers when each block of ids was due."""

    def __init__(self, server: FeedServer) -> None:
        self.server, self.next_id = server, server.info["last"] + 1
        self.blocks: list[tuple[float, int]] = []  # (due wall time, last id of the block)
        self.sent_last = server.info["last"]

    async def send(self, n: int, due: float) -> None:
        self.blocks.append((due, self.next_id + n - 1))
        self.next_id += n
        self.sent_last = (await self.server.command("burst", n))["last"]

    async def steady(self, seconds: float) -> None:
        start = time.time()
        for k in range(int(seconds)):
            await asyncio.sleep(max(0.0, start + k - time.time()))
            await self.send(RATE, start + k)

    def lag(self, now: float, progress: int) -> float:
        for due, last in self.blocks:
            if last > progress:
                return max(0.0, now - due)
        return 0.0


class Sampler:
    """Once a second: lag (schedule vs ingested), Blink's own heartbeat lag, /readyz, RSS."""

    def __init__(self, base: str, pid: int, feeder: Feeder, seeded: int) -> None:
        self.base, self.pid, self.feeder, self.seeded = base, pid, feeder, seeded
        self.rows: list[dict] = []

    def sample(self, phase: str) -> dict:
        m = scrape(self.base)
        _, ready = get(f"{self.base}/readyz", timeout=30)
        now, progress = time.time(), self.seeded + int(m.get("blink_trades_ingested_total", 0))
        writer = ready.get("components", {}).get("writer", {})
        row = {"phase": phase, "t": now, "lag": self.feeder.lag(now, progress),
               "progress": progress, "behind": m.get("blink_feed_behind_seconds", 0.0),
               "degraded": ready.get("degraded"), "reasons": ready.get("degraded_reasons"),
               "queued": int(m.get("blink_writer_queue_depth", 0)),
               "spilled": writer.get("spilled", 0),
               "spilled_total": m.get("blink_writer_spilled_total", 0.0),
               "trainings": m.get("blink_training_runs_total", 0.0), "tasks": ready.get("tasks"),
               **proc_stats(self.pid)}
        self.rows.append(row)
        return row

    async def run(self, phase: list[str], stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.time()
            await asyncio.to_thread(self.sample, phase[0])
            await asyncio.sleep(max(0.0, 1.0 - (time.time() - t)))

    def of(self, phase: str, key: str) -> list:
        return [r[key] for r in self.rows if r["phase"] == phase]


async def stored(pg: str, first: int, last: int) -> int:
    conn = await asyncpg.connect(pg)
    try:
        return await conn.fetchval("SELECT count(DISTINCT trade_id) FROM trades"
                                   " WHERE trade_id BETWEEN $1 AND $2", first, last)
    finally:
        await conn.close()


async def session(pg: str, tmp: str) -> dict:
    server = FeedServer()
    try:
        await seed(pg, server)
        env = {"PG_DSN": pg, "BLINK_COINBASE_WS_URL": server.ws_url,
               "BLINK_COINBASE_REST_URL": f"http://127.0.0.1:{server.port}",
               "BLINK_REST_RATE": "8", "BLINK_TRAIN_MIN_ROWS": "300",
               "BLINK_RETRAIN_SECONDS": f"{retrain_every():.0f}",
               "BLINK_REGISTRY_POLL_SECONDS": "5",
               "BLINK_WRITER_QUEUE": str(WRITER_QUEUE)}
        with blink(env, tmp) as (base, proc):
            return await drive(pg, server, base, proc.pid)
    finally:
        server.close()


async def drive(pg: str, server: FeedServer, base: str, pid: int) -> dict:
    feeder = Feeder(server)
    sampler = Sampler(base, pid, feeder, server.info["first"] - 1)
    phase, stop = ["warmup"], asyncio.Event()
    total = WARMUP + SOAK + 5
    feeding = asyncio.create_task(feeder.steady(total + 300))  # cancelled after the soak
    await asyncio.to_thread(wait_ready, base, 300)
    await asyncio.sleep(WARMUP)
    sampling = asyncio.create_task(sampler.run(phase, stop))
    start = await asyncio.to_thread(sampler.sample, "start")
    phase[0] = "soak"
    score = await asyncio.to_thread(wrk, f"{base}/score", CONNECTIONS, SOAK)
    end = await asyncio.to_thread(sampler.sample, "end")
    feeding.cancel()
    await asyncio.gather(feeding, return_exceptions=True)
    phase[0] = "overload"
    t0 = time.time()
    await feeder.send(OVERLOAD, t0)
    burst_seconds = time.time() - t0
    phase[0] = "recover"
    await feeder.steady(RECOVER)
    await asyncio.sleep(3)
    stop.set()
    await sampling
    last = await asyncio.to_thread(sampler.sample, "final")
    first = server.info["first"]
    n = await stored(pg, first, feeder.sent_last)
    return {"start": start, "end": end, "final": last, "score": score, "sampler": sampler,
            "burst_seconds": burst_seconds, "lost": feeder.sent_last - first + 1 - n,
            "sent": feeder.sent_last - first + 1, "stored": n}


def body(r: dict) -> str:
    s, e, f, sampler = r["start"], r["end"], r["final"], r["sampler"]
    soak_lag, soak_behind = sampler.of("soak", "lag"), sampler.of("soak", "behind")
    over = [row for row in sampler.rows if row["phase"] == "overload"]
    rec = [row for row in sampler.rows if row["phase"] == "recover"]
    peak = max(over + rec, key=lambda row: row["lag"], default=f)
    rss_peak = max(row["rss"] for row in sampler.rows)
    said = next((row for row in over + rec if row["degraded"]), None)
    growth = (e["rss"] - s["rss"]) / s["rss"] * 100
    rows = [
        ("RSS (MB)", f"{s['rss']:.0f}", f"{e['rss']:.0f}", f"{growth:+.1f} % (target ≤ 10 %)"),
        ("asyncio tasks", s["tasks"], e["tasks"], "no leak" if e["tasks"] <= s["tasks"] else
         "grew"),
        ("open fds", s["fds"], e["fds"], "no leak" if e["fds"] <= s["fds"] else "grew"),
        ("trainings run (counter)", f"{s['trainings']:.0f}", f"{e['trainings']:.0f}",
         f"{e['trainings'] - s['trainings']:.0f} retrain(s) during the soak"),
    ]
    lag_p99 = pct(soak_lag, 0.99) if soak_lag else float("nan")
    behind_p99 = pct(soak_behind, 0.99) if soak_behind else float("nan")
    return (
        "## Soak and overload\n\n"
        f"One `python -m blink run` (PostgreSQL on 127.0.0.1, model trained by Blink itself "
        f"early in the run, `BLINK_WRITER_QUEUE={WRITER_QUEUE}`) fed by the fake exchange "
        f"(`bench/feed.py`, own process) at {RATE} trades/s (100× live) for **{SOAK} s**, "
        f"`/score` under `wrk -t2 -c{CONNECTIONS}` the whole time. Start figures are taken "
        f"{WARMUP} s after `/score` is ready. Feed lag: now minus when the oldest trade not "
        "yet ingested was due on the exchange's schedule, sampled every second; *behind*: "
        "Blink's own `blink_feed_behind_seconds` (heartbeat time vs now; the fake stamps "
        "heartbeats to the whole second, so up to 1 s of it is the stamp).\n\n"
        + table(rows, ("", "start", "end", "")) + "\n\n"
        f"- feed lag p99 **{lag_p99:.2f} s** (max {max(soak_lag, default=0):.2f} s); "
        f"behind p99 {behind_p99:.2f} s\n"
        f"- `/score` p99 **{r['score']['p99']:.2f} ms** (p50 {r['score']['p50']:.2f} ms, "
        f"{r['score']['rps']:,.0f} req/s)\n"
        f"- trades lost: **{r['lost']}** ({r['stored']:,} stored of {r['sent']:,} sent, "
        "history, soak, overload and recovery included)\n\n"
        f"**Overload**: one burst of {OVERLOAD:,} trades as fast as the socket takes them "
        f"(the fake needed {r['burst_seconds']:.1f} s to get them all onto the socket), then "
        f"{RATE}/s again for {RECOVER} s.\n\n"
        f"- lag peaked at **{peak['lag']:.1f} s** (Blink's own *behind* then "
        f"{peak['behind']:.1f} s); `/readyz` said `degraded: true` "
        + (f"{said['t'] - over[0]['t']:.0f} s into the burst: {said['reasons']}"
           if said and over else "**never** (missed)") + "\n"
        f"- writer: at most {max(row['queued'] for row in sampler.rows):,} queued, "
        f"{f['spilled_total']:,.0f} spilled to disk in all; RSS peak {rss_peak:.0f} MB "
        f"(soak end {e['rss']:.0f} MB)\n"
        f"- after the load dropped: lag {f['lag']:.2f} s, writer queued {f['queued']}, "
        f"spill {f['spilled']}, degraded {f['degraded']}\n")


def main() -> None:
    ensure_wrk()
    with scratch_database() as pg, tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(session(pg, tmp))
    text = body(result)
    print(text)
    write_section("soak", text)
