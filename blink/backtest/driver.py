"""Driving a backtest: chunks of an input through the two stages, the store and the summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blink.backtest import store as backtest_store
from blink.backtest.engine import Backtest
from blink.backtest.output import Scored, ScoredChunk
from blink.backtest.progress import Progress
from blink.config import Settings
from blink.formats import files

AHEAD_TRADES = 1_000_000  # most featurized trades waiting for their model (~100 MB)
# most retrains queued ahead of the scoring stage: each holds its training window and then its
# model (~1 MB on 1-minute bars), and more than the workers can take gains nothing; unbounded,
# a bar file's feature stage queued a retrain every 60 rows up to AHEAD_TRADES (2.4 GB at
# 150,000 bars)
AHEAD_FITS = 8


@dataclass
class Summary:
    rows: int = 0
    trades: int = 0
    anomalies: int = 0  # rows flagged
    seconds: float = 0.0

    def line(self, bt: Backtest) -> str:
        served = sum(f.promoted for f in bt.fits)
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.rows} rows ({self.trades} trades), {self.anomalies} anomalous rows, "
                f"{len(bt.events)} anomaly events, {len(bt.fits)} retrains ({served} served), "
                f"{self.seconds:.1f} s: {rate:,.0f} rows/s, "
                f"{self.trades / max(self.seconds, 1e-9):,.0f} trades/s")


async def drive(chunks: Iterable[files.Columns], bt: Backtest,
                emit: Callable[[ScoredChunk], None], *, store: bool = False,
                progress: Progress | None = None) -> Summary:
    """Both stages over every chunk; each completed chunk is emitted, then the detector's
    buffers are drained (into the isolated store with `store`). The scoring stage waits for
    a fit only when the feature stage is `AHEAD_TRADES` or `AHEAD_FITS` ahead, or at the
    end."""
    db = None
    if store:
        db = await backtest_store.BacktestStore.open(bt.settings)
    summary, started = Summary(), time.perf_counter()

    async def judge() -> None:
        for done in bt.judge():
            emit(done)
            summary.rows += len(done)
            summary.trades += len(done.cols.ts)
            summary.anomalies += int(np.count_nonzero(done.anomaly))
            await _flush(bt, db)
            if progress:
                progress.update(summary.rows, done.cols.last_line)

    try:
        for cols in chunks:
            trades = None
            if db is not None:  # the tape goes to the writer as it is read
                trades = cols.trades()
                await db.submit(trades)
            for _ in bt.push(cols, trades):
                while bt.ahead > AHEAD_TRADES or bt.fits_ahead > AHEAD_FITS:
                    if (job := bt.blocker()) is not None:  # else the head is judged at once
                        await asyncio.wrap_future(job)
                    await judge()  # everything up to the next unfinished fit (or all)
            await judge()
        while bt.queue:
            if (job := bt.blocker()) is not None:
                await asyncio.wrap_future(job)
            await judge()
        if db is not None:
            await db.finish()
    finally:
        bt.close()
        if db is not None:
            await db.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _flush(bt: Backtest, db) -> None:
    rows, events = bt.drain()
    if db is not None:
        await db.write(rows, events)


def chunks(source, product_id: str | None = None) -> Iterator[files.Columns]:
    """Column chunks from a path (read fast) or from `files.Row`s (tests, evaluation)."""
    if isinstance(source, str | Path):
        return files.read_columns(source, product_id)
    return files.columns(source)


def run(source, settings: Settings, **kw) -> tuple[list[Scored], Backtest, Summary]:
    """In-process backtest without store (evaluation, tests): every Scored row kept."""
    bt, out = Backtest(settings, **{"keep_rows": False, **kw}), []
    summary = asyncio.run(drive(chunks(source, settings.pair), bt,
                                lambda done: out.extend(done.rows())))
    return out, bt, summary

