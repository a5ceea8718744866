"""Backtest throughput, store off and on, next to its parts measured in the same run.

Input: 2 hours of the synthetic source written as a tick file (~45,000 trades). Rates are
trades (events) per second of wall time, each the best of `REPEATS` runs:
- `files.read` alone (parsing), the raw `FeatureEngine` (update + values), `Detector.on_trade`
  without a model and with a compiled forest (100 trees × 256): where the time goes;
- the whole backtest (parse + detector + retrains every 20 min of event time + CSV rows):
  store off, and store on (PostgreSQL: `PG_DSN`, else a throwaway database on the local server
  at 127.0.0.1, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import table, write_section
from bench.service import scratch_database
from blink import backtest, config, files, ticks
from blink.broadcast import Broadcaster
from blink.detector import Detector
from blink.features import FeatureEngine
from blink.feeds import synthetic
from blink.metrics import Metrics
from blink.model import trainer
from blink.state import Latest

HOURS = 2.0
REPEATS = 3


def best_rate(n: int, fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / min(times)


def settings(data_dir: str, **kw) -> config.Settings:
    return config.load(flags={"data_dir": data_dir, **kw}, env={})


def run() -> str:
    trades, _ = synthetic.generate(11, datetime(2026, 1, 1, tzinfo=UTC), HOURS * 3600)
    n = len(trades)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ticks.csv"
        ticks.write_ticks(path, trades)
        base = settings(tmp, retrain_seconds=1200.0)
        gc.freeze()  # as `python -m blink backtest` and the service do once started
        rates = {"parse": best_rate(n, lambda: sum(1 for _ in files.read(path)))}

        def engine() -> None:
            e = FeatureEngine()
            for t in trades:
                e.update(t.ts, float(t.price), float(t.size), t.taker_buy)
                e.values()
        rates["engine"] = best_rate(n, engine)

        def detector() -> None:
            d = Detector(base, Latest("BTC-USD"), Metrics(), Broadcaster())
            for t in trades:
                d.on_trade(t)
        rates["detector"] = best_rate(n, detector)

        fit_seconds: list[float] = []

        def timed_fit(*args):
            t0 = time.perf_counter()
            result = trainer.fit(*args)
            fit_seconds.append(time.perf_counter() - t0)
            return result
        _, bt, _ = backtest.run(files.read(path), base)
        served = bt.detector.model

        def scored() -> None:
            d = Detector(base, Latest("BTC-USD"), Metrics(), Broadcaster())
            d.set_model(served)
            for t in trades:
                d.on_trade(t)
        rates["scored"] = best_rate(n, scored)

        rates["off"] = best_rate(n, lambda: backtest.run(files.read(path), base, fit=timed_fit))

        with scratch_database() as dsn:
            stored = dataclasses.replace(base, pg_dsn=dsn)

            def on() -> None:
                b = backtest.Backtest(stored)
                asyncio.run(backtest.drive(files.read(path), b, lambda s: None, store=True))
            rates["on"] = best_rate(n, on)
    retrains, fitting = len(bt.fits), sum(fit_seconds) / REPEATS  # per store-off run

    def r(key: str) -> str:
        return f"{rates[key]:,.0f} /s"

    rows = [
        ("files.read (parse the tick file)", r("parse"), ""),
        ("FeatureEngine.update + values (raw feature rate)", r("engine"), ""),
        ("Detector.on_trade, no model yet", r("detector"), ""),
        ("Detector.on_trade, compiled forest 100 × 256", r("scored"), ""),
        (f"backtest, store off ({retrains} retrains, CSV rows kept)", r("off"), "≥ 100,000 /s"),
        ("backtest, store on (tape + features + events → PostgreSQL)", r("on"), "≥ 30,000 /s"),
    ]
    return ("## Backtest throughput\n\n"
            f"{n:,} synthetic trades ({HOURS:g} h of event time), best of {REPEATS} runs; "
            "events = trades. The backtest drives the live `Detector` (chunks of up to 1,024 "
            "trades through `on_trades`, trade by trade where a retrain falls), so its rate is "
            "bounded by parsing + the raw feature rate + the retrains "
            f"(`trainer.fit`, {retrains} retrains: {fitting:.2f} s a run, "
            f"{n / fitting:,.0f} events/s on their own).\n\n"
            + table(rows, ("what", "events per second", "target")))


def main() -> None:
    body = run()
    write_section("backtest", body)
    print(body)


if __name__ == "__main__":
    main()
