"""Backtest throughput, store off and on, next to its parts measured in the same run.

Input: `HOURS` hours of the synthetic source written as a tick file (~8.6 trades/s, like the
live BTC-USD feed), the shipped settings (hourly retrains on 12 hours, 100 trees × 256).
Rates are trades (events) per second of wall time, each the best of `REPEATS` runs:
- its parts alone: `files.read_columns` (parsing), the raw feature engine (`Engine.run` over
  the arrays), both detector stages with a compiled forest, and the fits alone;
- the whole backtest as `python -m blink backtest` runs it (read + both stages + retrains +
  the scores CSV written to a file): fits inline, fits in the worker process (the command's
  default on 2+ cores), and store on (PostgreSQL: `PG_DSN`, else a throwaway database on the
  local server at 127.0.0.1, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import gc
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.report import table, write_section
from bench.service import scratch_database
from blink import backtest, config, files, ticks
from blink.broadcast import Broadcaster
from blink.detector import Detector
from blink.features import FEATURE_NAMES, FeatureEngine
from blink.feeds import synthetic
from blink.metrics import Metrics
from blink.model import trainer
from blink.state import Latest

HOURS = 12.0
REPEATS = 3


def best_rate(n: int, fn) -> float:
    times = []
    for _ in range(REPEATS):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / min(times)


def whole(path: Path, out: Path, settings: config.Settings, *, worker: bool,
          store: bool = False, fit=None) -> backtest.Backtest:
    """What `python -m blink backtest PATH --out OUT [--store]` does, minus the planning."""
    bt = backtest.Backtest(settings, fit=fit, fit_worker=worker)
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(backtest.COLUMNS)
        asyncio.run(backtest.drive(backtest.chunks(path, settings.pair), bt,
                                   lambda done: writer.writerows(done.cells()), store=store))
    return bt


def run() -> str:
    trades, _ = synthetic.generate(11, datetime(2026, 1, 1, tzinfo=UTC), HOURS * 3600)
    n = len(trades)
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "ticks.csv", Path(tmp) / "scores.csv"
        ticks.write_ticks(path, trades)
        base = config.load(flags={"data_dir": tmp}, env={})
        gc.freeze()  # as `python -m blink backtest` does once started
        rates = {"parse": best_rate(n, lambda: sum(len(c) for c in files.read_columns(path)))}
        (cols,) = list(files.read_columns(path, chunk_rows=n + 1))

        def engine() -> None:
            values, rate = np.empty((n, len(FEATURE_NAMES))), np.empty(n)
            FeatureEngine().run(cols.ts, cols.price, cols.size, cols.taker, values, rate)
        rates["engine"] = best_rate(n, engine)

        fit_seconds: list[float] = []

        def timed_fit(*args):
            t0 = time.perf_counter()
            result = trainer.fit(*args)
            fit_seconds.append(time.perf_counter() - t0)
            return result
        bt = whole(path, out, base, worker=False, fit=timed_fit)
        retrains, served = len(bt.fits), bt.detector.model
        fitting = sum(fit_seconds)

        def stages() -> None:
            d = Detector(base, Latest("BTC-USD"), Metrics(), Broadcaster())
            d.set_model(served)
            for a in range(0, n, backtest.CHUNK_TRADES):
                b = a + backtest.CHUNK_TRADES
                f = d.featurize(cols.ts[a:b], cols.price[a:b], cols.size[a:b], cols.taker[a:b])
                d.judge(f, backtest._Offset(backtest._Chunk(cols, None), a))
                d.drain()
        rates["stages"] = best_rate(n, stages)
        rates["inline"] = best_rate(n, lambda: whole(path, out, base, worker=False))
        rates["worker"] = best_rate(n, lambda: whole(path, out, base, worker=True))
        with scratch_database() as dsn:
            stored = dataclasses.replace(base, pg_dsn=dsn)
            rates["on"] = best_rate(n, lambda: whole(path, out, stored, worker=True, store=True))

    def r(key: str) -> str:
        return f"{rates[key]:,.0f} /s"

    rows = [
        ("`files.read_columns` (parse the tick file)", r("parse"), ""),
        ("feature engine alone (`Engine.run`, the raw feature rate)", r("engine"), ""),
        ("both detector stages, compiled forest 100 × 256, no retrain", r("stages"), ""),
        (f"the {retrains} fits alone (`trainer.fit`, {fitting:.2f} s)",
         f"{n / fitting:,.0f} /s", ""),
        ("backtest, store off, fits inline", r("inline"), ""),
        ("**backtest, store off, fits in the worker process** (the command's default)",
         f"**{r('worker')}**", "≥ 100,000 /s"),
        ("**backtest, store on** (tape + features + events → PostgreSQL; worker)",
         f"**{r('on')}**", "≥ 30,000 /s"),
    ]
    return ("## Backtest throughput\n\n"
            f"{n:,} synthetic trades ({HOURS:g} h of event time, ~{n / HOURS / 3600:.1f} "
            "trades/s like the live feed), shipped settings (a retrain every hour of event time "
            f"on up to 12 h: {retrains} retrains), best of {REPEATS} runs; events = trades; "
            "each backtest run writes its scores CSV. Fits depend only on features, so the "
            "command fits in a worker process while the feature stage reads on; the scoring "
            "stage waits for the model it needs (`blink/backtest.py`).\n\n"
            + table(rows, ("what", "events per second", "target")))


def main() -> None:
    body = run()
    write_section("backtest", body)
    print(body)


if __name__ == "__main__":
    main()
