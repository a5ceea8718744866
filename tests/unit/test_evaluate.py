"""Evaluation: event-level metrics with known answers, label formats, the report, the baseline."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from blink.backtest import evaluation as evaluate
from blink.backtest.evaluation import Window
from blink.cli import main as cli
from blink.config import ConfigError, Settings
from blink.detect import baseline
from blink.features import FEATURE_NAMES
from blink.feeds import synthetic
from blink.formats import ticks
from blink.model import budget, trainer

DAY = 86_400.0


def test_metrics_on_hand_made_events_and_windows():
    windows = [Window(100, 200, "jump"), Window(1000, 1100, "jump"), Window(5000, 5060, "crash"),
               Window(-500, -400, "jump")]  # the last one is over before scoring starts
    events = [(150, 160),  # inside window 1: delay 50
              (90, 120),  # also window 1 (started before it: delay 0 for the earliest)
              (1090, 1300),  # overlaps window 2 by its start: delay 90
              (3000, 3001), (7000, 7100)]  # two false alarms
    c = evaluate.score(events, windows, (0.0, DAY / 2))
    assert (c.windows, c.detected, c.skipped) == (3, 2, 1)
    assert (c.events, c.true_events, c.false_alarms) == (5, 3, 2)
    assert c.precision == pytest.approx(3 / 5) and c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(2 * 0.6 * (2 / 3) / (0.6 + 2 / 3))
    assert sorted(c.delays) == [0.0, 90.0]
    assert c.false_per_day == pytest.approx(4.0)  # 2 in half a day
    assert c.by_kind == {"jump": [2, 2, [0.0, 90.0]], "crash": [1, 0, []]}
    assert c.carried == 0  # each detected window had an event begin inside it


def test_a_window_detected_only_by_an_event_already_open_is_carried():
    long_event = [(0, 300)]  # one alert at 0, held open past two later windows
    c = evaluate.score(long_event, [Window(100, 150), Window(200, 400)], (0, DAY))
    assert (c.detected, c.carried, c.events, c.false_alarms) == (2, 2, 1, 0)
    fresh = evaluate.score(long_event + [(250, 260)], [Window(100, 150), Window(200, 400)],
                           (0, DAY))
    assert (fresh.detected, fresh.carried) == (2, 1)  # a new alert inside the second window
    assert (c + fresh).carried == 3 and c.summary()["carried"] == 2


def test_counts_add_up_across_segments_and_edge_cases():
    a = evaluate.score([(10, 20)], [Window(0, 15, "x")], (0, DAY))
    b = evaluate.score([(10, 20)], [Window(30, 40, "x")], (0, DAY))
    total = a + b
    assert (total.windows, total.detected, total.events, total.false_alarms) == (2, 1, 2, 1)
    assert total.days == pytest.approx(2.0) and total.by_kind == {"x": [2, 1, [10]]}
    assert evaluate.score([(20, 30)], [Window(0, 20)], (0, DAY)).detected == 1  # touching
    empty = evaluate.score([], [Window(0, 10)], (0, DAY))
    assert math.isnan(empty.precision) and empty.recall == 0 and math.isnan(empty.f1)
    assert evaluate.score([], [Window(0, 10)], None).skipped == 1


def test_labels_json_and_csv_agree(tmp_path):
    as_json = tmp_path / "l.json"
    synthetic.write_labels(as_json, [
        {"kind": "price_jump", "start": "2026-01-01T00:10:00.000000Z",
         "end": "2026-01-01T00:11:00.000000Z"},
        {"kind": "flash_crash", "start": "2026-01-01T01:00:00Z", "end": "2026-01-01T01:05:00Z"}])
    with_header = tmp_path / "h.csv"
    with_header.write_text("start,end,kind\n2026-01-01T00:10:00Z,2026-01-01 00:11:00,price_jump\n"
                           "1767229200,1767229500,flash_crash\n")
    bare = tmp_path / "b.csv"
    bare.write_text("2026-01-01T00:10:00Z,2026-01-01T00:11:00Z\n")
    expected = [Window(1767226200.0, 1767226260.0, "price_jump"),
                Window(1767229200.0, 1767229500.0, "flash_crash")]
    assert evaluate.load_labels(as_json) == expected
    assert evaluate.load_labels(with_header) == expected
    assert evaluate.load_labels(bare) == [Window(1767226200.0, 1767226260.0, "anomaly")]


@pytest.mark.parametrize("content, where", [
    ("start,end\n2026-01-01T00:10:00Z,soon\n", ":2:"),
    ("2026-01-01T00:10:00Z,2026-01-01T00:09:00Z\n", ":1: window ends before"),
    ('[{"start": "2026-01-01T00:10:00Z"}]', "not a JSON list"),
])
def test_bad_labels_are_config_errors(tmp_path, content, where):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"{path}{where}" if where[0] == ":" else where):
        evaluate.load_labels(path)


def test_evaluate_command_writes_the_report(tmp_path, monkeypatch, capsys):
    trades, labels = synthetic.generate(3, datetime(2026, 1, 1, tzinfo=UTC), 1500)
    data, lab = tmp_path / "ticks.csv", tmp_path / "labels.json"
    ticks.write_ticks(data, trades)
    synthetic.write_labels(lab, labels)
    for name, value in {"TRAIN_MIN_ROWS": 300, "RETRAIN_SECONDS": 300, "N_ESTIMATORS": 20,
                        "MAX_SAMPLES": 64, "MIN_HISTORY_SECONDS": 60}.items():
        monkeypatch.setenv(f"BLINK_{name}", str(value))
    empty = tmp_path / "empty.toml"
    empty.touch()
    report = tmp_path / "report"
    assert cli.main(["evaluate", "--config", str(empty), "--data-dir", str(tmp_path / "d"),
                     "--log-level", "WARNING", str(data), "--labels", str(lab),
                     "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "| windows | detected | of them carried | recall |" in printed
    md = (report / "report.md").read_text()
    assert "## Event-level results" in md and "![" in md and "| data up to |" in md
    assert (report / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report / "report.png").stat().st_size > 10_000


def test_baseline_scores_like_a_forest():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, len(FEATURE_NAMES)))
    z = baseline.ZScore()
    batch = z.score_samples(X)
    assert np.allclose(batch, [z.score_one(list(x)) for x in X])
    assert (batch <= 0).all()
    returns = [FEATURE_NAMES.index(n) for n in baseline.RETURNS]
    assert np.array_equal(batch, -np.abs(X[:, returns]).max(axis=1))  # max |z_h| of returns
    big = X[0].copy()
    big[FEATURE_NAMES.index("z_1")] = 1e3
    assert z.score_one(big) < batch.min()  # a huge one-step return is the most anomalous
    flow = X[0].copy()
    flow[FEATURE_NAMES.index("volume_surprise_60")] = 1e3
    assert z.score_one(flow) == batch[0]  # volume and flow are not the baseline's business

    s = Settings(train_min_rows=100, feature_scale=60.0)
    result = baseline.fit(X, s)
    # the same alert budget as the model: its level on the calibration rows' scores
    w = trainer.prepare(X, s)
    want, _ = budget.threshold(w.ts, -z.score_samples(w.X), s.event_gap_seconds,
                               s.alerts_per_day)
    assert result.threshold == -want
    served = baseline.serve(result, "1", 0.0)
    assert served.anomaly_score(z.score_one(big)) == 1.0 and served.is_anomaly(z.score_one(big))
    with pytest.raises(Exception, match="need 100"):
        baseline.fit(X[:50], s)
    assert json.dumps(result.train_stats)  # JSON-ready like the forest's
