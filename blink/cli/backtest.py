"""`python -m blink backtest INPUT --out SCORES.csv`: plan the windows, drive the backtest
(`blink.backtest.driver`) over the file, write the scores CSV (atomically: a failed run leaves
no output), summarise."""

from __future__ import annotations

import asyncio
import csv
import gc
import logging
import os
import sys
from pathlib import Path

from blink.backtest import sampling
from blink.backtest import store as backtest_store
from blink.backtest.driver import chunks, drive
from blink.backtest.engine import Backtest
from blink.backtest.output import COLUMNS
from blink.backtest.progress import Progress
from blink.config import Settings
from blink.formats import files

log = logging.getLogger(__name__)


def fit_workers() -> int:
    """Fitting processes: one per core (at most 4), none on one core. The feature stage needs
    little CPU once it has read ahead, so on 2 cores both fit (same output either way)."""
    cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


def main(settings: Settings, args) -> int:
    path = args.input
    kind = files.sniff(path)  # a bad header: FileFormatError -> exit 2
    settings = sampling.plan(settings, kind, files.read(path, settings.pair), scale=args.scale,
                             retrain_seconds=args.retrain_seconds, train_hours=args.train_hours)
    log.info("backtest %s (%s): %s", path, kind, sampling.describe(settings))
    bt = Backtest(settings, on_fit=backtest_store.mlflow_logger(settings) if args.mlflow else None,
                  fit_workers=fit_workers(), keep_rows=args.store)
    progress = Progress(path) if sys.stderr.isatty() and not args.no_progress else None
    gc.freeze()  # what exists now lives to the end: out of every gc pass (~10 % faster)
    out = Path(args.out)
    tmp = out.with_name(out.name + ".partial")  # a failed run leaves no half-written output
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(COLUMNS)
            summary = asyncio.run(drive(chunks(path, settings.pair), bt,
                                        lambda done: writer.writerows(done.cells()),
                                        store=args.store, progress=progress))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if progress:
            progress.close()
    tmp.replace(out)
    print(f"backtest {path} -> {out}: {summary.line(bt)}", file=sys.stderr)
    return 0
