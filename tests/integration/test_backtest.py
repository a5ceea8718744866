"""The backtest: the live Detector replayed row by row, retrained on event time, scores out."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math

import asyncpg
import numpy as np
import pytest

from blink.backtest import driver, engine, output, sampling
from blink.cli import main as cli
from blink.formats import files
from tests.support.backtests import FAST


def read_scores(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_cli(tmp_path, *argv: str) -> int:
    empty = tmp_path / "empty.toml"
    empty.touch()
    return cli.main([argv[0], "--config", str(empty), "--data-dir", str(tmp_path / "data"),
                     "--log-level", "WARNING", *argv[1:]])


def test_one_row_per_input_row_with_warm_up_and_scores(tick_file, tmp_path, monkeypatch):
    for name, value in FAST.items():
        monkeypatch.setenv(f"BLINK_{name.upper()}", str(value))
    out = tmp_path / "scores.csv"
    assert run_cli(tmp_path, "backtest", str(tick_file), "--out", str(out),
                   "--no-progress") == 0
    scores = read_scores(out)
    source = read_scores(tick_file)
    assert list(scores[0]) == list(output.COLUMNS)
    assert [s["timestamp"] for s in scores] == [r["time"] for r in source]
    assert [s["value"] for s in scores] == [r["price"] for r in source]
    warm = list(itertools.takewhile(lambda s: s["score_raw"] == "", scores))
    assert 300 <= len(warm) < len(scores)  # train_min_rows warm rows before the first model
    assert all(s["anomaly_score"] == "0.0" and s["anomaly"] == "0" and not s["model_version"]
               for s in warm)
    scored = scores[len(warm):]
    assert all(s["score_raw"] for s in scored)
    assert all(0.0 <= float(s["anomaly_score"]) <= 1.0 for s in scored)
    assert {s["anomaly"] for s in scored} == {"0", "1"}
    for _, group in itertools.groupby(scored, key=lambda s: s["model_version"]):
        pairs = sorted((float(s["score_raw"]), float(s["anomaly_score"])) for s in group)
        assert all(b[1] <= a[1] for a, b in itertools.pairwise(pairs))  # lower raw: higher
    assert len({s["model_version"] for s in scored}) >= 2  # retrained and served again


def test_retrains_follow_event_time_cadence(tick_file, make_settings):
    settings = make_settings(**FAST)
    rows = list(files.read(tick_file))
    out, bt, summary = driver.run(rows, settings)
    assert summary.rows == len(out) == len(rows)
    ends = [f.end for f in bt.fits]
    assert len(ends) == math.floor((rows[-1].trades[-1].ts - ends[0]) / 240.0) + 1
    gaps = np.diff(ends)
    assert (gaps >= 240.0).all() and (gaps < 245.0).all()
    assert [f.version for f in bt.fits] == [str(i) for i in range(1, len(ends) + 1)]
    assert bt.fits[0].rows == FAST["train_min_rows"]  # first try: as soon as rows allow
    served = next(f for f in bt.fits if f.promoted)  # a fit failing its checks is not served
    i = next(i for i, s in enumerate(out) if s.score_raw is not None)
    assert out[i - 1].ts <= served.end <= out[i].ts  # serves once its data is complete
    assert out[i].model_version == served.version
    assert {s.model_version for s in out if s.score_raw is not None} == {
        f.version for f in bt.fits if f.promoted}


def test_series_with_zeros_and_negative_values(tmp_path, make_settings):
    path = tmp_path / "metric.csv"
    t = np.arange(3000)
    noise = np.random.default_rng(4).normal(0, 1.5, len(t))  # (a pure sine: volratio_60
    value = np.round(10 * np.sin(t / 40) + noise, 0)  # constant) crosses zero, many zeros
    value[2500] = 80.0  # one spike
    lines = ["when,cpu"] + [f"{1_700_000_000 + 300 * i},{v:g}" for i, v in zip(t, value,
                                                                            strict=True)]
    path.write_text("\n".join(lines) + "\n")
    settings = make_settings(train_min_rows=300, n_estimators=20, max_samples=64)
    planned = sampling.plan(settings, "series", files.read(path))
    scale = sampling.SCALE_PER_INTERVAL["series"] * 300.0  # windows in 5-minute intervals
    assert planned.feature_scale == scale
    assert planned.retrain_seconds == sampling.RETRAIN_ROWS * 300.0
    assert planned.min_history_seconds == settings.min_history_seconds * scale
    # two anomalous samples in a row fold into one event (the live 120 s is under a sample)
    assert planned.event_gap_seconds == sampling.GAP_ROWS * 300.0 > settings.event_gap_seconds
    out, bt, _ = driver.run(files.read(path), planned)
    assert [s.timestamp for s in out] == [line.split(",")[0] for line in lines[1:]]
    scored = [s for s in out if s.score_raw is not None]
    assert len(bt.fits) >= 2 and len(scored) > 1000
    assert all(math.isfinite(s.score_raw) and 0 <= s.anomaly_score <= 1 for s in scored)
    spike = out[2500]
    same = [s.score_raw for s in scored if s.model_version == spike.model_version]
    # among the two most unusual of the 60 rows its model scored (returns of a series that
    # crosses zero are bounded, `docs/features.md`; since the event gap became two samples
    # one other row of that hour scores 0.016 lower, the spike itself 0.013 lower than before);
    # anomaly_score (against the out-of-fold calibration scores) well above the typical row's
    assert len(same) >= 50 and spike.score_raw <= np.sort(same)[1]
    assert spike.anomaly_score > 0.85 > np.median([s.anomaly_score for s in scored])


def test_flags_override_the_rule(tmp_path, make_settings):
    path = tmp_path / "s.csv"
    path.write_text("".join(f"{60 * i},{i % 7}\n" for i in range(100)))
    s = sampling.plan(make_settings(), "series", files.read(path), scale=2.0,
                      retrain_seconds=99.0, train_hours=3.0)
    assert (s.feature_scale, s.retrain_seconds, s.train_hours) == (2.0, 99.0, 3.0)
    ticks_plan = sampling.plan(make_settings(), "ticks", iter(()))
    assert ticks_plan.feature_scale == 1.0 and ticks_plan.retrain_seconds == 3600.0
    assert ticks_plan.event_gap_seconds == make_settings().event_gap_seconds


@pytest.mark.postgres
async def test_store_writes_only_the_backtest_schema(tick_file, tmp_path, settings):
    from blink.store import db

    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        await db.migrate(conn, "public")  # a live tape with one trade of the same product
        await conn.execute("INSERT INTO public.trades (product_id, trade_id, time, price, size,"
                           " side) VALUES ('BTC-USD', 1, now(), 1, 1, 'buy')")
    finally:
        await conn.close()
    bt = engine.Backtest(dataclasses.replace(settings, **FAST))
    scored = []
    summary = await driver.drive(driver.chunks(tick_file), bt,
                                   lambda done: scored.extend(done.rows()), store=True)
    assert len(scored) == summary.rows and bt.events
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM backtest.trades") == summary.trades
        assert await conn.fetchval("SELECT count(*) FROM backtest.features") > 100
        assert await conn.fetchval("SELECT count(*) FROM backtest.anomalies") == len(bt.events)
        live = await conn.fetch("SELECT trade_id, price FROM public.trades")
        assert [(r["trade_id"], r["price"]) for r in live] == [(1, 1)]
        for table in ("features", "anomalies", "feed_gaps"):
            assert await conn.fetchval(f"SELECT count(*) FROM public.{table}") == 0  # noqa: S608
    finally:
        await conn.close()


@pytest.mark.parametrize("content, line", [
    ("when,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,abc\n", 3),
    ("time_utc,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n"
     "2024-01-01T00:01:00Z,1,2,0.5\n", 3),
    ("what,is,this\n1,2,3\n", 1),
])
def test_bad_files_exit_2_naming_file_and_line(tmp_path, capsys, content, line):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    out = tmp_path / "scores.csv"
    assert run_cli(tmp_path, "backtest", str(bad), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:{line}:" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
