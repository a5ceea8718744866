"""`python -m blink backtest INPUT --out SCORES.csv`: replay a file through the live pipeline.

The input is read in column chunks (`files.read_columns`) and goes through the live
`Detector` in its two stages (`blink.detect.detector`): the feature stage (the C feature
engine) runs ahead, chunk after chunk; every `retrain_seconds` of EVENT time the live
`trainer.fit` is scheduled on the feature vectors of the trailing `train_hours` (and
`calibration_hours`, `dataset.window_hours`); the scoring
stage judges each run of trades with the model that was being served when they happened. The
first fit comes once `train_min_rows` warm rows exist; a fit failing its promotion checks is
counted and the previous model keeps scoring. Versions number the fits 1, 2, … as the registry
would; `--mlflow` logs each fit as `<model_name>_backtest` (never the live alias).

Fits depend only on features, so with `fit_workers` they run in worker processes (several
at once) while the feature stage carries on with the next chunks; the scoring stage waits
for the fit it needs. A fit grows up to five forests in C (~1 ms each) but walks and
tabulates its window's grid rows several times (two trim passes, tails, out-of-fold halves):
tens of ms on a bar backtest's window, the cost of its 60 rows, hence the parallelism. The
output is the same either way, and the same as handing the trades over one at a time (tests
pin both).

Output, one CSV row per input row in input order: `timestamp` (as written), `value`,
`score_raw` (empty before the first model), `anomaly` (0/1), `anomaly_score` (0 before the
first model) and `model_version`; `anomaly` is 1 while Blink's alert covers the row: a score
below the threshold, or one past the release level holding an open anomaly event (within its
gap: the hysteresis that makes one episode one alert, so that the file's runs of flagged rows
are Blink's alerts). A bar that became several trades gets the score of its most anomalous
trade and is flagged when any of them was (an alert raised at a bar's low belongs to the bar
even when its close is back). Windows of bars and series follow their sampling
interval (`blink.backtest.sampling`); `--store` also writes tape, feature rows and events to
the schema `backtest` (`blink.backtest.store`). The command line itself: `blink.cli.backtest`.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from blink.backtest.feature_history import FeatureHistory
from blink.backtest.fits import Fit, fit_one, lower_priority, serve_forest
from blink.backtest.output import ScoredChunk
from blink.config import Settings
from blink.detect.detector import Detector, Featurized
from blink.detect.events import AnomalyEvent
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES
from blink.formats import files
from blink.runtime.broadcast import Broadcaster
from blink.runtime.metrics import Metrics

log = logging.getLogger(__name__)

CHUNK_TRADES = 16_384  # most trades through one detector stage call


class _Moment(NamedTuple):
    """What the scoring stage reads of a trade when no Trade objects were built."""
    time: datetime
    trade_id: int | None


class _Chunk:
    """One input chunk between the stages: per-trade scores fill in as runs are judged (with
    the served score and the version of the model that judged each: the models themselves are
    not kept, a chunk of bars spans a thousand of them)."""

    def __init__(self, cols: files.Columns, trades: list | None) -> None:
        self.cols, self.trades = cols, trades
        n = len(cols.ts)
        self.raw, self.alerting = np.full(n, np.nan), np.zeros(n, bool)
        self.score = np.zeros(n)  # anomaly_score, 0 before the first model
        self.run = np.full(n, -1)  # index into `served` of the model that judged the trade
        self.served: list[tuple[str, float]] = []  # (version, threshold) per judged run
        self.left = n  # trades not judged yet

    def __getitem__(self, i: int):
        if self.trades is not None:
            return self.trades[i]
        return _Moment(datetime.fromtimestamp(float(self.cols.ts[i]), UTC), None)

    def judged(self, start: int, raw: np.ndarray, alerting: np.ndarray, model) -> None:
        """Trades [start, start + len(raw)) judged by `model` (None: no model yet);
        `alerting`: anomalous or holding an open event (`Judged.alerting`)."""
        stop = start + len(raw)
        self.raw[start:stop], self.alerting[start:stop] = raw, alerting
        self.left -= len(raw)
        scored = np.flatnonzero(~np.isnan(raw))
        if model is None or not len(scored):
            return
        self.score[start + scored] = model.anomaly_scores(raw[scored])
        self.run[start + scored] = len(self.served)
        self.served.append((model.version, model.threshold))

    def scored(self) -> ScoredChunk:
        """One output row per input row: its most anomalous trade (a bar's four points: an
        alert raised at its low is the bar's, though its close is back), flagged when an alert
        covered any of its trades; a row without trades (a bar or sample missing) unscored."""
        ends = self.cols.ends
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        full = ends > starts
        key = np.where(np.isnan(self.raw), np.inf, self.raw)
        order = np.lexsort((key, np.repeat(np.arange(len(ends)), ends - starts)))
        pick = order[starts[full]]  # each row's lowest score_raw, the first on ties
        raw, anomaly = np.full(len(ends), np.nan), np.zeros(len(ends), bool)
        score, runs = np.zeros(len(ends)), np.full(len(ends), -1)
        raw[full], score[full], runs[full] = self.raw[pick], self.score[pick], self.run[pick]
        if len(pick):
            anomaly[full] = np.logical_or.reduceat(self.alerting, starts[full])
        runs = runs.tolist()
        return ScoredChunk(self.cols, raw, anomaly, score,
                           [self.served[k][0] if k >= 0 else "" for k in runs],
                           [self.served[k][1] if k >= 0 else None for k in runs])


class _Run(NamedTuple):
    """Featurized trades [start, start + len) of a chunk, waiting for their model."""
    chunk: _Chunk
    start: int
    features: Featurized


@dataclass
class _Retrain:
    end: float
    rows: int
    job: Future


class Backtest:
    """Drives one `Detector` over column chunks and retrains it on event time (no I/O).

    `fit(X, settings, names) -> FitResult` defaults to the live `trainer.fit`, `serve(result,
    version, end_ts) -> ServedModel` to serving its compiled forest; `on_fit(result, end_ts) ->
    version` replaces the version counter (MLflow logging). `blink.detect.baseline` plugs in here.
    `chunk`: most trades per stage call; `fit_workers`: processes fitting in parallel (0:
    inline); `keep_rows`: buffer the feature rows (`drive` turns it off without a store).
    """

    def __init__(self, settings: Settings, fit: Callable | None = None,
                 serve: Callable | None = None, on_fit: Callable | None = None,
                 chunk: int = CHUNK_TRADES, fit_workers: int = 0, keep_rows: bool = True
                 ) -> None:
        from blink.model import dataset, trainer

        self.settings = settings
        self.fit, self.serve, self.on_fit = fit or trainer.fit, serve or serve_forest, on_fit
        # every fit takes the window `prepare`d here (grid rows): a few MB to send
        self.prepare = trainer.prepare
        self.too_few = trainer.TooFewRows
        self.fits: list[Fit] = []
        self.events: dict[float, AnomalyEvent] = {}  # event start -> latest snapshot
        self.latest = Latest(settings.pair, source="backtest")
        self.metrics = Metrics()
        self.detector = Detector(settings, self.latest, self.metrics, Broadcaster(),
                                 keep_rows=keep_rows)
        self.history = FeatureHistory(len(FEATURE_NAMES))
        self.window = dataset.window_hours(settings) * 3600.0
        self.due = math.inf  # event time of the next scheduled retrain
        self.wait_rows = settings.train_min_rows  # or: try once this many rows were seen
        self.chunk = max(1, chunk)
        self.queue: deque[_Run | _Retrain] = deque()  # in trade order
        self.chunks: deque[_Chunk] = deque()  # not fully judged yet, oldest first
        self.ahead = 0  # featurized trades in the queue
        self.fits_ahead = 0  # retrains in the queue (each holds its training window)
        self.fit_workers = fit_workers
        self.executor: ProcessPoolExecutor | None = None  # started by the first fit

    # ------------------------------------------------------------------ feature stage
    def push(self, cols: files.Columns, trades: list | None = None) -> Iterator[None]:
        """The feature stage for one chunk (`trades`: its Trade objects, when built), a step
        per `chunk` trades: between steps the caller may judge (a chunk of bars holds a
        thousand retrains, each holding its window until judged)."""
        chunk = _Chunk(cols, trades)
        self.chunks.append(chunk)
        for a in range(0, len(cols.ts), self.chunk):
            b = a + self.chunk
            f = self.detector.featurize(cols.ts[a:b], cols.price[a:b], cols.size[a:b],
                                        cols.taker[a:b])
            self._schedule(chunk, a, f)
            yield

    def _schedule(self, chunk: _Chunk, offset: int, f: Featurized) -> None:
        """Warm rows into the history; a retrain after the trade that makes one due (that
        trade is still judged by the old model, as in the service)."""
        warm, start, w = np.flatnonzero(f.ready), 0, 0
        while True:
            rest = warm[w:]
            p = len(rest)
            if self.due < math.inf:
                late = np.flatnonzero(f.ts[rest] >= self.due)
                p = int(late[0]) if len(late) else p
            if self.wait_rows < math.inf:
                p = min(p, max(0, int(self.wait_rows) - self.history.count - 1))
            if p >= len(rest):
                self.history.extend(f.ts[rest], f.values[rest])
                self._queue(chunk, offset, f, start, len(f.ts))
                return
            j = int(rest[p])
            self.history.extend(f.ts[rest[:p + 1]], f.values[rest[:p + 1]])
            self._queue(chunk, offset, f, start, j + 1)
            self._retrain(float(f.ts[j]))
            start, w = j + 1, w + p + 1

    def _queue(self, chunk: _Chunk, offset: int, f: Featurized, a: int, b: int) -> None:
        if b > a:
            part = Featurized(f.ts[a:b], f.price[a:b], f.values[a:b], f.ready[a:b],
                              f.rate[a:b])
            self.queue.append(_Run(chunk, offset + a, part))
            self.ahead += b - a

    def _retrain(self, end: float) -> None:
        ts, X = self.history.window(end - self.window, end)
        try:
            data = self.prepare(X, self.settings, ts)
        except self.too_few:  # like the service: try again once enough rows can exist
            self.due = math.inf
            self.wait_rows = self.history.count + self.settings.train_min_rows - len(X)
            return
        self.wait_rows, self.due = math.inf, end + self.settings.retrain_seconds
        args = (self.fit, data, self.settings, FEATURE_NAMES)
        if self.fit_workers > 0:
            if self.executor is None:  # spawned (no state inherited), niced: see lower_priority
                self.executor = ProcessPoolExecutor(
                    self.fit_workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=lower_priority)
            job = self.executor.submit(fit_one, *args)
        else:
            job = Future()
            job.set_result(fit_one(*args))
        self.queue.append(_Retrain(end, len(X), job))
        self.fits_ahead += 1

    # ------------------------------------------------------------------ scoring stage
    def blocker(self) -> Future | None:
        """The fit the scoring stage waits for, when it must wait (else None)."""
        head = self.queue[0] if self.queue else None
        if isinstance(head, _Retrain) and not head.job.done():
            return head.job
        return None

    def judge(self) -> list[ScoredChunk]:
        """Judge every run whose model is known; the chunks that are now complete."""
        while self.queue and self.blocker() is None:
            item = self.queue.popleft()
            if isinstance(item, _Retrain):
                self.fits_ahead -= 1
                self._apply(item)
                continue
            chunk, start, f = item  # at most `chunk` trades (split by `push`)
            self.ahead -= len(f.ts)
            judged = self.detector.judge(f, _Offset(chunk, start))
            chunk.judged(start, judged.raw, judged.alerting, self.detector.model)
        done = []
        while self.chunks and self.chunks[0].left == 0:
            done.append(self.chunks.popleft().scored())
        return done

    def _apply(self, item: _Retrain) -> None:
        result = item.job.result()
        version = self.on_fit(result, item.end) if self.on_fit else str(len(self.fits) + 1)
        self.fits.append(Fit(item.end, version, item.rows, result.promote_ok, result.reason,
                             result.threshold))
        if result.promote_ok:
            self.detector.set_model(self.serve(result, version, item.end), rescore=False)

    def drain(self) -> tuple[list, list[AnomalyEvent]]:
        """The detector's buffered feature rows and event snapshots (events kept here too)."""
        rows, events = self.detector.drain()
        for ev in events:
            self.events[ev.start] = ev
        return rows, events

    def close(self) -> None:
        """Stop the fitting processes (queued fits cancelled; a running one finishes)."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)


class _Offset:
    """`chunk[start + i]` as `[i]`: the trades of one judged run."""

    def __init__(self, chunk: _Chunk, start: int) -> None:
        self.chunk, self.start = chunk, start

    def __getitem__(self, i: int):
        return self.chunk[self.start + i]
