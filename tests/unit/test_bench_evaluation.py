"""The evaluation harness's own pieces: HST's array walk, the common span, the generators."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from bench import evaluation, hst, inject, moves, server_metrics
from blink import config
from blink.backtest.evaluation import Window

river = pytest.importorskip("river.anomaly")


def test_hst_scorer_equals_river_score_one():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 5))
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = hi - lo
    model = river.HalfSpaceTrees(n_trees=7, height=6, window_size=len(X), seed=1)
    for row in ((X - lo) / span).tolist():
        model.learn_one(dict(enumerate(row)))
    scorer = hst.Scorer.from_river(model, lo, span)
    Y = np.vstack([X[:40], 4 * rng.standard_normal((40, 5))])
    ref = [-model.score_one(dict(enumerate(((y - lo) / span).tolist()))) for y in Y]
    assert scorer.score_samples(Y) == pytest.approx(ref, abs=1e-12)
    assert scorer.score_one(Y[0]) == pytest.approx(ref[0], abs=1e-12)


def test_hst_fit_serves_a_threshold_by_the_alert_budget():
    # 2,990 one-second rows are 0.035 days: a budget this window can express (~17 events)
    settings = dataclasses.replace(config.Settings(), alerts_per_day=500.0)
    X = np.random.default_rng(4).standard_normal((3000, 4))
    X[:10] = np.nan  # not warm: left out
    result = hst.fit(X, settings, ("a", "b", "c", "d"))
    served = hst.serve(result, "1", 0.0)
    scores = served.score(X[10:])
    assert 0 < np.mean(scores < served.threshold) <= 0.05  # a few short events, not a flood
    assert served.score(30 * np.ones((1, 4)))[0] < served.threshold  # far out: anomalous


def test_hst_is_fed_the_columns_the_forest_uses():
    # on bars the forest leaves out the made-up trade count and imbalance: so does HST
    settings = dataclasses.replace(config.Settings(), alerts_per_day=500.0,
                                   model_features=("a", "c"))
    X = np.random.default_rng(8).standard_normal((3000, 4))
    served = hst.serve(hst.fit(X, settings, ("a", "b", "c", "d")), "1", 0.0)
    assert served.forest.columns.tolist() == [0, 2] and served.forest.n_features == 2
    Y = X.copy()
    Y[:, [1, 3]] = 1e6  # what it does not use cannot move its scores
    np.testing.assert_array_equal(served.score(Y), served.score(X))


def _run(first: float, last: float, events):
    scored = [SimpleNamespace(ts=t, score_raw=None if t < first else -0.5,
                              anomaly=any(s <= t <= e for s, e in events))
              for t in np.arange(0.0, last + 1, 10.0)]
    bt = SimpleNamespace(events={s: SimpleNamespace(start=s, end=e, explanation=[])
                                 for s, e in events})
    return scored, bt


def test_detectors_are_scored_over_one_common_span():
    runs = {"a": _run(100.0, 1000.0, [(50.0, 60.0), (500.0, 510.0)]),
            "b": _run(300.0, 1000.0, [(505.0, 520.0)])}
    assert evaluation.common_span(runs) == (300.0, 1000.0)
    windows = [Window(200.0, 250.0, "early"), Window(490.0, 530.0, "x")]
    out = evaluation.judge(runs, windows)
    for counts, *_ in out.values():
        assert (counts.windows, counts.detected, counts.skipped) == (1, 1, 1)
    assert out["a"][0].events == 1  # the event before the common span is not counted
    # the scores file's reader: flagged rows 500 and 510 are one alert, caught the window
    assert (out["a"][3].events, out["a"][3].detected, out["b"][3].detected) == (1, 1, 1)


def test_the_scores_file_reader_joins_flagged_rows_at_most_the_gap_apart():
    rows = [SimpleNamespace(ts=t, anomaly=t in (60.0, 120.0, 300.0, 310.0, 600.0))
            for t in np.arange(0.0, 700.0, 10.0)]
    assert evaluation.flagged(rows, gap=60.0) == [(60.0, 120.0), (300.0, 310.0), (600.0, 600.0)]
    assert evaluation.flagged(rows, gap=50.0) == [(60.0, 60.0), (120.0, 120.0), (300.0, 310.0),
                                                  (600.0, 600.0)]


def test_injected_copies_rotate_kinds_and_label_each():
    rows = [[f"2017-09-03T{h:02d}:{m:02d}:00Z", "100", "101", "99", "100.5", "1"]
            for h in range(24) for m in range(60)]
    copies = inject.copies(1)
    assert sorted(copies) == sorted(inject.SETS)
    changed, windows = inject.inject(rows, copies["large"])
    assert [w.kind for w in windows] == copies["large"]
    assert {inject.family_of(k) for k in copies["large"]} == {"jump", "vol_burst",
                                                              "flash_crash"}
    assert [[float(c) for c in r[1:5]] for r in changed[:12 * 60]] == [
        [float(c) for c in r[1:5]] for r in rows[:12 * 60]]  # nothing before the first


def test_consecutive_days_are_one_segment_with_each_days_injections():
    def day(d):
        return ["time_utc"], [[f"{d}T{h:02d}:{m:02d}:00Z", "100", "101", "99", "100.5", "1"]
                              for h in range(24) for m in range(60)]
    days = {d: day(d) for d in ("2017-09-04", "2017-12-17", "2017-09-03")}
    runs = inject.segments(days)
    assert runs == {"2017-09-03..04": ["2017-09-03", "2017-09-04"],
                    "2017-12-17": ["2017-12-17"]}
    raw, none = inject.segment(days, runs["2017-09-03..04"], None)
    assert none == [] and raw == days["2017-09-03"][1] + days["2017-09-04"][1]
    rows, windows = inject.segment(days, runs["2017-09-03..04"], "large")
    assert len(rows) == len(raw) and [r[0] for r in rows] == [r[0] for r in raw]
    assert [inject.day_of(w.start) for w in windows] == ["2017-09-03"] * 3 + ["2017-09-04"] * 3
    # each day keeps the rotation it has among all the days (the first two of three)
    assert [w.kind for w in windows] == inject.copies(0)["large"] + inject.copies(1)["large"]


def test_server_metric_series_is_seeded_and_labelled():
    rows, windows = server_metrics.generate(2, days=6)
    assert (rows, windows) == server_metrics.generate(2, days=6)
    assert len(rows) == 6 * 86400 / server_metrics.STEP
    assert {w.kind for w in windows} <= set(server_metrics.KINDS)
    assert all(w.start >= rows[0][0] + server_metrics.FIRST_HOUR * 3600 for w in windows)


def test_real_moves_are_labelled_from_the_minute_they_start_to_the_minute_they_get_there():
    closes = [100.0] * 120
    for i in range(20):  # a 3 % fall over minutes 30..50, then flat
        closes[30 + i] = 100.0 * (1 - 0.03 * (i + 1) / 20)
    closes[50:] = [97.0] * 70
    closes[100] = 98.5  # a 1.5 % wiggle: no move
    rows = [[f"2020-01-01T{m // 60:02d}:{m % 60:02d}:00Z", "0", "0", "0", f"{c:.4f}", "1"]
            for m, c in enumerate(closes)]
    found = moves.label(rows)
    assert len(found) == 1 and found[0].kind == "move_fall"
    t0 = inject._ts(rows[0][0])
    # from the last high before the fall (minute 29, not the flat half hour before it) to
    # the last minute that closes 2 % below a high of the 30 minutes before it (the flat
    # minutes at 97 after the fall still do while the fall's minute-36 close, 98.95, is in
    # their look-back: up to minute 66)
    assert found[0].start == t0 + 29 * 60
    assert found[0].end == t0 + 66 * 60
    assert moves.label(rows[:40]) == []  # the fall's first 1.5 % only
    # the rule first sees the move at minute 43 (a close of 97.9, 2.1 % below the high; minute
    # 42's 98.05 is 1.97 % below it): 14 minutes after the window opens
    assert moves.rule_delays(rows) == [(43 - 29) * 60.0]


def test_false_alarms_are_placed_by_the_price_range_around_them():
    # flat bars at 100 with one minute whose low wicks to 99 (1 %) at minute 30
    rows = [[f"2020-01-01T00:{m:02d}:00Z", "100", "100.1", "99" if m == 30 else "99.9",
             "100", "1"] for m in range(60)]
    t0 = inject._ts(rows[0][0])
    got = moves.ranges(rows, [t0 + 33 * 60, t0 + 50 * 60, t0 + 3600 * 5])
    assert got[0] == pytest.approx(100.1 / 99 - 1)  # the wick 3 minutes before it
    assert got[1] == pytest.approx(100.1 / 99.9 - 1)  # the wick is 20 minutes before it
    assert np.isnan(got[2])  # no bar within the span
    results = {("moves", "s"): {d: (None, {}, [t0 + 33 * 60] if d == "forest" else [])
                                for d in ("forest", "baseline", "hst")}}
    line = moves.anatomy(results, {"s": rows})
    assert "forest (Blink): 1 alerts, range ≥ 1 %: 1" in line
    assert "rolling z-score baseline: none" in line
