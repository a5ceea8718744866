"""`python -m bench.evaluation` (`make evaluate`): reproduces docs/evaluation.md (no network).

Three detectors, side by side on the same data, each through the same backtest
(`blink.backtest.driver`: the live `Detector`, a fit every `retrain_seconds` of event time, the
detector's threshold rule, the same event folding):
- `forest`: the shipped detector (`trainer.fit`, served by the compiled forest);
- `baseline`: the rolling z-score of returns (`blink.detect.baseline`);
- `hst`: river's HalfSpaceTrees on the same feature vectors (`bench.hst`).

Data families (FAMILIES), each its own table in the doc:
1. `synthetic`: the seeded synthetic stream (`blink.feeds.synthetic`), SEEDS × HOURS h, an
   anomaly every 10–20 minutes (the demo's rate);
2. `rare`: the same source at a realistic rate (RARE_SPACING: one every 3–6 h), SEEDS × HOURS h,
   at the default budget; `rare-own`: the same inputs at a budget of their own rate
   (RARE_BUDGET);
3. `bars`: the 9 real Coinbase 1-minute days, consecutive days joined into one segment (4
   stretches), with anomalies injected
   (`bench.inject`: every kind, two sizes: a `small` and a `large` copy of each day), and
   `raw` (un-injected: false alarms a day);
4. `series`: generated server-metric series (`bench.server_metrics`), SERIES_SEEDS of them.

Fairness: on every input the detectors are scored over the SAME span, from the latest of their
first scored rows to the end (`common_span`), so window counts are equal between columns; an
event that ended before that span is not counted. Work is spread over 2 processes (one job =
one input, all three detectors); seeds are fixed. `--render` rewrites the doc from the last
run's results (kept in RESULTS) without running anything. `--family NAME[,NAME]` runs those
families only (`bars/raw`: one copy of the bar days) and prints their tables (for iterating;
the doc is left alone).
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import os
import pickle
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import hst, inject, moves, server_metrics
from blink import config
from blink.backtest import driver, sampling
from blink.backtest.engine import Backtest
from blink.backtest.evaluation import Counts, Window, score
from blink.detect import baseline
from blink.feeds import synthetic
from blink.formats import files

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluation.md"
README = ROOT / "README.md"
MARK, END = "<!-- evaluation-table -->", "<!-- /evaluation-table -->"
RESULTS = Path(tempfile.gettempdir()) / "blink-evaluation-results.pkl"  # for `--render`
SHARED = Path("/work/shared/data/coinbase_lean_btcusd")
DETECTORS = ("forest", "baseline", "hst")
SEEDS, HOURS = (1, 2, 3, 4, 5), 24.0
RARE_SPACING = (3 * 3600.0, 6 * 3600.0)
# the demo-rate stream's budget, as `make demo` runs it: its own anomaly rate (one every
# 10-20 minutes, ~100 a day); every other family runs the shipped default
DEMO_BUDGET = 100.0
# the realistic-rate stream also runs at a budget of ITS OWN rate (one every 4.5 h on average:
# 5.3 a day): at the default budget of 2 a day at most ~2 of its ~5 daily anomalies can alert
# (the budget counts every event, true or false), so recall there is capped by the budget
RARE_BUDGET = round(86400.0 / (sum(RARE_SPACING) / 2), 1)
# the real moves also at one step up the knob (`moves-knob`): what a budget of 3 a day buys
KNOB_BUDGET = 3.0
BUDGETS = {"synthetic": DEMO_BUDGET, "rare-own": RARE_BUDGET,  # family -> alerts_per_day
           "moves-knob": KNOB_BUDGET}
SERIES_SEEDS = (1, 2, 3, 4)
START = datetime(2026, 1, 1, tzinfo=UTC)
PROCESSES = 2
# flagged rows of the scores file this close are one alert to its outside reader: two
# 1-minute bars, the backtest's own event gap on them (`blink.backtest.sampling`)
FLAG_GAP = 120.0


def bar_file(name: str) -> Path:
    full = SHARED / name
    return full if full.exists() else ROOT / "tests" / "data" / name


def plugs(detector: str) -> dict:
    """The backtest's fit/serve for `detector` (the forest: the defaults)."""
    if detector == "baseline":
        return {"fit": baseline.fit, "serve": baseline.serve}
    if detector == "hst":
        return {"fit": hst.fit, "serve": hst.serve}
    return {}


