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
order (A B C C B A: the machine's drift falls on all alike), each half a fresh pipeline and feed:

- *numpy tails*: the model scoring its tails in numpy as before `blink/model/_tails.c`
  (`tests.support.tails_reference.NumpyServed`), the baseline;
- *compiled*: Blink's `ServedModel` (forest walk and tails in C);
- *compiled + gc.freeze()*: the same, everything alive after the warm-up frozen out of the
  collector (`gc.freeze()` once the pipeline is warm, undone after the half).
"""

from __future__ import annotations

import asyncio
import gc
import os

from bench.feed import RATE
from bench.pipeline import FeedServer, stamped, train_model
from bench.report import pct, table, write_section
from bench.service import scratch_database
from blink import config
from tests.support.tails_reference import NumpyServed


class FrozenFeed(FeedServer):
    """A feed whose first command (sent once the pipeline is warm) is preceded by gc.freeze()."""

    async def command(self, verb: str, n: int | str) -> dict:
        gc.freeze()
        try:
            return await super().command(verb, n)
        finally:
            gc.unfreeze()


def main() -> None:
    seconds = float(os.environ.get("BLINK_BENCH_LATENCY_SECONDS", "60"))
    settings = config.load(env={}, flags={"data_dir": "/tmp/blink-bench"})
    served = train_model(settings)
    variants = {"numpy tails (before)": (FeedServer, NumpyServed.of(served)),
                "compiled tails": (FeedServer, served),
                "compiled tails + gc.freeze()": (FrozenFeed, served)}
    runs = {name: [] for name in variants}
    order = list(variants) + list(reversed(variants))
    for name in order:
        feed, model = variants[name]
        with scratch_database() as dsn:
            runs[name].append(asyncio.run(
                stamped(dsn, feed(), model, "pace", int(seconds / 2 * RATE))))
        print(f"{name}: half done", flush=True)

    def ms(name: str, which: str) -> list[float]:
        return [v for stamps, _ in runs[name] for v in stamps.ms(getattr(stamps, which))]

    for name, halves in runs.items():
        for stamps, sent in halves:
            assert len(stamps.scored) == len(stamps.written) == sent["sent"], name

    def row(what, values, target=""):
        return (what, f"{pct(values, 0.5):.2f}", f"{pct(values, 0.99):.2f}",
                f"{max(values):.2f}", target)

    def pauses(name: str) -> str:
        gcs = [p for stamps, _ in runs[name] for p in stamps.gc_ms]
        return f"{name} {len(gcs)} (max {max(gcs, default=0.0):.1f} ms)"

    compiled = "compiled tails"
    n = sum(sent["sent"] for _, sent in runs[compiled])
    secs = sum(sent["seconds"] for _, sent in runs[compiled])
    body = "\n\n".join([
        "## Latency at the live rate\n\n"
        f"{n:,} trades over {secs:.0f} s per variant ({n / secs:.1f}/s, sweeps of "
        "several fills at once included) from the fake exchange (`bench/feed.py`, its own "
        "process) into a warm Blink (`bench/pipeline.py`, model: IsolationForest 100 trees "
        "+ 9 calibrated tails). Three variants side by side in one run, each in two halves "
        "played in mirrored order (A B C C B A), each half a fresh pipeline: the tails scored "
        "in numpy as before `blink/model/_tails.c` (baseline), compiled (Blink), and compiled "
        "with `gc.freeze()` once the pipeline is warm. Clock starts when "
        "`CoinbaseSource.frame` gets the frame. The writer flushes every "
        f"`writer_flush_ms` = {settings.writer_flush_ms} ms: that wait dominates "
        "*frame → written* by design. Garbage-collection passes during the measured trades: "
        + "; ".join(pauses(name) for name in runs) + ". 1-minute load average at the end: "
        f"{os.getloadavg()[0]:.2f} (2 cores, shared). The same path with 10 products at 10× "
        "the live rate: *Several products on one websocket*.",
        table([row("frame → tape (parse + dedupe; compiled run)", ms(compiled, "taped")),
               *[row(f"frame → score updated, {name}", ms(name, "scored"),
                     "p99 ≤ 2 ms" if name == compiled else "") for name in runs],
               row("frame → trade committed in PostgreSQL (compiled run)",
                   ms(compiled, "written"), "p99 ≤ 250 ms")],
              ("what", "p50 ms", "p99 ms", "max ms", "target")),
    ])
    write_section("latency", body)
    print(body)


if __name__ == "__main__":
    main()
