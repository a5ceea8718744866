"""Backtest throughput, store off and on, next to its parts measured in the same run.

Input: `HOURS` hours of the synthetic source written as a tick file (~8 trades/s, like the
live BTC-USD feed), the shipped settings (hourly retrains on 12 hours, 100 trees × 256).
Rates are trades (events) per second of wall time: the parts best of `REPEATS` runs (on the
first `PART_ROWS` trades), whole backtests one run each (two for the command's default):
- its parts alone: `files.read_columns` (parsing), the raw feature engine (`Engine.run` over
  the arrays), both detector stages with a compiled forest, and the fits alone;
- the whole backtest as `python -m blink backtest` runs it (read + both stages + retrains +
  the scores CSV written to a file): fits inline, fits in the worker process (the command's
  default on 2+ cores), and store on (PostgreSQL: `PG_DSN`, else a throwaway database on the
  local server at 127.0.0.1, dropped afterwards). Each worker process imports Blink's model
  code when it starts (measured alone below): a fixed cost inside every whole-backtest figure;
- 1-minute bars and a 1-minute series as the command plans them (a refit every 60 rows),
  fits inline and in the worker processes, side by side; also per CPU second (this process
  and its fitting processes), a figure a busy shared box disturbs less than wall time.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import gc
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.report import table, write_section
from bench.service import scratch_database
from blink import config
from blink.backtest import driver, engine, output, sampling
from blink.cli.backtest import fit_workers
from blink.detect.detector import Detector
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES, FeatureEngine
from blink.feeds import synthetic
from blink.formats import files, ticks
from blink.model import trainer
from blink.runtime.broadcast import Broadcaster
from blink.runtime.metrics import Metrics

HOURS = 168.0  # a week: the fitting processes' start (their imports) is a small part
ROWS = 30_240  # 1-minute bars and a 1-minute series: 21 days each (a refit every 60 rows)
REPEATS = 3
PART_ROWS = 600_000  # the parts alone are timed on the first ~day of trades
BAR_ROWS = 100_000  # 1-minute OHLCV bars (~70 days) for the reading rate of a bar file
SERIES_ROWS = 1_000_000  # a `timestamp,value` series (15 s samples) for a series file


def best_rate(n: int, fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / min(times)


def whole(path: Path, out: Path, settings: config.Settings, *, workers: int,
          store: bool = False, fit=None) -> engine.Backtest:
    """What `python -m blink backtest PATH --out OUT [--store]` does, minus the planning."""
    bt = engine.Backtest(settings, fit=fit, fit_workers=workers, keep_rows=store)
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(output.COLUMNS)
        asyncio.run(driver.drive(driver.chunks(path, settings.pair), bt,
                                   lambda done: writer.writerows(done.cells()), store=store))
    return bt


def import_seconds() -> float:
    """A fresh interpreter's `import blink.model.trainer` (what a fitting process pays
    first: numpy and the C extensions; sklearn is no longer imported to fit)."""
    code = "import time; t = time.perf_counter(); import blink.model.trainer; " \
           "print(time.perf_counter() - t)"
    return min(float(subprocess.check_output([sys.executable, "-c", code], text=True))
               for _ in range(2))


def write_input(path: Path) -> int:
    """HOURS of the seeded synthetic market as a tick file, a day at a time; -> trades."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    market, n = synthetic.Market(11, t0, "BTC-USD"), 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ticks.TICKS)
        for day in range(math.ceil(HOURS / 24)):
            day_trades = market.advance(t0 + min(HOURS * 3600, (day + 1) * 86400))
            writer.writerows(ticks.tick_cells(t) for t in day_trades)
            n += len(day_trades)
    return n


def write_bars_and_series(folder: Path) -> tuple[Path, Path]:
    """A 1-minute bar file as exchanges export it (epoch ms, extra columns) and a metric
    series (ISO-8601 times), random walks; the two reading rates below read them."""
    rng = np.random.default_rng(5)
    t0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    close = np.round(90_000 * np.exp(np.cumsum(rng.normal(0, 5e-4, BAR_ROWS))), 2)
    opens = np.concatenate([[close[0]], close[:-1]])
    high = np.round(np.maximum(opens, close) * 1.0004, 2)
    low = np.round(np.minimum(opens, close) * 0.9996, 2)
    bars = folder / "bars-1m.csv"
    with open(bars, "w", encoding="utf-8") as f:
        f.write("timestamp,open,high,low,close,volume,close_time,trades\n")
        f.writelines(f"{(t0 + 60 * i) * 1000},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.5f},"
                     f"{(t0 + 60 * i) * 1000 + 59_999},{k}\n"
                     for i, (o, h, lo, c, v, k) in enumerate(zip(
                         opens.tolist(), high.tolist(), low.tolist(), close.tolist(),
                         rng.uniform(1, 40, BAR_ROWS).tolist(),
                         rng.integers(100, 3000, BAR_ROWS).tolist(), strict=True)))
    series = folder / "series.csv"
    value = np.round(rng.normal(400, 30, SERIES_ROWS), 1)
    with open(series, "w", encoding="utf-8") as f:
        f.write("timestamp,value\n")
        f.writelines(f"{datetime.fromtimestamp(t0 + 15 * i, UTC):%Y-%m-%dT%H:%M:%SZ},{x}\n"
                     for i, x in enumerate(value.tolist()))
    return bars, series


