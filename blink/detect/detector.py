"""Features + the served model -> a score on every trade, the latest state, anomaly events.

Two stages, both over arrays (one trade or a burst of them):

- `featurize(ts, price, size, taker)` runs the feature engine (C, `blink.features`) over the
  trades: their vectors, readiness and trade rate. It does not depend on the model, so the
  backtest can run it ahead while a retrain is still being fitted;
- `judge(...)` scores the ready vectors in one compiled-forest call, compares them with the
  threshold, folds anomalies into events, publishes a "tick" and buffers a feature row every
  `feature_cadence_seconds` of event time, and rewrites `Latest` for the routes.

`on_trades(trades)` is both for consecutive trades: the tape hands bursts over in batches (see
`blink.runtime.batching`); `on_trade` is a batch of one. Per-trade Python runs only where something
happens (a tick, an anomalous score, an event closing); the rest is vectorised, with the same
result as trade by trade (tested). Buffers are bounded and drained by
`blink.store.feature_rows`; nothing here waits for I/O.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np

from blink.config import Settings
from blink.detect.events import AnomalyEvent, EventTracker
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES, FeatureEngine
from blink.model.served import ServedModel
from blink.runtime.broadcast import Broadcaster
from blink.runtime.metrics import Metrics
from blink.trade import Trade

log = logging.getLogger(__name__)

ROWS_MAX = 86_400  # a day of rows at the default cadence, kept while PostgreSQL is down


class NoModel(RuntimeError):
    """No model is being served yet (POST /score answers 503)."""


class FeatureRow(NamedTuple):
    time: datetime
    trade_id: int
    price: float
    vector: dict[str, float]
    score_raw: float | None
    anomaly: bool | None
    model_version: str | None


class Featurized(NamedTuple):
    """What the feature stage gave for a run of trades (arrays of n)."""
    ts: np.ndarray  # float64 event time
    price: np.ndarray  # float64
    values: np.ndarray  # (n, k) float64: the vector after each trade (NaN while not ready)
    ready: np.ndarray  # bool
    rate: np.ndarray  # float64: trades per second over the flow window


class Judged(NamedTuple):
    """What the scoring stage gave (arrays of n): score_raw (NaN if unscored), flags, and
    `alerting`: anomalous, or holding the open event (past the release level within its gap:
    an alert covers the trade)."""
    raw: np.ndarray
    anomalous: np.ndarray
    alerting: np.ndarray


class Detector:
    def __init__(self, settings: Settings, latest: Latest, metrics: Metrics,
                 broadcaster: Broadcaster, rows_max: int = ROWS_MAX,
                 keep_rows: bool = True,
                 market: Callable[[str, float], list[dict]] | None = None) -> None:
        self.product_id = product = settings.pair
        self.latest, self.metrics, self.broadcaster = latest, metrics, broadcaster
        self.engine = FeatureEngine.from_settings(settings)
        self.tracker = EventTracker(settings.pair, settings.event_gap_seconds)
        self.model: ServedModel | None = None
        self.cadence = settings.feature_cadence_seconds
        self.rows: deque[FeatureRow] = deque()
        self.rows_max = rows_max
        self.keep_rows = keep_rows  # buffer feature rows (False: nobody stores them)
        self.dirty: dict[float, AnomalyEvent] = {}  # event start -> event to upsert
        self._bucket: int | None = None
        # the market context line of an explanation (`blink.detect.market`; None: no line)
        self.market = market
        self._stream = metrics.predictions.labels(path="stream", product=product)
        self._api = metrics.predictions.labels(path="api", product=product)
        self._anomalies = metrics.anomalies.labels(product=product)
        self._dropped = metrics.feature_rows_dropped.labels(product=product)

    def set_model(self, served: ServedModel, rescore: bool = True) -> None:
        """Serve `served` from the next trade on (one assignment: atomic for on_trade);
        `rescore`: score the engine's current vector now (the backtest's engine runs ahead)."""
        self.model = served
        latest = self.latest
        latest.threshold, latest.model = served.threshold, served.label
        latest.model_trained_at = served.trained_at
        log.info("scoring with %s (threshold %.6f)", served.label, served.threshold)
        if rescore and self.engine.not_ready() is None:  # score it now, not at next trade
            values = self.engine.values()
            raw = served.score_one(values)
            latest.not_ready, latest.score_raw = None, raw
            latest.anomaly = raw < served.threshold
            at = latest.as_of.timestamp() if latest.as_of else time.time()
            latest.explanation = self._explain(served, values, at) if latest.anomaly else []
            self.broadcaster.publish("model", {"model": served.label, "score_raw": raw,
                                               "threshold": served.threshold,
                                               "anomaly": latest.anomaly,
                                               "product_id": self.product_id})

    # ------------------------------------------------------------------ per trade
    def on_trade(self, trade: Trade) -> None:
        """Features, score, latest state, tick and events for one trade (trade-id order)."""
        self.on_trades((trade,))

    def on_trades(self, trades: Sequence[Trade]) -> Judged:
        """Both stages for consecutive trades (trade-id order)."""
        n = len(trades)
        ts = np.fromiter((t.ts for t in trades), np.float64, n)
        price = np.fromiter((t.price for t in trades), np.float64, n)
        size = np.fromiter((t.size for t in trades), np.float64, n)
        taker = np.fromiter((t.side == "sell" for t in trades), np.bool_, n)
        return self.judge(self.featurize(ts, price, size, taker), trades)

    def featurize(self, ts: np.ndarray, price: np.ndarray, size: np.ndarray,
                  taker: np.ndarray) -> Featurized:
        """The feature stage (no model involved): float64 arrays, `taker` bool."""
        n = len(ts)
        values = np.empty((n, len(FEATURE_NAMES)))
        rate = np.empty(n)
        self.engine.run(ts, price, size, taker, values, rate)
        return Featurized(ts, price, values, ~np.isnan(values[:, 0]), rate)

    def judge(self, f: Featurized, trades: Sequence) -> Judged:
        """The scoring stage for the trades `f` came from, in order. `trades[i]` needs only
        `.time` and `.trade_id`, and is read only at ticks and at the last trade."""
        n, model = len(f.ts), self.model
        raw = np.full(n, np.nan)
        anomalous = held = np.zeros(n, bool)
        if n == 0:
            return Judged(raw, anomalous, anomalous)
        if model is not None and f.ready.any():
            t0 = time.perf_counter()
            raw[f.ready] = model.score(f.values[f.ready])
            self.metrics.predict_latency.observe(time.perf_counter() - t0)
            self._stream.inc(int(np.count_nonzero(f.ready)))
            anomalous = raw < model.threshold  # NaN (unscored) compares False
            held = raw < model.release  # the anomalous scores and those holding an event
        buckets = np.floor(f.ts / self.cadence)
        first = np.nan if self._bucket is None else self._bucket
        is_tick = np.diff(buckets, prepend=first) != 0
        self._bucket = float(buckets[-1])
        if not (self.keep_rows or self.broadcaster.subscribers):
            is_tick[:] = False  # a tick nobody reads: no per-tick work (backtests)
        alerting = anomalous.copy()
        done = 0  # trades before this index went through the event tracker
        for i in np.flatnonzero(is_tick | anomalous).tolist():
            self._close_stale(f.ts, held, done, i, alerting)
            done = i + 1
            if anomalous[i]:
                self._anomalous(f, i, float(raw[i]), model)
            else:
                self._events(self.tracker.advance(float(f.ts[i])))
                if held[i]:
                    alerting[i] = self.tracker.hold(f.ts[i:i + 1]) > 0
            if is_tick[i]:
                self._tick(f, i, raw, anomalous, model, trades[i])
        self._close_stale(f.ts, held, done, n, alerting)
        self._set_latest(f, n - 1, raw, anomalous, model, trades[n - 1])
        return Judged(raw, anomalous, alerting)

    def _close_stale(self, ts: np.ndarray, held: np.ndarray, lo: int, hi: int,
                     alerting: np.ndarray) -> None:
        """Trades lo..hi-1 are not anomalous: those past the release level (`held`) hold the
        open event (marked `alerting`); the first one past the gap after them closes it."""
        ev = self.tracker.current
        if ev is None or lo >= hi:
            return
        holding = lo + np.flatnonzero(held[lo:hi])
        alerting[holding[:self.tracker.hold(ts[holding])]] = True
        late = np.flatnonzero(ts[lo:hi] - ev.end > self.tracker.gap)
        if len(late):
            self._events(self.tracker.advance(float(ts[lo + late[0]])))

    def _anomalous(self, f: Featurized, i: int, raw: float, model: ServedModel) -> None:
        ts = float(f.ts[i])
        changes = self.tracker.observe(ts, raw, True, model.threshold, model.version,
                                       lambda: self._explain(model, f.values[i], ts))
        self.dirty[self.tracker.current.start] = self.tracker.current
        self._events(changes)

    def _events(self, changes: list[tuple[str, AnomalyEvent]]) -> None:
        for kind, event in changes:
            self._event(kind, event)

    def _state(self, f: Featurized, i: int, raw: np.ndarray, model: ServedModel | None):
        """(features dict or None, score_raw or None, not_ready reason) after trade i."""
        if not f.ready[i]:
            return None, None, "no_features"
        features = dict(zip(FEATURE_NAMES, f.values[i].tolist(), strict=True))
        if model is None:
            return features, None, "no_model"
        return features, float(raw[i]), None

    def _set_latest(self, f: Featurized, i: int, raw: np.ndarray, anomalous: np.ndarray,
                    model: ServedModel | None, trade) -> None:
        latest = self.latest
        latest.as_of, latest.trade_id, latest.price = trade.time, trade.trade_id, float(
            f.price[i])
        latest.trade_rate = float(f.rate[i])
        latest.features, latest.score_raw, latest.not_ready = self._state(f, i, raw, model)
        latest.anomaly = bool(anomalous[i])
        latest.explanation = (self._explain(model, f.values[i], float(f.ts[i]))
                              if latest.anomaly else [])
        latest.updated_wall = time.time()

    def _explain(self, model: ServedModel, values: np.ndarray, ts: float) -> list[dict]:
        """The model's explanation of `values`, plus the market context line at event time
        `ts` when several products are watched."""
        out = model.explain(values)
        return out + self.market(self.product_id, ts) if self.market is not None else out

    def _event(self, kind: str, event: AnomalyEvent) -> None:
        self.dirty[event.start] = event
        if kind == "anomaly_start":
            self._anomalies.inc()
            log.info("anomaly started at %s (score %.4f)", event.as_dict()["start_time"],
                     event.peak_score)
        else:
            log.info("anomaly ended: %d points, peak %.4f", event.points, event.peak_score)
        self.broadcaster.publish(kind, event.as_dict())

    def _tick(self, f: Featurized, i: int, raw: np.ndarray, anomalous: np.ndarray,
              model: ServedModel | None, trade) -> None:
        features, score, reason = self._state(f, i, raw, model)
        price, flag = float(f.price[i]), bool(anomalous[i])
        self.broadcaster.publish("tick", {
            "product_id": self.product_id,
            "time": trade.time.isoformat().replace("+00:00", "Z"),
            "trade_id": trade.trade_id,
            "price": price,
            "score_raw": score,
            "anomaly": flag,
            "anomaly_score": model.anomaly_score(score) if score is not None else None,
            "threshold": model.threshold if model else None,
            "model": model.label if model else None,
            "features": features,
            "trade_rate": float(f.rate[i]),
            "not_ready": reason,
        })
        if features is None or not self.keep_rows:
            return  # no vector yet, or nobody stores it
        if len(self.rows) >= self.rows_max:
            self.rows.popleft()
            self._dropped.inc()
        vector = {n: v if math.isfinite(v) else None for n, v in features.items()}
        self.rows.append(FeatureRow(trade.time, trade.trade_id, price, vector, score,
                                    flag if score is not None else None,
                                    model.version if model else None))

    # ------------------------------------------------------------------ buffers
    def drain(self) -> tuple[list[FeatureRow], list[AnomalyEvent]]:
        """Take everything waiting to be stored (events as snapshots)."""
        rows = list(self.rows)
        self.rows.clear()
        events = [ev.snapshot() for ev in self.dirty.values()]
        self.dirty.clear()
        return rows, events

    def requeue(self, rows: list[FeatureRow], events: list[AnomalyEvent]) -> None:
        """Put back what could not be stored (oldest rows dropped beyond the bound)."""
        merged = rows + list(self.rows)
        excess = max(0, len(merged) - self.rows_max)
        if excess:
            self._dropped.inc(excess)
        self.rows = deque(merged[excess:])
        for ev in events:
            self.dirty.setdefault(ev.start, ev)

    # ------------------------------------------------------------------ API path
    def score_rows(self, X) -> np.ndarray:
        """score_raw for rows in FEATURE_NAMES order (POST /score); raises NoModel."""
        model = self.model
        if model is None:
            raise NoModel("no_model")
        scores = model.score(np.asarray(X, dtype=np.float64))
        self._api.inc(len(scores))
        return scores
