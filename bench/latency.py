"""Latency at the live rate: frame received → trade scored, and → trade written.

The fake exchange (`bench.feed`, its own process) sends `BLINK_BENCH_LATENCY_SECONDS` (default
60) of generated trades at the live rate — ~7.3 trades/s, sweeps of several fills at once
going out together, like Coinbase BTC-USD — to a warm Blink pipeline in this
process (`bench.pipeline`: websocket, tape, writer, detector with a trained model). The harness
(`bench.pipeline.Stamps`) stamps `time.perf_counter()` when `CoinbaseSource.frame` is handed a
frame (before parsing), when a listener subscribed after the detector sees the trade (the
score and `Latest` are updated by then), and when the writer's INSERT holding the trade
returned (committed). Nothing is added to Blink's hot path: the stamps come from wrappers
installed by this benchmark.

Side by side in one run, each variant for that many seconds, in two halves played in mirrored
order (A B B A: the machine's drift falls on both alike), each half a fresh pipeline and feed:
the model scoring its tails in numpy as before `blink/model/_tails.c`
(`tests.support.tails_reference.NumpyServed`, the baseline), and Blink's `ServedModel` (forest
walk and tails in C). Each half's p99 is reported too: one late sweep of fills decides it.
"""

from __future__ import annotations

import asyncio
import os

from bench.feed import RATE
from bench.pipeline import FeedServer, stamped, train_model
from bench.report import pct, table, write_section
from bench.service import scratch_database
from blink import config
from tests.support.tails_reference import NumpyServed

BASELINE, COMPILED = "tails in numpy (before)", "tails compiled"


def main() -> None:
    seconds = float(os.environ.get("BLINK_BENCH_LATENCY_SECONDS", "60"))
    settings = config.load(env={}, flags={"data_dir": "/tmp/blink-bench"})
    served = train_model(settings)
    variants = {BASELINE: NumpyServed.of(served), COMPILED: served}
    runs = {name: [] for name in variants}
    for name in [*variants, *reversed(variants)]:
        with scratch_database() as dsn:
            runs[name].append(asyncio.run(stamped(dsn, FeedServer(), variants[name], "pace",
                                                  int(seconds / 2 * RATE))))
        print(f"{name}: half done", flush=True)

    def ms(name: str, which: str) -> list[float]:
        return [v for stamps, _ in runs[name] for v in stamps.ms(getattr(stamps, which))]

    for name, parts in runs.items():
        for stamps, sent in parts:
            assert len(stamps.scored) == len(stamps.written) == sent["sent"], name

    def row(what, values, target=""):
        return (what, f"{pct(values, 0.5):.2f}", f"{pct(values, 0.99):.2f}",
                f"{max(values):.2f}", target)

    def pauses(name: str) -> str:
        gcs = [p for stamps, _ in runs[name] for p in stamps.gc_ms]
        return f"{name} {len(gcs)} (max {max(gcs, default=0.0):.1f} ms)"

    def halves(name: str) -> str:
        return " / ".join(f"{pct(stamps.ms(stamps.scored), 0.99):.2f}"
                          for stamps, _ in runs[name])

    n = sum(sent["sent"] for _, sent in runs[COMPILED])
    secs = sum(sent["seconds"] for _, sent in runs[COMPILED])
    body = "\n\n".join([
        "## Latency at the live rate\n\n"
        f"{n:,} trades over {secs:.0f} s per variant ({n / secs:.1f}/s, sweeps of "
        "several fills at once included) from the fake exchange (`bench/feed.py`, its own "
        "process) into a warm Blink (`bench/pipeline.py`, model: IsolationForest 100 trees "
        "+ 9 calibrated tails). Side by side in one run, each variant in two halves played in "
        "mirrored order (A B B A), each half a fresh pipeline: the tails scored in numpy as "
        "before `blink/model/_tails.c` (baseline) and compiled (Blink). Clock starts when "
        "`CoinbaseSource.frame` gets the frame. The writer flushes every "
        f"`writer_flush_ms` = {settings.writer_flush_ms} ms: that wait dominates "
        "*frame → written* by design. frame → score p99 of each half (ms): "
        + "; ".join(f"{name} {halves(name)}" for name in runs)
        + ". Garbage-collection passes during the measured trades: "
        + "; ".join(pauses(name) for name in runs) + ". 1-minute load average at the end: "
        f"{os.getloadavg()[0]:.2f} (2 cores, shared). The same path with 10 products at 10× "
        "the live rate: *Several products on one websocket*.",
        table([row("frame → tape (parse + dedupe; compiled run)", ms(COMPILED, "taped")),
               *[row(f"frame → score updated, {name}", ms(name, "scored"),
                     "p99 ≤ 2 ms" if name == COMPILED else "") for name in runs],
               row("frame → trade committed in PostgreSQL (compiled run)",
                   ms(COMPILED, "written"), "p99 ≤ 250 ms")],
              ("what", "p50 ms", "p99 ms", "max ms", "target")),
    ])
    write_section("latency", body)
    print(body)


if __name__ == "__main__":
    main()
