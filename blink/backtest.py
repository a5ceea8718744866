"""`python -m blink backtest INPUT --out SCORES.csv`: replay a file through the live pipeline.

Every trade goes through the live `Detector` (same feature engine, compiled forest, threshold,
anomaly events); every `retrain_seconds` of EVENT time the live `trainer.fit` refits on the
feature vectors the detector computed over the trailing `train_hours` (the service recomputes
them from the tape with the same engine; kept here, so a window's first minutes are warm, not
NaN). The first fit comes once `train_min_rows` warm rows exist; a fit failing its promotion
checks is counted and the previous model keeps scoring. Versions number the fits 1, 2, … as
the registry would; `--mlflow` logs each fit as `<model_name>_backtest` (never the live alias).

Output, one CSV row per input row in input order: `timestamp` (as written), `value`,
`score_raw` (empty before the first model), `anomaly` (0/1), `anomaly_score` (0 before the
first model) and `model_version`; a bar that became several trades gets the score after its
last trade. Windows of bars and series follow their sampling interval (`blink.sampling`);
`--store` also writes tape, feature rows and events to the schema `backtest`
(`blink.backtest_store`). The command line itself: `blink.backtest_cli`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from blink import backtest_store, files
from blink.broadcast import Broadcaster
from blink.config import Settings
from blink.detector import Detector
from blink.events import AnomalyEvent
from blink.feature_history import FeatureHistory
from blink.features import FEATURE_NAMES
from blink.metrics import Metrics
from blink.progress import Progress
from blink.state import Latest

log = logging.getLogger(__name__)

COLUMNS = ("timestamp", "value", "score_raw", "anomaly", "anomaly_score", "model_version")
CHUNK = 2048  # rows between drains of the detector's buffers (and store flushes)
CHUNK_TRADES = 1024  # most trades handed to `Detector.on_trades` at once


@dataclass(frozen=True, slots=True)
class Scored:
    row: files.Row
    ts: float  # event time of the row's last trade
    score_raw: float | None
    anomaly: bool
    anomaly_score: float
    model_version: str
    threshold: float | None

    def cells(self) -> list[str]:
        raw = "" if self.score_raw is None else repr(self.score_raw)
        return [self.row.timestamp, self.row.value, raw, "1" if self.anomaly else "0",
                repr(self.anomaly_score), self.model_version]


@dataclass
class Fit:
    """One retrain: when (event time), which version, and whether it was served."""
    end: float
    version: str
    rows: int
    promoted: bool
    reason: str
    threshold: float


class Backtest:
    """Drives one `Detector` row by row and retrains it on event time (sync, no I/O).

    `fit(X, settings, names) -> FitResult` defaults to the live `trainer.fit`, `serve(result,
    version, end_ts) -> ServedModel` to compiling the forest; `on_fit(result, end_ts) ->
    version` replaces the version counter (MLflow logging). `blink.baseline` plugs in here.
    """

    def __init__(self, settings: Settings, fit: Callable | None = None,
                 serve: Callable | None = None, on_fit: Callable | None = None,
                 chunk: int = CHUNK_TRADES) -> None:
        from blink.model import trainer

        self.settings = settings
        self.fit, self.serve, self.on_fit = fit or trainer.fit, serve or serve_forest, on_fit
        self.too_few = trainer.TooFewRows
        self.fits: list[Fit] = []
        self.events: dict[float, AnomalyEvent] = {}  # event start -> latest snapshot
        self.latest = Latest(settings.pair, source="backtest")
        self.metrics = Metrics()
        self.detector = Detector(settings, self.latest, self.metrics, Broadcaster())
        self.history = FeatureHistory(len(FEATURE_NAMES))
        self.window = settings.train_hours * 3600.0
        self.due = math.inf  # event time of the next scheduled retrain
        self.wait_rows = settings.train_min_rows  # or: try once this many rows were seen
        self.chunk = chunk  # 0: every row trade by trade

    def feed_rows(self, rows: Sequence[files.Row]) -> list[Scored]:
        """`feed` for consecutive rows, the same output: runs of rows in which no retrain can
        fall (every trade before `due`, fewer new vectors than `wait_rows` needs) go through
        `Detector.on_trades` (one forest call), the others trade by trade."""
        out, i = [], 0
        while i < len(rows):
            j, n = i, 0
            room = min(self.chunk, self.wait_rows - self.history.count - 1)
            while j < len(rows):
                trades = rows[j].trades
                if n + len(trades) > room or trades[-1].ts >= self.due:  # time order
                    break
                n, j = n + len(trades), j + 1
            if j == i:
                out.append(self.feed(rows[i]))
                j = i + 1
            else:
                out += self._feed_chunk(rows[i:j])
            i = j
        return out

    def _feed_chunk(self, rows: Sequence[files.Row]) -> list[Scored]:
        trades = [t for row in rows for t in row.trades]
        steps = self.detector.on_trades(trades)
        warm = [(t.ts, s.values) for t, s in zip(trades, steps, strict=True)
                if s.values is not None]
        self.history.extend([w[0] for w in warm], [w[1] for w in warm])
        lasts = list(itertools.accumulate(len(row.trades) for row in rows))
        raws = [steps[k - 1].score_raw for k in lasts]
        model = self.detector.model
        scored = [r for r in raws if r is not None]
        ranks = iter(model.anomaly_scores(scored).tolist() if scored else ())
        return [self._scored(row, raw, steps[k - 1].anomalous, raw is not None and next(ranks))
                for row, k, raw in zip(rows, lasts, raws, strict=True)]

    def _scored(self, row: files.Row, raw: float | None, anomalous: bool, rank) -> Scored:
        if raw is None:
            return Scored(row, row.trades[-1].ts, None, False, 0.0, "", None)
        model = self.detector.model
        return Scored(row, row.trades[-1].ts, raw, anomalous, rank, model.version,
                      model.threshold)

    def feed(self, row: files.Row) -> Scored:
        """One row trade by trade, a retrain as soon as it is due."""
        detector, latest, history = self.detector, self.latest, self.history
        for trade in row.trades:
            detector.on_trade(trade)
            values = latest.features
            if values is not None:
                ts = trade.ts
                history.append(ts, list(values.values()))
                if ts >= self.due or history.count >= self.wait_rows:
                    self._retrain(ts)
        raw = latest.score_raw
        return self._scored(row, raw, latest.anomaly,
                            raw is not None and detector.model.anomaly_score(raw))

    def _retrain(self, end: float) -> None:
        X = self.history.window(end - self.window, end)
        try:
            result = self.fit(X, self.settings, FEATURE_NAMES)
        except self.too_few:  # like the service: try again once enough rows can exist
            self.due = math.inf
            self.wait_rows = self.history.count + self.settings.train_min_rows - len(X)
            return
        self.wait_rows, self.due = math.inf, end + self.settings.retrain_seconds
        version = self.on_fit(result, end) if self.on_fit else str(len(self.fits) + 1)
        self.fits.append(Fit(end, version, len(X), result.promote_ok, result.reason,
                             result.threshold))
        if result.promote_ok:
            self.detector.set_model(self.serve(result, version, end))

    def drain(self) -> tuple[list, list[AnomalyEvent]]:
        """The detector's buffered feature rows and event snapshots (events kept here too)."""
        rows, events = self.detector.drain()
        for ev in events:
            self.events[ev.start] = ev
        return rows, events


