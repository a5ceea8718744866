"""`python -m blink evaluate INPUT --labels LABELS [--report DIR]`: backtest, then score the
detections against labelled windows (`blink.backtest.evaluation` has the rules)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from blink.backtest import sampling
from blink.backtest.evaluation import evaluate_run, load_labels
from blink.config import Settings
from blink.formats import files


def main(settings: Settings, args) -> int:
    from blink.backtest import driver, engine
    from blink.detect import baseline

    windows = load_labels(args.labels)
    reading = {"format": args.format, "column": args.column}
    layout = files.sniff(args.input, **reading)
    settings = sampling.plan(settings, layout.format,
                             files.read(args.input, settings.pair, **reading),
                             scale=args.scale, retrain_seconds=args.retrain_seconds,
                             train_hours=args.train_hours)
    extra = {"fit": baseline.fit, "serve": baseline.serve} if args.baseline else {}
    bt, scored = engine.Backtest(settings, keep_rows=False, **extra), []
    summary = asyncio.run(driver.drive(files.read_columns(args.input, settings.pair, **reading),
                                         bt, lambda done: scored.extend(done.rows())))
    counts = evaluate_run(scored, bt, windows)
    print(f"backtest {files.describe(args.input, **reading)}: {summary.line(bt)}",
          file=sys.stderr)
    from blink.backtest import report as eval_report

    print(eval_report.metrics_table(counts))
    if args.report:
        out = eval_report.write(Path(args.report), args.input, args.labels, scored, bt,
                                windows, counts, settings, baseline=args.baseline)
        print(f"report written to {out}", file=sys.stderr)
    return 0
