"""Detector: readiness reasons, latest state, metrics, ticks, anomaly events, explanations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from blink.detect.detector import Detector, Featurized, NoModel
from blink.detect.events import EventTracker
from blink.detect.latest import Latest
from blink.features import FEATURE_NAMES
from blink.model.served import RELEASE, ServedModel
from blink.runtime.metrics import Metrics
from tests.support.models import Recorder, make_served
from tests.support.trades import calm, from_arrays


@pytest.fixture(scope="module")
def served() -> ServedModel:
    return make_served()


@pytest.fixture
def setup(make_settings):
    settings = make_settings(min_history_seconds=300, min_trades=30, feature_cadence_seconds=1,
                             event_gap_seconds=30)
    latest, metrics, rec = Latest(product_id="BTC-USD"), Metrics(), Recorder()
    return Detector(settings, latest, metrics, rec), latest, metrics, rec


PRODUCT = {"product": "BTC-USD"}  # the default pair's series
STREAM, API = {"path": "stream", **PRODUCT}, {"path": "api", **PRODUCT}


def count(metrics: Metrics, name: str, labels: dict | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_readiness_reasons_then_scores(setup, served):
    det, latest, metrics, rec = setup
    stream = from_arrays(*calm(3500, seed=2))
    for t in stream[:10]:
        det.on_trade(t)
    assert latest.score_payload() == {"ready": False, "reason": "no_features",
                                      "product_id": "BTC-USD"}
    for t in stream[10:3000]:
        det.on_trade(t)
    assert latest.not_ready == "no_model" and latest.features is not None
    assert latest.score_payload()["reason"] == "no_model"
    assert count(metrics, "blink_predictions_total", STREAM) == 0
    det.set_model(served)
    for t in stream[3000:]:
        det.on_trade(t)
    body = latest.score_payload()
    assert body["ready"] is True and body["model"] == served.label
    assert body["threshold"] == served.threshold
    x = np.array([body["features"][n] for n in FEATURE_NAMES])
    assert body["score_raw"] == pytest.approx(served.score(x[None])[0], abs=1e-12)
    assert latest.trade_id == stream[-1].trade_id and latest.price == float(stream[-1].price)
    assert count(metrics, "blink_predictions_total", STREAM) == 500
    assert count(metrics, "blink_predict_latency_seconds_count") == 500


def test_ticks_once_per_cadence_and_rows_only_when_ready(setup, served):
    det, latest, metrics, rec = setup
    ts, p, size, tb = calm(3500, seed=3)
    det.set_model(served)
    for t in from_arrays(ts, p, size, tb):
        det.on_trade(t)
    ticks = rec.kinds("tick")
    seconds = np.unique(np.floor(ts))
    assert len(ticks) == len(seconds)
    assert ticks[0]["not_ready"] == "no_features" and ticks[-1]["not_ready"] is None
    rows, events = det.drain()
    assert len(rows) == sum(1 for t in ticks if t["not_ready"] is None)
    assert all(r.score_raw is not None and set(r.vector) == set(FEATURE_NAMES) for r in rows)
    assert det.drain() == ([], [])


def test_a_price_jump_makes_one_event_with_explanation(setup, served):
    det, latest, metrics, rec = setup
    det.set_model(served)  # its budget threshold: the calm stream stays above it
    ts, p, size, tb = calm(6500, seed=4)  # ~1600 s: z_300 carries the jump for 300 s,
    jump = 4000  # then the event must end (event gap) before the stream does
    p[jump:] *= 1.03  # +3 % in one trade: far outside the calm training range
    stream = from_arrays(ts, p, size, tb)
    for t in stream[:jump + 1]:
        det.on_trade(t)
    assert latest.anomaly is True
    top = latest.score_payload()["explanation"]
    assert len(top) == 3 and top[0]["surprise"] > 3
    assert top[0]["feature"] in {"z_1", "z_5", "z_30", "z_300", "volratio_60"}
    assert "σ of its current volatility" in top[0]["text"] or "volatility" in top[0]["text"]
    starts = rec.kinds("anomaly_start")
    assert len(starts) == 1 and count(metrics, "blink_anomalies_total", PRODUCT) == 1
    for t in stream[jump + 1:]:
        det.on_trade(t)
    ends = rec.kinds("anomaly_end")
    assert len(rec.kinds("anomaly_start")) == 1 and len(ends) == 1
    event = ends[0]
    assert event["open"] is False and event["points"] >= 1
    assert event["peak_score"] < served.threshold
    assert event["explanation"] and event["explanation"][0]["surprise"] > 3
    _, events = det.drain()
    assert len(events) == 1 and events[0].open is False


def test_score_rows_counts_the_api_path(setup, served):
    det, latest, metrics, rec = setup
    with pytest.raises(NoModel):
        det.score_rows(np.zeros((1, len(FEATURE_NAMES))))
    det.set_model(served)
    X = np.random.default_rng(0).normal(scale=1e-3, size=(7, len(FEATURE_NAMES)))
    np.testing.assert_allclose(det.score_rows(X), served.score(X))
    assert count(metrics, "blink_predictions_total", API) == 7


def test_buffer_is_bounded_and_requeue_keeps_newest(setup, served):
    det, latest, metrics, rec = setup
    det.rows_max = 50
    det.set_model(served)
    for t in from_arrays(*calm(3500, seed=5)):
        det.on_trade(t)
    assert len(det.rows) == 50
    dropped = count(metrics, "blink_feature_rows_dropped_total", PRODUCT)
    assert dropped > 0
    rows, events = det.drain()
    det.on_trade(from_arrays(*calm(1, seed=9, start=rows[-1].time.timestamp() + 1),
                        first_id=10_000)[0])
    det.requeue(rows, events)  # a failed write: 50 old + 1 new -> the oldest one goes
    assert len(det.rows) == 50 and det.rows[-1].trade_id == 10_000
    assert count(metrics, "blink_feature_rows_dropped_total", PRODUCT) == dropped + 1


def test_event_tracker_folds_and_splits_on_the_gap():
    tr = EventTracker("BTC-USD", gap_seconds=30)
    calls = []

    def explain():
        calls.append(1)
        return [{"feature": "ret_1s", "value": 1.0, "z": 9.0}]

    seen = []
    for ts, score, bad in [(0, -0.7, True), (10, -0.8, True), (35, -0.75, True), (50, -0.2, False),
                           (66, -0.2, False), (100, -0.9, True), (200, -0.2, False)]:
        seen += [(kind, ev.start, ev.end, ev.points, ev.peak_score)
                 for kind, ev in tr.observe(ts, score, bad, -0.6, "1", explain)]
    assert seen == [("anomaly_start", 0, 0, 1, -0.7), ("anomaly_end", 0, 35, 3, -0.8),
                    ("anomaly_start", 100, 100, 1, -0.9), ("anomaly_end", 100, 100, 1, -0.9)]
    assert len(calls) == 3  # the two starts and the new peak at t=10


def test_scores_past_the_release_level_hold_an_event_open():
    tr = EventTracker("BTC-USD", gap_seconds=30)
    seen = []
    # threshold -0.6, release -0.3: the detector calls hold() for -0.4 and -0.35, not -0.25
    for ts, score in [(0, -0.7), (25, -0.4), (50, -0.35), (75, -0.8),  # one episode
                      (90, -0.25), (100, -0.2), (110, -0.7),  # normal again for 35 s
                      (130, -0.1), (150, -0.1)]:
        if -0.6 <= score < -0.3:
            tr.hold(np.array([ts], float))
        seen += [(kind, ev.start, ev.end, ev.points)
                 for kind, ev in tr.observe(ts, score, score < -0.6, -0.6, "1", list)]
    assert seen == [("anomaly_start", 0, 0, 1), ("anomaly_end", 0, 75, 2),
                    ("anomaly_start", 110, 110, 1), ("anomaly_end", 110, 110, 1)]


def test_release_level_is_between_the_usual_score_and_the_threshold(served):
    assert served.threshold < served.release < 0
    quantiles = dict(zip(served.train_stats["quantile_levels"],
                         served.train_stats["score_quantiles"], strict=True))
    assert served.release == pytest.approx(quantiles[0.5] + RELEASE * (served.threshold
                                                                      - quantiles[0.5]))
    # a scorer on another scale (HST's scores sit around -0.5): the same share of the way
    other = dataclasses.replace(served, threshold=-0.9, train_stats={
        "quantile_levels": [0.0, 0.5, 1.0], "score_quantiles": [-1.0, -0.5, -0.1]})
    assert other.release == pytest.approx(-0.7)


class FirstColumn:
    """A scorer whose score_raw is the row's first value (a scripted score)."""

    def score_samples(self, X):
        return np.atleast_2d(X)[:, 0].copy()

    def score_one(self, x):
        return float(np.asarray(x)[0])