def write_bars(path: Path, n: int = ROWS, seed: int = 5) -> int:
    """`n` seeded 1-minute OHLCV bars (a random walk, ~0.16 % a bar): what `blink backtest`
    reads as `bars` (4 trades a bar)."""
    rng, p = random.Random(seed), 10_000.0
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("time_utc", "open", "high", "low", "close", "volume_btc"))
        for i in range(n):
            path_ = [p]
            for _ in range(4):
                p *= math.exp(rng.gauss(0, 0.0008))
                path_.append(p)
            when = datetime.fromtimestamp(t0 + 60 * i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow((when, f"{path_[0]:.2f}", f"{max(path_):.2f}", f"{min(path_):.2f}",
                             f"{p:.2f}", f"{rng.uniform(1, 20):.8f}"))
    return n


def write_series(path: Path, n: int = ROWS, seed: int = 6) -> int:
    """`n` seeded 1-minute samples of a metric (daily cycle + noise) as `timestamp,value`."""
    rng = random.Random(seed)
    t0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("timestamp", "value"))
        for i in range(n):
            value = 50 + 10 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0, 2)
            writer.writerow((t0 + 60 * i, f"{value:.3f}"))
    return n


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (fitting processes)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def row_stream(path: Path, base: config.Settings, workers: int) -> tuple[float, int, float]:
    """rows/s of `python -m blink backtest` on a bar or series file (planned as the command
    plans it), its retrains, and rows per CPU second (its worker processes included)."""
    settings = sampling.plan(base, files.sniff(path).format, files.read(path, base.pair))
    t0, c0 = time.perf_counter(), cpu_seconds()
    bt = whole(path, path.with_suffix(".scores.csv"), settings, workers=workers)
    return ROWS / (time.perf_counter() - t0), len(bt.fits), ROWS / (cpu_seconds() - c0)