def synthetic_rows(seed: int, hours: float, spacing: tuple[float, float] | None):
    kw = {} if spacing is None else {"spacing": spacing}
    trades, labels = synthetic.generate(seed, START, hours * 3600, **kw)
    rows = [files.Row(i, t.time.isoformat(), str(t.price), (t,))
            for i, t in enumerate(trades, 2)]
    windows = [Window(datetime.fromisoformat(w["start"]).timestamp(),
                      datetime.fromisoformat(w["end"]).timestamp(), w["kind"]) for w in labels]
    return rows, "ticks", windows


def common_span(runs: dict) -> tuple[float, float] | None:
    """From the latest first scored row of any detector to the last row (None: one never
    scored)."""
    firsts = [next((s.ts for s in scored if s.score_raw is not None), None)
              for scored, _ in runs.values()]
    if any(f is None for f in firsts):
        return None
    last = next(iter(runs.values()))[0][-1].ts
    return max(firsts), last


def judge(runs: dict, windows: list[Window]) -> dict:
    """Per detector: its Counts over the common span, the features leading the explanations
    of its false alarms (events overlapping no window), those false alarms' starts, and the
    Counts an outside reader of the scores file gets (`flagged`)."""
    span = common_span(runs)
    out = {}
    for det, (scored, bt) in runs.items():
        events = [ev for ev in bt.events.values() if span is None or ev.end >= span[0]]
        counts = score(((ev.start, ev.end) for ev in events), windows, span)
        false = [ev for ev in events if not any(ev.start <= w.end and ev.end >= w.start
                                                for w in windows)]
        leads = collections.Counter(ev.explanation[0]["feature"] for ev in false
                                    if ev.explanation)
        alerts = [a for a in flagged(scored) if span is None or a[1] >= span[0]]
        out[det] = (counts, leads, sorted(ev.start for ev in false),
                    score(alerts, windows, span))
    return out


def flagged(scored: list, gap: float = FLAG_GAP) -> list[tuple[float, float]]:
    """The alerts an outside reader of the scores file sees: its flagged rows (`anomaly` 1),
    those at most `gap` seconds apart (as the event tracker folds) taken as one alert, as
    (first, last) row times."""
    alerts: list[list[float]] = []
    for row in scored:
        if row.anomaly:
            if alerts and row.ts - alerts[-1][1] <= gap:
                alerts[-1][1] = row.ts
            else:
                alerts.append([row.ts, row.ts])
    return [(a, b) for a, b in alerts]


def replay(chunks: list, settings, kw: dict) -> tuple[list, Backtest]:
    """`driver.run` over chunks already read (every detector gets the same arrays)."""
    bt, out = Backtest(settings, keep_rows=False, **kw), []
    asyncio.run(driver.drive(chunks, bt, lambda done: out.extend(done.rows())))
    return out, bt


def task(job: tuple) -> tuple[list[tuple[tuple, dict]], float]:
    """One input through every detector: job = (key, source[, {other key: windows}]) ->
    ([(key, per detector (Counts, leads)), ...], seconds): the same runs judged against the
    source's windows, and against each other labelling of the same rows (the raw bars are
    also the `moves` family)."""
    key, source, *more = job
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        flags = {"data_dir": tmp, **({"alerts_per_day": BUDGETS[key[0]]} if key[0] in BUDGETS
                                     else {})}
        settings = config.load(flags=flags, env={})
        if source[0] == "synthetic":
            rows, kind, windows = synthetic_rows(*source[1:])
            data = rows
        else:
            path, windows = source[1], source[2]
            kind, data = files.sniff(path).format, path
            rows = files.read(path, settings.pair)
        settings = sampling.plan(settings, kind, rows)
        chunks = list(driver.chunks(data, settings.pair))  # read once, replayed 3 times
        runs = {det: replay(chunks, settings, plugs(det)) for det in DETECTORS}
    judged = [(key, judge(runs, windows))]
    judged += [(other, judge(runs, labels)) for other, labels in (more[0] if more else {}).items()]
    return judged, time.perf_counter() - t0


