"""Several products in one process, side by side in one run: 1 product against 10.

Each case runs in a fresh spawned process (its own RSS). It builds one detector per product
the way the detection context does (`settings.for_product(p)`, the shared market context),
serves each product its own model (one fit, copied: N models in memory, as N products'
registered models would be), and plays every product its own seeded synthetic stream
(`feeds.synthetic.Market`, ~7 trades/s of event time each), interleaved second by second of
event time, draining the feature rows once per event-time second as the store flusher does.
Generated as it goes: no product's stream is held in memory.

- **RSS added per product** = (RSS with 10 products − RSS with 1) / 9, after the warm-up
  (600 grid steps) and 20 minutes of event time (anomaly events included);
- **`Detector.on_trade` per trade** (features, score, latest state, events, the market
  context line) over every product's trades: the in-process part of trade → score, at
  p50 / p99, and the trade rate one core sustains (1 / mean). The feed, the tape and the
  event loop are not in it (`bench latency` measures the frame → score path of one product).
"""

from __future__ import annotations

import copy
import gc
import multiprocessing
import time

import numpy as np

from bench.report import PRODUCTS, pct, table, write_section

WARM_SECONDS = 900  # event time before measuring (the windows need 600 grid steps)
STEADY_SECONDS = 1200
START = 1.7e9


def rss_mb() -> float:
    for line in open("/proc/self/status"):  # noqa: SIM115 - a proc file, read at once
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def served_model(settings):
    """One model fitted like the trainer does, on 2 h of another synthetic product."""
    from blink.features import FEATURE_NAMES, batch
    from blink.feeds.synthetic import generate
    from blink.model import trainer
    from blink.model.served import ServedModel

    trades, _ = generate(99, START - 7200, 7200, "FIT-USD")
    ts = np.array([t.ts for t in trades])
    X = batch(ts, np.array([float(t.price) for t in trades]),
              np.array([float(t.size) for t in trades]),
              np.array([t.side == "buy" for t in trades]))
    fit = trainer.fit(X, settings, FEATURE_NAMES, ts=ts)
    return ServedModel(fit.forest, FEATURE_NAMES, fit.threshold, "bench", "1", "now",
                       fit.train_stats)


def case(n: int) -> dict:
    """In a fresh process: n products, warm-up then steady; RSS and per-trade times."""
    from blink import config
    from blink.detect.detector import Detector
    from blink.detect.latest import Latest
    from blink.detect.market import MarketContext
    from blink.feeds.synthetic import Market
    from blink.runtime.broadcast import Broadcaster
    from blink.runtime.metrics import Metrics

    products = PRODUCTS[:n]
    # a budget of 200 alerts a day: anomaly events (and their market context line) happen
    settings = config.load(flags={"data_dir": "/tmp/blink-bench", "pairs": ",".join(products),
                                  "alerts_per_day": 200}, env={})
    model = served_model(settings)
    latests = {p: Latest(product_id=p) for p in products}
    market = MarketContext(latests).explain if n > 1 else None
    metrics, events = Metrics(), Broadcaster()
    detectors = {p: Detector(settings.for_product(p), latests[p], metrics, events,
                             market=market) for p in products}
    for d in detectors.values():
        d.set_model(copy.deepcopy(model))
    markets = {p: Market(i + 1, START, p) for i, p in enumerate(products)}
    times: list[float] = []
    upserts = 0
    for second in range(1, WARM_SECONDS + STEADY_SECONDS + 1):
        steady = second > WARM_SECONDS
        for p in products:
            det = detectors[p]
            for trade in markets[p].advance(START + second):
                t0 = time.perf_counter()
                det.on_trade(trade)
                if steady:
                    times.append(time.perf_counter() - t0)
            upserts += len(det.drain()[1])  # the flusher's job, once a second
    gc.collect()
    return {"n": n, "rss": rss_mb(), "times": times, "upserts": upserts}


def run(n: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(case, (n,))


def main() -> None:
    one, ten = run(1), run(10)
    per_product = (ten["rss"] - one["rss"]) / 9

    def us(v: float) -> str:
        return f"{v * 1e6:.0f} µs"

    rows = []
    for r in (one, ten):
        t = r["times"]
        rows.append((r["n"], f"{r['rss']:.0f} MB", len(t), f"{us(pct(t, 0.5))} / "
                     f"{us(pct(t, 0.99))}", f"{len(t) / sum(t):,.0f}/s", r["upserts"]))
    rate = 10 * 7.3 * 10  # 10 products at 10x the live average rate
    body = "\n\n".join([
        "## Several products in one process",
        "One detector, model and market context per product (as the detection context builds "
        "them), every product its own seeded synthetic stream, interleaved in event time; "
        f"measured after {WARM_SECONDS // 60} min of warm-up over {STEADY_SECONDS // 60} "
        "min of event time, each case in a fresh process (which imported sklearn for the "
        "one fit: the RSS is the difference that counts). The alert budget is 200 a day so "
        "that anomaly events, and their market context line, are part of the run.",
        table(rows, ("products", "RSS", "trades timed", "Detector.on_trade p50 / p99",
                     "sustained (1 / mean)", "anomaly event upserts")),
        table([
            ("RSS added per product (steady, model loaded)", f"{per_product:.1f} MB",
             "≤ 15 MB", "yes" if per_product <= 15 else "**no**"),
            ("10 products at 10× the live rate: trades/s needed vs sustained on one core",
             f"{rate:,.0f}/s vs {rows[1][4]}", "", ""),
            ("10 products, in-process trade → score p99 (Detector.on_trade)",
             us(pct(ten["times"], 0.99)), "≤ 2 ms (end to end, websocket → score: `bench "
             "multifeed`)",
             "yes" if pct(ten["times"], 0.99) <= 0.002 else "**no**"),
        ], ("what", "measured", "target", "met")),
    ])
    write_section("products", body)
    print(body)


if __name__ == "__main__":
    main()