def run() -> str:
    cli_workers = fit_workers()
    importing = import_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "ticks.csv", Path(tmp) / "scores.csv"
        n = write_input(path)
        base = config.load(flags={"data_dir": tmp}, env={})
        gc.freeze()  # as `python -m blink backtest` does once started
        rates = {"parse": best_rate(n, lambda: sum(len(c) for c in files.read_columns(path)))}
        bars, series = write_bars_and_series(Path(tmp))
        for key, p, rows in (("read_bars", bars, BAR_ROWS),
                             ("read_series", series, SERIES_ROWS)):
            rates[key] = best_rate(rows, lambda p=p: sum(len(c) for c in files.read_columns(p)))
        cols = next(iter(files.read_columns(path, chunk_rows=PART_ROWS)))  # the parts: a day
        part = len(cols)

        def features() -> None:  # not `engine`: that names the backtest module used below
            values, rate = np.empty((part, len(FEATURE_NAMES))), np.empty(part)
            FeatureEngine().run(cols.ts, cols.price, cols.size, cols.taker, values, rate)
        rates["engine"] = best_rate(part, features)

        fit_seconds: list[float] = []

        def timed_fit(*args):
            t0 = time.perf_counter()
            result = trainer.fit(*args)
            fit_seconds.append(time.perf_counter() - t0)
            return result
        t0 = time.perf_counter()
        bt = whole(path, out, base, workers=0, fit=timed_fit)
        rates["inline"] = n / (time.perf_counter() - t0)
        retrains, served = len(bt.fits), bt.detector.model
        fitting = sum(fit_seconds)

        def stages() -> None:
            d = Detector(base, Latest("BTC-USD"), Metrics(), Broadcaster(), keep_rows=False)
            d.set_model(served)
            for a in range(0, part, engine.CHUNK_TRADES):
                b = a + engine.CHUNK_TRADES
                f = d.featurize(cols.ts[a:b], cols.price[a:b], cols.size[a:b], cols.taker[a:b])
                d.judge(f, engine._Offset(engine._Chunk(cols, None), a))
                d.drain()
        rates["stages"] = best_rate(part, stages)
        rates["one"] = best_rate(n, lambda: whole(path, out, base, workers=1), 1)
        rates["worker"] = best_rate(n, lambda: whole(path, out, base, workers=cli_workers), 2)
        bars_path, series_path = Path(tmp) / "bars.csv", Path(tmp) / "series.csv"
        write_bars(bars_path)
        write_series(series_path)
        rates["bars"], bar_fits, rates["bars_cpu"] = row_stream(bars_path, base, cli_workers)
        rates["series"], series_fits, rates["series_cpu"] = row_stream(series_path, base,
                                                                       cli_workers)
        rates["bars_inline"], _, rates["bars_inline_cpu"] = row_stream(bars_path, base, 0)
        rates["series_inline"], _, rates["series_inline_cpu"] = row_stream(series_path, base, 0)
        with scratch_database() as dsn:
            stored = dataclasses.replace(base, pg_dsn=dsn)
            rates["on"] = best_rate(n, lambda: whole(path, out, stored, workers=cli_workers,
                                                     store=True), 1)

    def r(key: str) -> str:
        return f"{rates[key]:,.0f} /s"

    def rows_s(key: str) -> str:
        return f"{rates[key]:,.0f} rows/s ({rates[key + '_cpu']:,.0f} per CPU s)"

    rows = [
        ("`files.read_columns` (parse the tick file)", r("parse"), ""),
        (f"`files.read_columns` on {BAR_ROWS:,} 1-minute OHLCV bars (`timestamp,open,high,low,"
         "close,volume,…`, epoch ms; each bar becomes up to 4 trades)", f"{r('read_bars')} rows",
         ""),
        (f"`files.read_columns` on a {SERIES_ROWS:,}-row `timestamp,value` series (ISO-8601)",
         f"{r('read_series')} rows", ""),
        ("feature engine alone (`Engine.run`, the raw feature rate)", r("engine"), ""),
        ("both detector stages, compiled forest 100 × 256, no retrain", r("stages"), ""),
        (f"the {retrains} fits alone (`trainer.fit`, {fitting:.2f} s, in this process)",
         f"{n / fitting:,.0f} /s", ""),
        (f"`import blink.model.trainer` in a fresh process: {importing:.1f} s", "", ""),
        ("backtest, store off, fits inline (in this process)", r("inline"), ""),
        ("backtest, store off, fits in 1 worker process", r("one"), ""),
        (f"**backtest, store off, fits in {cli_workers} worker processes** (the command's "
         "default here)", f"**{r('worker')}**", "≥ 100,000 /s"),
        (f"**backtest, store on** (tape + features + events → PostgreSQL; {cli_workers} "
         "workers)", f"**{r('on')}**", "≥ 30,000 /s"),
        (f"backtest, 1-minute bars: {ROWS:,} rows (4 trades a bar), {bar_fits} retrains (one "
         "every 60 rows on 2,400), fits inline; ROWS per second",
         rows_s("bars_inline"), ""),
        (f"**backtest, 1-minute bars**, the same, {cli_workers} worker processes (the "
         "command's default)", f"**{rows_s('bars')}**", "≥ 20,000 rows/s"),
        (f"backtest, plain series (`timestamp,value`, 1-minute): {ROWS:,} rows, {series_fits} "
         "retrains, fits inline; rows per second", rows_s("series_inline"), ""),
        (f"**backtest, plain series**, the same, {cli_workers} worker processes",
         f"**{rows_s('series')}**", "≥ 20,000 rows/s"),
    ]
    return ("## Backtest throughput\n\n"
            f"{n:,} synthetic trades ({HOURS:g} h of event time, ~{n / HOURS / 3600:.1f} "
            "trades/s like the live feed), shipped settings (a retrain every hour of event time "
            f"on up to 12 h: {retrains} retrains); events = trades; parts: best of {REPEATS} "
            f"runs on the first {part:,} trades; whole backtests: one run each (best of two "
            "for the default), each writing its scores CSV. Fits depend only on features, so the "
            "command fits in worker processes while the feature stage reads on; the scoring "
            "stage waits for the model it needs (`blink/backtest/engine.py`). A fit grows up to "
            "five forests in C (`forest.grow`, ~1 ms each: two trim passes, the final model, "
            "the out-of-fold halves) and walks the window's grid rows about six times: its "
            "cost grows with the window. Bars and series (same run, generated, seeded): the "
            "command's planning "
            "(`blink.backtest.sampling`: a refit every 60 rows), so the fit per 60 rows bounds "
            "them (its parts: \"One retrain's forest and the whole retrain\" below, `python -m "
            "bench fits`). Load average of the (shared) box at the "
            f"end: {os.getloadavg()[1]:.1f} over 5 minutes, on {os.cpu_count()} cores.\n\n"
            + table(rows, ("what", "events per second", "target")))


def main() -> None:
    body = run()
    write_section("backtest", body)
    print(body)


if __name__ == "__main__":
    main()
