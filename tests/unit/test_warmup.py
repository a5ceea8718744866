"""Warm-up progress: what /readyz and the dashboard say Blink waits for, and the log's pace."""

from __future__ import annotations

import logging

from aiohttp import web

from blink.detect.latest import Latest
from blink.runtime import keys
from blink.runtime.warmup import Warmup
from blink.web.warming import status


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def app_with(warmup: Warmup) -> web.Application:
    app = web.Application()
    app[keys.LATEST], app[keys.WARMUP] = Latest(product_id="BTC-USD"), warmup
    return app


def test_the_stages_in_order_with_progress_and_eta():
    clock = Clock()
    warmup = Warmup(clock)
    app = app_with(warmup)
    latest = app[keys.LATEST]
    assert status(app)["waiting_for"] == "features"  # nothing begun: the windows are cold
    warmup.history_begin("coinbase_rest", 3.0)
    s = status(app)
    assert s["waiting_for"] == "history" and "Finding where" in s["message"]
    clock.now += 10
    warmup.history_progress(20_000, 0.25, 80_000)
    s = status(app)
    assert (s["waiting_for"], s["progress"], s["eta_seconds"]) == ("history", 0.25, 30.0)
    assert "20,000 of 80,000 trades (25 %), ~30 s left" in s["message"]
    assert s["history"]["total"] == 80_000 and s["history"]["done"] is False
    clock.now += 30
    warmup.history_done()
    warmup.training_begin()
    clock.now += 4
    s = status(app)
    assert s["waiting_for"] == "training" and s["training"]["running"] is True
    assert s["training"]["elapsed_seconds"] == 4.0 and s["history"]["seconds"] == 40.0
    warmup.training_rows(1000, 5000)  # too few rows: how fast they come decides the ETA
    clock.now += 10
    warmup.training_rows(2000, 5000)
    s = status(app)
    assert (s["waiting_for"], s["progress"], s["eta_seconds"]) == ("training_rows", 0.4, 30.0)
    latest.model = "blink_iforest@production v1"
    assert status(app)["waiting_for"] == "features"
    latest.features, latest.not_ready, latest.score_raw = {"ret_1s": 0.0}, None, -0.4
    s = status(app)
    assert s["waiting_for"] is None and s["progress"] == 1.0


def test_progress_is_logged_at_a_human_pace(caplog):
    clock = Clock()
    warmup = Warmup(clock)
    with caplog.at_level(logging.INFO, logger="blink.runtime.warmup"):
        warmup.history_begin("synthetic", 3.0)
        for i in range(1, 2001):  # 2,000 pages over 30 s
            clock.now += 0.015
            warmup.history_progress(i * 40, i / 2000)
        warmup.history_done()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 + 2  # begin, every 10 s (2 of them in 30 s), done
    assert lines[0].startswith("first start: loading 3 h") and "80,000 trades" in lines[-1]


def test_a_failed_history_says_why_and_stops_waiting():
    warmup = Warmup(Clock())
    warmup.history_begin("coinbase_rest", 3.0)
    warmup.history_done("REST did not answer within 60 s: starting without history")
    assert not warmup.loading and "did not answer" in warmup.as_dict()["history"]["note"]