def serve_forest(result, version: str, end: float):
    from blink.model.served import ServedModel

    return ServedModel.from_sklearn(result.model, result.feature_names, result.threshold,
                                    result.train_stats, label=f"backtest v{version}",
                                    version=version, trained_at=_iso(end))


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


async def drive(rows: Iterable[files.Row], bt: Backtest, emit: Callable[[Scored], None], *,
                store: bool = False, progress: Progress | None = None) -> Summary:
    """Feed every row and emit its score, CHUNK rows at a time; after each, drain the
    detector's buffers (into the isolated store with `store`)."""
    db = None
    if store:
        db = await backtest_store.BacktestStore.open(bt.settings)
    summary, started, rows = Summary(), time.perf_counter(), iter(rows)
    try:
        while batch := list(itertools.islice(rows, CHUNK)):
            for row, scored in zip(batch, bt.feed_rows(batch), strict=True):
                emit(scored)
                summary.trades += len(row.trades)
                summary.anomalies += scored.anomaly
                if db is not None:
                    db.submit(row.trades)
            summary.rows += len(batch)
            await _flush(bt, db)
            if progress:
                progress.update(summary.rows, batch[-1].line)
        if db is not None:
            await db.finish()
    finally:
        if db is not None:
            await db.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _flush(bt: Backtest, db) -> None:
    rows, events = bt.drain()
    if db is not None:
        await db.write(rows, events)


def run(rows: Iterable[files.Row], settings: Settings, **kw) -> tuple[list[Scored], Backtest,
                                                                     Summary]:
    """In-process backtest without store (evaluation, tests): every Scored row kept."""
    bt, out = Backtest(settings, **kw), []
    summary = asyncio.run(drive(rows, bt, out.append))
    return out, bt, summary


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