def scripted(det: Detector, scores: list[float], step: float, start: float = 1.7e9):
    n = len(scores)
    ts = start + step * np.arange(n)
    values = np.zeros((n, len(FEATURE_NAMES)))
    values[:, 0] = scores
    f = Featurized(ts, np.full(n, 100.0), values, np.ones(n, bool), np.ones(n))
    return det.judge(f, from_arrays(ts, np.full(n, 100.0), np.full(n, 0.01), np.ones(n, bool)))


@pytest.mark.parametrize("ticks", [True, False])  # the service's path, and a backtest's
def test_an_episode_hovering_at_the_threshold_is_one_event(setup, ticks):
    det, latest, metrics, rec = setup  # event gap 30 s
    det.keep_rows = ticks  # without rows nor SSE readers no row is a tick
    det.set_model(ServedModel(FirstColumn(), FEATURE_NAMES, -0.6, "scripted", "1", "", {
        "quantile_levels": [0.0, 0.5, 1.0], "score_quantiles": [-1.0, 0.0, 0.0]}))
    assert det.model.release == pytest.approx(-0.3)
    # anomalous, 50 s past the release level only, anomalous again, then normal
    judged = scripted(det, [-0.7] + [-0.4] * 5 + [-0.7] + [0.0] * 6, step=10.0)
    ends = rec.kinds("anomaly_end")
    assert len(rec.kinds("anomaly_start")) == 1 and len(ends) == 1  # by the gap alone: 2
    assert ends[0]["points"] == 2
    assert judged.anomalous.tolist() == [True] + [False] * 5 + [True] + [False] * 6
    assert judged.alerting.tolist() == [True] * 7 + [False] * 6  # the alert covers the hold
    # normal scores for longer than the gap split the next episode in two
    judged = scripted(det, [-0.7] + [-0.2] * 4 + [-0.7] + [0.0] * 6, step=10.0,
                      start=1.7e9 + 1000)
    assert len(rec.kinds("anomaly_start")) == 3
    assert judged.alerting.tolist() == judged.anomalous.tolist()
    # past the release level with no event open, or beyond the gap of the last hold: no alert
    judged = scripted(det, [-0.4] * 3 + [-0.7] + [0.0] * 4 + [-0.4] * 2, step=10.0,
                      start=1.7e9 + 2000)
    assert judged.alerting.tolist() == [False] * 3 + [True] + [False] * 6


