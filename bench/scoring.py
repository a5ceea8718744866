"""Features and scoring, side by side in one run: compiled forest vs sklearn, per-trade cost.

- single-row forest walk: `CompiledForest.score_one` against `IsolationForest.score_samples`
  (100 trees, max_samples 256, the 8 features), alternating calls on the same rows; and the
  whole single-row score `ServedModel.score_one` (forest + calibrated tails, the model
  fitted by `trainer.fit`) against the same model scoring its tails in numpy as it did before
  `blink/model/_tails.c` (`tests.support.tails_reference.NumpyServed`);
- `FeatureEngine.update` + `values()` per trade, and `features.batch` per trade;
- `Detector.on_trade` (features + score + latest state + metrics): the trade-to-score cost
  inside the process, at p50 / p99, with either model (two detectors, trade by trade in turn).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from bench.report import pct, table, write_section
from blink import config
from blink.detect.detector import Detector
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES, FeatureEngine, batch
from blink.model import trainer
from blink.model.served import ServedModel
from blink.runtime.broadcast import Broadcaster
from blink.runtime.metrics import Metrics
from blink.trade import Trade
from tests.support.tails_reference import NumpyServed


def stream(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    ts = 1.7e9 + np.cumsum(rng.exponential(1 / 7.3, n))  # the live average rate
    p = np.round(60_000 * np.exp(np.cumsum(rng.normal(0, 4e-5, n))), 2)
    return ts, p, np.round(rng.lognormal(-5, 1.5, n), 8) + 1e-8, rng.random(n) < 0.5


def timed(fn, args) -> list[float]:
    out = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ts, p, size, tb = stream(60_000)
    t0 = time.perf_counter()
    X = batch(ts, p, size, tb)
    batch_us = (time.perf_counter() - t0) / len(ts) * 1e6
    settings = config.load(flags={"data_dir": "/tmp/blink-bench"}, env={})
    fit = trainer.fit(X, settings, FEATURE_NAMES, ts=ts)
    served = ServedModel(fit.forest, FEATURE_NAMES, fit.threshold, "bench", "1", "now",
                         fit.train_stats)
    X = X[~np.isnan(X).any(axis=1)]
    # sklearn's forest of the same size on the same rows: the walk it is compared with
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(n_estimators=settings.n_estimators,
                            max_samples=settings.max_samples, random_state=settings.random_state)
    model.fit(X[:, fit.train_stats["columns"]])

    numpy_tails = NumpyServed.of(served)
    rows = X[np.random.default_rng(2).integers(0, len(X), 400)]
    sk, comp, full, slow = [], [], [], []
    for x in rows:  # alternate: all see the same machine noise
        sk += timed(lambda r: model.score_samples(r[None]), [x])
        comp += timed(served.forest.score_one, [x] * 5)
        full += timed(served.score_one, [x] * 5)
        slow += timed(numpy_tails.score_one, [x] * 5)
    engine = FeatureEngine()
    lists = ts.tolist(), p.tolist(), size.tolist(), tb.tolist()
    upd = []
    for i in range(len(ts)):
        t0 = time.perf_counter()
        engine.update(lists[0][i], lists[1][i], lists[2][i], lists[3][i])
        engine.values()
        upd.append(time.perf_counter() - t0)

    trades = [Trade("BTC-USD", i + 1, datetime.fromtimestamp(t, UTC), Decimal(f"{pr:.2f}"),
                    Decimal(f"{s:.8f}"), "sell" if b else "buy")
              for i, (t, pr, s, b) in enumerate(zip(ts, p, size, tb, strict=True))]
    dets = []
    for m in (served, numpy_tails):
        det = Detector(settings, Latest(product_id="BTC-USD"), Metrics(), Broadcaster())
        det.set_model(m)
        for t in trades[:20_000]:  # warm up past the readiness window
            det.on_trade(t)
        dets.append(det)
    on_trade, on_trade_numpy = [], []
    for t in trades[20_000:]:  # in turn: both see the same machine noise
        on_trade += timed(dets[0].on_trade, [t])
        on_trade_numpy += timed(dets[1].on_trade, [t])

    def us(v: float) -> str:
        return f"{v * 1e6:.1f} µs"

    def ratio(base: list[float], ours: list[float], q: float) -> str:
        return f"{pct(base, q) / pct(ours, q):.0f}× faster"

    def both(values: list[float]) -> str:
        return f"{us(pct(values, 0.5))} / {us(pct(values, 0.99))}"

    body = "\n\n".join([
        "## Features and scoring\n\nSynthetic BTC-like trades at the live average rate "
        "(7.3/s), 8 features, IsolationForest 100 trees × 256 samples fitted by "
        "`trainer.fit` (+ 9 calibrated tails). Baselines, measured in the same run, calls in "
        "turn: sklearn's `score_samples` for the forest walk; for the whole score, the same "
        "model with its tails scored in numpy as before `blink/model/_tails.c` "
        "(`tests/support/tails_reference.py`). 1-minute load average at the end: "
        f"{os.getloadavg()[0]:.2f} (2 cores, shared).",
        table([
            ("single-row forest walk, p50 (baseline: sklearn)", us(pct(comp, 0.5)),
             us(pct(sk, 0.5)), ratio(sk, comp, 0.5), "≥ 150×"),
            ("single-row forest walk, p99 (baseline: sklearn)", us(pct(comp, 0.99)),
             us(pct(sk, 0.99)), ratio(sk, comp, 0.99), ""),
            ("single-row score_raw (forest + tails), p50 (baseline: tails in numpy)",
             us(pct(full, 0.5)), us(pct(slow, 0.5)), ratio(slow, full, 0.5), ""),
            ("single-row score_raw (forest + tails), p99 (baseline: tails in numpy)",
             us(pct(full, 0.99)), us(pct(slow, 0.99)), ratio(slow, full, 0.99), ""),
            ("FeatureEngine.update + values, p50 / p99", both(upd), "", "", ""),
            ("features.batch per trade (training path)", f"{batch_us:.1f} µs", "", "", ""),
            ("Detector.on_trade (features + score + state), p50 / p99 (baseline: tails in "
             "numpy)", both(on_trade), both(on_trade_numpy), ratio(on_trade_numpy, on_trade, 0.99)
             + " at p99", "trade-to-score p99 ≤ 2 ms"),
        ], ("what", "blink", "baseline", "ratio", "target")),
    ])
    write_section("scoring", body)
    print(body)


if __name__ == "__main__":
    main()