def jobs(tmp: Path) -> list[tuple]:
    """Every input, biggest first (the pool finishes together)."""
    out = [(("synthetic", seed), ("synthetic", seed, HOURS, None)) for seed in SEEDS]
    out += [((family, seed), ("synthetic", seed, HOURS, RARE_SPACING))
            for family in ("rare", "rare-own") for seed in SEEDS]
    for seed in SERIES_SEEDS:
        rows, windows = server_metrics.generate(seed)
        path = server_metrics.write(tmp / f"metric-{seed}.csv", rows)
        out.append((("series", seed), ("file", path, windows)))
    bars = inject.days(bar_file("coinbase_btcusd_minute_trade_bars.csv"))
    for span, run in inject.segments(bars).items():
        header = bars[run[0]][0]
        for name in ("raw", *inject.SETS):
            rows, windows = inject.segment(bars, run, None if name == "raw" else name)
            if name == "raw" or windows:
                path = inject.write(tmp / f"{span}-{name}.csv", header, rows)
                also = {("moves", span): moves.label(rows)} if name == "raw" else {}
                out.append((("bars", name, span), ("file", path, windows), also))
                if name == "raw":
                    out.append((("moves-knob", span), ("file", path, also[("moves", span)]),
                                {("raw-knob", span): []}))
    return out


def run_all(todo: list[tuple]) -> tuple[dict, dict]:
    """Per job key: per detector (Counts, leads); and seconds per family."""
    results: dict = {}
    seconds: dict = collections.Counter()
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        for judged, took in pool.imap_unordered(task, todo):
            results.update(judged)
            key = judged[0][0]
            seconds[key[0]] += took
            print(f"{key}: {took:.0f} s", file=sys.stderr, flush=True)
    return results, dict(seconds)


def main(argv: list[str]) -> None:
    """`--render`: rewrite the doc from the last run's results (RESULTS) without running."""
    t0 = time.time()
    if "--family" in argv:
        wanted = set(argv[argv.index("--family") + 1].split(","))
        with tempfile.TemporaryDirectory() as tmp:
            results, _ = run_all([j for j in jobs(Path(tmp))
                                  if {j[0][0], "/".join(map(str, j[0][:2]))}
                                  & (wanted | ({"bars/raw", "moves-knob"} if "moves" in wanted
                                               else set()))])
        print(summary(results), f"\n{time.time() - t0:.0f} s", file=sys.stderr)
        return
    if "--render" in argv:
        saved = pickle.loads(RESULTS.read_bytes())
        results, seconds, took = saved[:3]
        load = saved[3] if len(saved) > 3 else None
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results, seconds = run_all(jobs(Path(tmp)))
        took, load = time.time() - t0, os.getloadavg()[1]  # the box is shared: say how much
        RESULTS.write_bytes(pickle.dumps((results, seconds, took, load)))
    from bench.evaluation_doc import render

    doc = render(results, config.Settings(), took, seconds, load)
    DOC.write_text(doc)
    update_readme(doc)
    print(f"wrote {DOC} (and README.md's table) in {time.time() - t0:.0f} s", file=sys.stderr)


def summary(results: dict) -> str:
    """The family and kind tables of `results`, per family and bars copy (`--family`)."""
    from bench.evaluation_doc import family_table, kind_table, leads_line, totals_of

    out = []
    for group in sorted({key[:2] if key[0] == "bars" else key[:1] for key in results}):
        totals, leads = totals_of(results, lambda k, g=group: k[:len(g)] == g)
        out += [f"## {' '.join(map(str, group))}", family_table(totals), kind_table(totals),
                leads_line(leads)]
    return "\n\n".join(out)


def update_readme(doc: str) -> None:
    """README.md's "How good is it" table = the doc's targets table (between the markers)."""
    table = doc.split("## Targets\n\n", 1)[1].split("\n\n", 1)[0]
    table = table.replace("(benchmarks.md)", "(docs/benchmarks.md)")  # links from the root
    block = (f"{MARK}\n{table}\n\nFrom [`docs/evaluation.md`](docs/evaluation.md) (each data "
             "family in its own table there, the misses listed); `make evaluate` rewrites this "
             f"table.\n{END}")
    text = README.read_text()
    if MARK in text and END in text:
        head, rest = text.split(MARK, 1)
        README.write_text(head + block + rest.split(END, 1)[1])


def total(results: dict, det: str, match, part: int = 0) -> Counts:
    """`det`'s Counts summed over the keys `match` takes (`part` of `judge`'s tuple: 0 its
    events', 3 the scores file reader's)."""
    out = Counts()
    for key, per in results.items():
        if match(key):
            out = out + per[det][part]
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