def test_explain_and_anomaly_score(served):
    x = np.zeros(len(FEATURE_NAMES))
    x[FEATURE_NAMES.index("z_300")] = -9.0
    top = served.explain(x)
    assert top[0]["feature"] == "z_300" and top[0]["value"] == -9.0
    assert top[0]["text"] == "5-min return −9.0σ of its current volatility"
    # the other terms are listed only when they are in their own 1 % tail: not the zeros
    assert all(t["feature"] not in FEATURE_NAMES for t in top[1:])
    assert all(t["surprise"] >= 2 for t in top[1:])
    x[FEATURE_NAMES.index("volume_surprise_60")] = 4.0  # and 55x the usual volume with it
    both = served.explain(x)
    assert {t["feature"] for t in both[:2]} == {"z_300", "volume_surprise_60"}
    assert both[0]["surprise"] >= both[1]["surprise"] >= 2
    assert len(served.explain(np.zeros(len(FEATURE_NAMES)))) >= 1  # the first, always
    assert served.score_one(x) < served.threshold < 0  # a 9-sigma 5-min move is an alert
    assert served.score_one(np.zeros(len(FEATURE_NAMES))) > served.threshold
    lo, hi = served.train_stats["score_quantiles"][0], served.train_stats["score_quantiles"][-1]
    assert served.anomaly_score(lo - 0.1) == 1.0 and served.anomaly_score(hi + 0.1) == 0.0
    grid = np.linspace(lo, hi, 50)
    scores = [served.anomaly_score(g) for g in grid]
    assert all(a >= b for a, b in zip(scores, scores[1:], strict=False))


def test_explanations_in_a_traders_words():
    from blink.model.explain import describe

    assert describe("z_300", -7.14) == "5-min return −7.1σ of its current volatility"
    assert describe("z_1", 4.0, scale=15.0) == "15-s return +4.0σ of its current volatility"
    assert describe("z_300", 2.0, scale=15.0).startswith("75-min return")
    assert describe("volume_surprise_60", math.log(9.0)) == "1-min volume 9.0× its usual"
    assert describe("volratio_60", math.log(12.0)) == "1-min volatility 12× its usual"
    assert describe("count_surprise_60", math.log(3.0)) == \
        "1-min trade count 3.0× the 5 min before"
    assert describe("imbalance_60", -0.7) == "1-min flow 85% taker sells"
