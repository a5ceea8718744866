"""Features + the served model -> a score on every trade, the latest state, anomaly events.

`on_trade` runs synchronously for every trade in trade-id order (the tape calls it): it
updates the feature engine, scores with the current model (one compiled-forest walk), and
rewrites `Latest` for the routes. `on_trades` does the same for a run of consecutive trades
(the tape's batches during a burst; the backtest's chunks) with one forest call for all its
rows (~5 µs a row instead of ~30; the same scores to the last bit). Every
`feature_cadence_seconds` of event time it publishes a "tick" and buffers a feature row;
anomaly events go out as "anomaly_start"/"anomaly_end" and are buffered for the `anomalies`
table. Buffers are bounded and drained by `blink.store.feature_rows`; nothing here waits for
I/O.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np

from blink.broadcast import Broadcaster
from blink.config import Settings
from blink.events import AnomalyEvent, EventTracker
from blink.features import FEATURE_NAMES, FeatureEngine
from blink.metrics import Metrics
from blink.model.served import ServedModel
from blink.state import Latest
from blink.trade import Trade

log = logging.getLogger(__name__)

ROWS_MAX = 86_400  # a day of rows at the default cadence, kept while PostgreSQL is down
BATCH_SCORE_MIN = 3  # ready rows from which one batched forest call beats per-row calls


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


class TradeScore(NamedTuple):
    """What one trade gave: its feature vector (None while warming up), score, flag."""
    values: list[float] | None
    score_raw: float | None
    anomalous: bool


class Detector:
    def __init__(self, settings: Settings, latest: Latest, metrics: Metrics,
                 broadcaster: Broadcaster, rows_max: int = ROWS_MAX) -> None:
        self.product_id = settings.pair
        self.latest, self.metrics, self.broadcaster = latest, metrics, broadcaster
        self.engine = FeatureEngine.from_settings(settings)
        self.tracker = EventTracker(settings.pair, settings.event_gap_seconds)
        self.model: ServedModel | None = None
        self.cadence = settings.feature_cadence_seconds
        self.rows: deque[FeatureRow] = deque()
        self.rows_max = rows_max
        self.dirty: dict[float, AnomalyEvent] = {}  # event start -> event to upsert
        self._bucket: int | None = None
        self._stream = metrics.predictions.labels(path="stream")
        self._api = metrics.predictions.labels(path="api")

    def set_model(self, served: ServedModel) -> None:
        """Serve `served` from the next trade on (one assignment: atomic for on_trade)."""
        self.model = served
        latest = self.latest
        latest.threshold, latest.model = served.threshold, served.label
        latest.model_trained_at = served.trained_at
        log.info("scoring with %s (threshold %.6f)", served.label, served.threshold)
        if self.engine.not_ready() is None:  # score the current vector now, not at next trade
            values = self.engine.values()
            raw = served.score_one(values)
            latest.not_ready, latest.score_raw = None, raw
            latest.anomaly = raw < served.threshold
            latest.explanation = served.explain(values) if latest.anomaly else []
            self.broadcaster.publish("model", {"model": served.label, "score_raw": raw,
                                               "threshold": served.threshold,
                                               "anomaly": latest.anomaly})

    # ------------------------------------------------------------------ per trade
    def on_trade(self, trade: Trade) -> None:
        """Features, score, latest state, tick and events for one trade (trade-id order)."""
        self.on_trades((trade,))

    def on_trades(self, trades: Sequence[Trade]) -> list[TradeScore]:
        """`on_trade` for consecutive trades (the tape hands bursts over in batches): the
        same features, states, ticks and events, the ready rows scored in one forest call
        (bit-identical to one by one). Returns each trade's (values, score_raw, anomalous)."""
        engine, model = self.engine, self.model
        steps = []
        for trade in trades:
            ts, price = trade.ts, float(trade.price)
            engine.update(ts, price, float(trade.size), trade.taker_buy)
            reason, values = engine.not_ready(), None
            if reason is None:
                values = engine.values()
                if model is None:
                    reason = "no_model"
            steps.append((trade, ts, price, values, reason, engine.trade_rate))
        scores = self._score([s[3] for s in steps if s[4] is None], model)
        last = steps[-1][0] if steps else None
        out = []
        for trade, ts, price, values, reason, rate in steps:
            raw = next(scores) if reason is None else None
            anomalous = self._apply(trade, ts, price, values, reason, rate, raw, model,
                                    trade is last)
            out.append(TradeScore(values, raw, anomalous))
        self.latest.updated_wall = time.time()
        self.metrics.features_age.set(0.0)
        return out

    def _score(self, rows: list[list[float]], model: ServedModel | None) -> Iterator[float]:
        """score_raw of every row; `predict_latency` observes each compiled-forest call."""
        if len(rows) < BATCH_SCORE_MIN:
            out = []
            for values in rows:
                t0 = time.perf_counter()
                out.append(model.score_one(values))
                self.metrics.predict_latency.observe(time.perf_counter() - t0)
        else:
            t0 = time.perf_counter()
            out = model.score(np.array(rows, dtype=np.float64)).tolist()
            self.metrics.predict_latency.observe(time.perf_counter() - t0)
        if out:
            self._stream.inc(len(out))
        return iter(out)

    def _apply(self, trade: Trade, ts: float, price: float, values: list[float] | None,
               reason: str | None, rate: float, raw: float | None, model: ServedModel | None,
               last: bool) -> bool:
        latest = self.latest
        latest.as_of, latest.trade_id, latest.price = trade.time, trade.trade_id, price
        latest.trade_rate = rate
        anomalous = raw is not None and raw < model.threshold
        bucket = math.floor(ts / self.cadence)
        tick = bucket != self._bucket
        if tick or last:  # nothing reads `features` before the batch's next trade replaces it
            latest.features = None if values is None else dict(zip(FEATURE_NAMES, values,
                                                                    strict=True))
        latest.not_ready, latest.score_raw, latest.anomaly = reason, raw, anomalous
        if anomalous:
            latest.explanation = model.explain(values)
            changes = self.tracker.observe(ts, raw, True, model.threshold, model.version,
                                           lambda: latest.explanation)
            self.dirty[self.tracker.current.start] = self.tracker.current
        else:
            latest.explanation = []
            changes = self.tracker.advance(ts)
        for kind, event in changes:
            self._event(kind, event)

        if tick:
            self._bucket = bucket
            self._tick(trade, price, values, raw, anomalous, model)
        return anomalous

    def _event(self, kind: str, event: AnomalyEvent) -> None:
        self.dirty[event.start] = event
        if kind == "anomaly_start":
            self.metrics.anomalies.inc()
            log.info("anomaly started at %s (score %.4f)", event.as_dict()["start_time"],
                     event.peak_score)
        else:
            log.info("anomaly ended: %d points, peak %.4f", event.points, event.peak_score)
        self.broadcaster.publish(kind, event.as_dict())

    def _tick(self, trade: Trade, price: float, values: list[float] | None,
              raw: float | None, anomalous: bool, model: ServedModel | None) -> None:
        latest = self.latest
        self.broadcaster.publish("tick", {
            "time": trade.time.isoformat().replace("+00:00", "Z"),
            "trade_id": trade.trade_id,
            "price": price,
            "score_raw": raw,
            "anomaly": anomalous,
            "anomaly_score": model.anomaly_score(raw) if raw is not None else None,
            "threshold": model.threshold if model else None,
            "model": model.label if model else None,
            "features": latest.features,
            "trade_rate": latest.trade_rate,
            "not_ready": latest.not_ready,
        })
        if values is None:
            return  # no vector yet: nothing to store
        if len(self.rows) >= self.rows_max:
            self.rows.popleft()
            self.metrics.feature_rows_dropped.inc()
        vector = {n: v if math.isfinite(v) else None
                  for n, v in zip(FEATURE_NAMES, values, strict=True)}
        self.rows.append(FeatureRow(trade.time, trade.trade_id, price, vector, raw,
                                    anomalous if raw is not None else None,
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
            self.metrics.feature_rows_dropped.inc(excess)
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
