"""`python -m blink backtest INPUT… --out OUT`: plan the windows, drive the backtest
(`blink.backtest.driver`) over each file, write its scores CSV (atomically: a failed run
leaves no output), summarise.

One input: its scores go to OUT (or OUT/NAME.scores.csv when OUT is a folder), fits in worker
processes. Several inputs, or a folder (its .csv, .csv.gz and .parquet files): OUT is a folder,
one NAME.scores.csv per input, the files backtested in a process pool (one per core, fits
inline), one progress bar for the whole run. Every header is checked before any work starts;
a file that turns bad later is reported (FILE:LINE: problem) while the others finish, and the
command exits with 2.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import csv
import gc
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from blink.backtest import sampling
from blink.backtest import store as backtest_store
from blink.backtest.driver import drive
from blink.backtest.engine import Backtest
from blink.backtest.output import COLUMNS
from blink.backtest.progress import EVERY, Progress
from blink.config import ConfigError, Settings
from blink.formats import containers, files

log = logging.getLogger(__name__)
SUFFIXES = (".csv.gz", ".csv", ".parquet", ".gz")  # what a folder input contributes
_updates = None  # in a pool worker: the queue its progress goes to


def fit_workers() -> int:
    """Fitting processes: one per core (at most 4), none on one core. The feature stage needs
    little CPU once it has read ahead, so on 2 cores both fit (same output either way)."""
    cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


@dataclass(frozen=True)
class Job:
    """One input to backtest (everything a pool worker needs)."""
    index: int
    source: str
    out: Path
    settings: Settings
    args: dict  # format, column, scale, retrain_seconds, train_hours, store, mlflow


def main(settings: Settings, args) -> int:
    jobs = plan_jobs(settings, args)
    for job in jobs:  # bad headers, unknown columns: exit 2 before any work
        files.sniff(job.source, format=args.format, column=args.column)
    bar = None
    if sys.stderr.isatty() and not args.no_progress:
        bar = Progress(os.devnull)  # a bar over every input's lines
        bar.total = max(sum(containers.count_lines(j.source) for j in jobs), 1)
    gc.freeze()  # what exists now lives to the end: out of every gc pass (~10 % faster)
    try:
        if len(jobs) == 1:
            print(score(jobs[0], fit_workers(), bar), file=sys.stderr)
            return 0
        failed = run_pool(jobs, bar)
    finally:
        if bar:
            bar.close()
    return 2 if failed else 0  # each failure was printed as its file ended


def plan_jobs(settings: Settings, args) -> list[Job]:
    """The inputs (folders expanded) and where each one's scores go."""
    sources: list[str] = []
    for given in args.input:
        if given != containers.STDIN and Path(given).is_dir():
            found = sorted(str(p) for p in Path(given).iterdir()
                           if p.is_file() and p.name.lower().endswith(SUFFIXES))
            if not found:
                raise ConfigError(f"{given}: no .csv, .csv.gz or .parquet files in this folder")
            sources += found
        else:
            sources.append(given)
    out = Path(args.out)
    many = len(sources) > 1 or len(sources) != len(args.input) or out.is_dir()
    if many and (args.store or args.mlflow):
        raise ConfigError("--store and --mlflow take one input file")
    if many and containers.STDIN in sources and len(sources) > 1:
        raise ConfigError("standard input (-) is one input: give it alone")
    if many:
        outs = [out / f"{stem(s)}.scores.csv" for s in sources]
        if len(set(outs)) < len(outs):
            raise ConfigError("two inputs have the same name: their scores would collide in "
                              f"{out}; give them separately")
        out.mkdir(parents=True, exist_ok=True)
    else:
        outs = [out]
    keys = ("format", "column", "scale", "retrain_seconds", "train_hours", "store", "mlflow")
    options = {k: getattr(args, k) for k in keys}
    return [Job(i, s, o, settings, options) for i, (s, o) in enumerate(zip(sources, outs,
                                                                            strict=True))]


def stem(source: str) -> str:
    """An input's name without its container suffix (`-`: stdin)."""
    name = "stdin" if source == containers.STDIN else Path(source).name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[:-len(suffix)]
    return name


def score(job: Job, workers: int, progress) -> str:
    """Backtest one input into its scores file; the summary line."""
    a, settings, source = job.args, job.settings, job.source
    reading = {"format": a["format"], "column": a["column"]}
    layout = files.sniff(source, **reading)
    settings = sampling.plan(settings, layout.format, files.read(source, settings.pair,
                                                                 **reading),
                             scale=a["scale"], retrain_seconds=a["retrain_seconds"],
                             train_hours=a["train_hours"])
    described = files.describe(source, **reading)
    log.info("backtest %s: %s", described, sampling.describe(settings))
    bt = Backtest(settings, on_fit=backtest_store.mlflow_logger(settings) if a["mlflow"] else None,
                  fit_workers=workers, keep_rows=a["store"])
    out = job.out
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    tmp = Path(name)  # in OUT's folder, renamed on success: a failed run leaves no output
    try:
        with open(fd, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(COLUMNS)
            chunks = files.read_columns(source, settings.pair, **reading)
            summary = asyncio.run(drive(chunks, bt, lambda done: writer.writerows(done.cells()),
                                        store=a["store"], progress=progress))
        if not summary.rows:
            raise files.FileFormatError(f"{containers.name_of(source)}: no data rows (a "
                                        "header only)")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    return f"backtest {described} -> {out}: {summary.line(bt)}"


def run_pool(jobs: list[Job], bar: Progress | None) -> list[str]:
    """Every job in a process pool (one per core); the error lines of those that failed."""
    ctx = multiprocessing.get_context("spawn")  # no state inherited (threads, event loops)
    queue = ctx.SimpleQueue() if bar else None
    workers = min(os.cpu_count() or 1, len(jobs))
    done_at = [(0, 0)] * len(jobs)  # per input: rows, line
    failed: list[str] = []
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker,
                                initargs=(queue,)) as pool:
        pending = {pool.submit(_score_in_worker, job): job for job in jobs}
        while pending:
            finished, _ = cf.wait(pending, timeout=EVERY, return_when=cf.FIRST_COMPLETED)
            while queue is not None and not queue.empty():
                index, rows, line = queue.get()
                done_at[index] = (rows, line)
            if bar:
                bar.update(sum(r for r, _ in done_at), sum(n for _, n in done_at))
            for future in finished:
                pending.pop(future)
                ok, message = future.result()
                if bar:
                    bar.stream.write("\r")
                print(message if ok else f"blink: {message}", file=sys.stderr)
                if not ok:
                    failed.append(message)
    return failed


def _worker(queue) -> None:
    global _updates
    _updates = queue


class _Report:
    """A pool worker's progress: (input, rows, line) to the parent, at most every EVERY s."""

    def __init__(self, index: int) -> None:
        self.index, self.sent = index, 0.0

    def update(self, rows: int, line: int) -> None:
        now = time.monotonic()
        if _updates is not None and now - self.sent >= EVERY:
            self.sent = now
            _updates.put((self.index, rows, line))


def _score_in_worker(job: Job) -> tuple[bool, str]:
    try:
        return True, score(job, 0, _Report(job.index))
    except ConfigError as e:  # FileFormatError among them: reported, the others go on
        return False, str(e)
