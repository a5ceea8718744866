"""`python -m bench.evaluation` (`make evaluate`): reproduces docs/evaluation.md.

Every number comes from `blink.backtest.engine` (the live Detector, trainer.fit, event folding) and
`blink.backtest.evaluation` (event-level scoring), run over:
1. the grid: one setting varied at a time around the shipped defaults (synthetic, GRID_SEEDS
   × GRID_HOURS h), which chose the defaults;
2. the synthetic source with the shipped defaults: SEEDS × HOURS h, per anomaly kind, forest
   vs baseline;
3. real Coinbase 1-minute bars, each day its own segment: raw (false alarms on calm 2016 and
   wild 2017-12-17 / 2018-04-04) and with anomalies injected (`bench.inject`), forest vs
   baseline; plus the raw 1-second bars of 2016-10-07..09 (one 72 h segment).
Work is spread over 2 processes; the full run takes a few minutes on 2 cores.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import inject
from blink import config
from blink.backtest import driver, sampling
from blink.backtest.evaluation import Counts, Window, evaluate_run
from blink.detect import baseline
from blink.feeds import synthetic
from blink.formats import files

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluation.md"
SHARED = Path("/work/shared/data/coinbase_lean_btcusd")
SEEDS, HOURS = (1, 2, 3, 4, 5), 6.0
GRID_SEEDS, GRID_HOURS = (21, 22, 23), 2.0
GRID = [("defaults", {}),
        ("feature_scale 0.5", {"feature_scale": 0.5}), ("feature_scale 2", {"feature_scale": 2.0}),
        ("n_estimators 50", {"n_estimators": 50}), ("n_estimators 200", {"n_estimators": 200}),
        ("max_samples 128", {"max_samples": 128}), ("max_samples 512", {"max_samples": 512}),
        ("alerts_per_day 1", {"alerts_per_day": 1.0}),
        ("alerts_per_day 4", {"alerts_per_day": 4.0}),
        ("event_gap_seconds 10", {"event_gap_seconds": 10.0}),
        ("event_gap_seconds 120", {"event_gap_seconds": 120.0}),
        ("train_min_rows 5000", {"train_min_rows": 5000})]
REAL_SCALES = (0.25, 0.5, 1.0)  # SCALE_PER_INTERVAL candidates on the 1-minute bars
SCALE_KINDS = ("raw", "jump_2%", "vol_burst", "flash_crash")
START = datetime(2026, 1, 1, tzinfo=UTC)


def bar_file(name: str) -> Path:
    full = SHARED / name
    return full if full.exists() else ROOT / "tests" / "data" / name


def synthetic_rows(seed: int, hours: float):
    trades, labels = synthetic.generate(seed, START, hours * 3600)
    rows = [files.Row(i, t.time.isoformat(), str(t.price), (t,))
            for i, t in enumerate(trades, 2)]
    windows = [Window(datetime.fromisoformat(w["start"]).timestamp(),
                      datetime.fromisoformat(w["end"]).timestamp(), w["kind"]) for w in labels]
    return rows, windows


def task(job: tuple) -> tuple[tuple, Counts, collections.Counter]:
    """One backtest + evaluation: job = (key, source, overrides, detector); also the feature
    that leads the explanation of each event when nothing was labelled (all false alarms)."""
    key, source, overrides, detector = job
    with tempfile.TemporaryDirectory() as tmp:
        settings = config.load(flags={"data_dir": tmp}, env={})
        if source[0] == "synthetic":
            rows, windows = synthetic_rows(*source[1:])
            kind = "ticks"
        else:
            path, windows = source[1], source[2]
            rows, kind = list(files.read(path)), "bars"
        per_interval = overrides.pop("scale_per_interval", None)
        settings = sampling.plan(settings, kind, rows)
        if per_interval is not None and kind == "bars":
            delta = sampling.interval(rows)
            overrides["feature_scale"] = per_interval * delta
            overrides["min_history_seconds"] = 300.0 * per_interval * delta
        settings = dataclasses.replace(settings, **overrides)
        extra = {"fit": baseline.fit, "serve": baseline.serve} if detector == "baseline" else {}
        scored, bt, _ = driver.run(rows, settings, **extra)
    leads = collections.Counter(ev.explanation[0]["feature"] for ev in bt.events.values()
                                if ev.explanation and not windows)
    return key, evaluate_run(scored, bt, windows), leads


def run_all(jobs: list[tuple]) -> tuple[dict, dict]:
    """Counts per job key, and the false alarms' lead features per detector (raw bars)."""
    out: dict = {}
    leads: dict = {}
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for key, counts, lead in pool.imap_unordered(task, jobs):
            out[key] = out.get(key, Counts()) + counts
            if len(key) == 4 and key[1] is None and key[2] == "raw":
                leads[key[0]] = leads.get(key[0], collections.Counter()) + lead
    return out, leads


def real_jobs(tmp: Path, scales=(None,), detectors=("forest", "baseline")) -> list[tuple]:
    jobs = []
    bars = inject.days(bar_file("coinbase_btcusd_minute_trade_bars.csv"))
    for day, (header, rows) in bars.items():
        raw = inject.write(tmp / f"{day}-raw.csv", header, rows)
        variants = [("raw", raw, [])]
        for kind in inject.KINDS:
            changed, windows = inject.inject(rows, kind)
            if windows:
                variants.append((kind, inject.write(tmp / f"{day}-{kind}.csv", header, changed),
                                 windows))
        for name, path, windows in variants:
            for s in scales:
                extra = {} if s is None else {"scale_per_interval": s}
                for det in detectors:
                    jobs.append(((det, s, name, day), ("file", path, windows), dict(extra), det))
    return jobs


def main() -> None:
    t0 = time.time()
    grid_jobs = [((name, seed), ("synthetic", seed, GRID_HOURS), dict(o), "forest")
                 for name, o in GRID for seed in GRID_SEEDS]
    main_jobs = [((det, seed), ("synthetic", seed, HOURS), {}, det)
                 for det in ("forest", "baseline") for seed in SEEDS]
    with tempfile.TemporaryDirectory() as tmp:
        rj = real_jobs(Path(tmp))
        scale_jobs = [j for j in real_jobs(Path(tmp), REAL_SCALES, ("forest",))
                      if j[0][2] in SCALE_KINDS]
        sec = bar_file("coinbase_btcusd_second_trade_bars.csv")
        sec_jobs = [((det, "1s"), ("file", sec, []), {}, det) for det in ("forest", "baseline")]
        results, leads = run_all(grid_jobs + main_jobs + rj + scale_jobs + sec_jobs)
    from bench.evaluation_doc import render

    DOC.write_text(render(results, GRID, SEEDS, HOURS, GRID_SEEDS, GRID_HOURS, REAL_SCALES,
                          time.time() - t0, leads))
    print(f"wrote {DOC} in {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
