"""Several products on one websocket: 10 products at 10x the live rate each, beside one.

The fake exchange (`bench/feed.py`, its own process) paces every product's trades at `SPEED`
times the live rate (~7.3 trades/s each, sweeps of several fills at once included) over ONE
websocket into Blink's real pipeline in this process, warm (`bench/pipeline.py`: Coinbase
source -> one tape per product -> one writer -> PostgreSQL, and -> that product's detector,
each with its own copy of one trained model). Side by side in one run, each on a fresh
database: ONE product at the same per-product rate. Stamps (`bench.pipeline.Stamps`) per
trade: the clock starts when `CoinbaseSource.frame` gets the frame; taped, scored (the
product's detector has scored it and updated its `Latest`), committed.
`BLINK_BENCH_PRODUCTS_SECONDS` (default 30) sets the length of each run in wall time (each
product sends that many seconds × 7.3 × SPEED trades).
"""

from __future__ import annotations

import asyncio
import os

from bench.feed import RATE
from bench.pipeline import FeedServer, Stamps, stamped, train_model
from bench.report import PRODUCTS, pct, table, write_section
from bench.service import scratch_database
from blink import config

SPEED = 10.0
HISTORY = 8_000  # trades of each product before the run: every product's features get ready


async def measure(dsn: str, products: tuple[str, ...], seconds: float,
                  served) -> tuple[Stamps, dict]:
    n = int(seconds * RATE * SPEED)  # trades of each product: `seconds` of wall time
    return await stamped(dsn, FeedServer(HISTORY, products), served, "products",
                         f"{n} {SPEED}")


def main() -> None:
    seconds = float(os.environ.get("BLINK_BENCH_PRODUCTS_SECONDS", "30"))
    served = train_model(config.load(env={}, flags={"data_dir": "/tmp/blink-bench"}))
    runs, load = {}, []
    for products in (PRODUCTS[:1], PRODUCTS):
        with scratch_database() as dsn:
            runs[len(products)] = asyncio.run(measure(dsn, products, seconds, served))
        load.append(os.getloadavg()[0])
    rows, p99 = [], {}
    whats = (("frame → tape", "taped"), ("frame → scored", "scored"),
             ("frame → committed", "written"))
    for n, (stamps, sent) in runs.items():
        ms = {key: stamps.ms(getattr(stamps, key)) for _, key in whats}
        assert all(len(v) == sent["sent"] for v in ms.values()), (
            {k: len(v) for k, v in ms.items()}, sent)
        p99[n] = {key: pct(v, 0.99) for key, v in ms.items()}
        for what, key in whats:
            v = ms[key]
            rows.append((f"{n} product{'s' if n > 1 else ''}, {sent['sent'] / sent['seconds']:.0f}"
                         f" trades/s", what, f"{pct(v, 0.5):.2f}", f"{pct(v, 0.99):.2f}",
                         f"{max(v):.2f}", "p99 ≤ 2 ms" if key == "scored" and n > 1 else ""))
    many, one = p99[len(PRODUCTS)], p99[1]
    met = "met" if many["scored"] <= 2 else "**not met**"
    body = "\n\n".join([
        "## Several products on one websocket\n\n"
        f"{len(PRODUCTS)} products at {SPEED:g}× the live rate each (~{RATE * SPEED:.0f} "
        "trades/s per product) over one websocket from the fake exchange (`bench/feed.py`, its "
        "own process) into a warm Blink (`bench/pipeline.py`: one tape and one detector per "
        "product, each detector its own copy of one trained model, one writer, PostgreSQL), "
        f"beside one product at the same rate, {seconds:g} s each. Clock starts when "
        "`CoinbaseSource.frame` gets the frame; *scored*: the product's detector has scored "
        "the trade and updated its `Latest`; *committed* includes the writer's "
        "`writer_flush_ms` wait by design. 1-minute load average after each run: "
        f"{load[0]:.2f} / {load[1]:.2f} (2 cores, shared).",
        table(rows, ("run", "what", "p50 ms", "p99 ms", "max ms", "target")),
        f"p99 ratio, {len(PRODUCTS)} products / 1: frame → tape "
        f"{many['taped'] / one['taped']:.2f}×, "
        f"frame → scored {many['scored'] / one['scored']:.2f}×, frame → committed "
        f"{many['written'] / one['written']:.2f}×. Longest garbage-collection pause of the "
        f"process during each run (`gc.callbacks`; a full collection stops every product at "
        f"once: the *max* column): 1 product {max(runs[1][0].gc_ms, default=0):.1f} ms, "
        f"{len(PRODUCTS)} products {max(runs[len(PRODUCTS)][0].gc_ms, default=0):.1f} ms. "
        f"Target (issue 15: {len(PRODUCTS)} products "
        f"at {SPEED:g}×, trade → score p99 ≤ 2 ms): {met}.",
    ])
    write_section("multifeed", body)
    print(body)


if __name__ == "__main__":
    main()
