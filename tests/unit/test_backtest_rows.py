"""A backtest's output row for an input row of several trades (a bar's four points): its most
anomalous trade, flagged when any trade was, with the version of the model that judged it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from blink.backtest.engine import _Chunk


class Model(SimpleNamespace):
    def anomaly_scores(self, raw):
        return -np.asarray(raw) / 10


def chunk(ends: list[int]) -> _Chunk:
    n = ends[-1]
    return _Chunk(SimpleNamespace(ts=np.arange(float(n)), ends=np.array(ends)), None)


def test_a_row_is_its_most_anomalous_trade_and_flagged_if_any_trade_was():
    c = chunk([1, 5, 9])
    one, two = Model(version="1", threshold=-4.0), Model(version="2", threshold=-5.0)
    c.judged(0, np.array([-1.0, -2.0, -5.0, -2.0, -1.5]),
             np.array([False, False, True, False, False]), one)
    c.judged(5, np.array([-1.0, -1.0, -6.0, -1.0]), np.array([False, False, True, False]), two)
    out = c.scored()
    assert out.raw.tolist() == [-1.0, -5.0, -6.0]  # the bar's low, not its close (-1.5, -1.0)
    assert out.anomaly.tolist() == [False, True, True]
    assert out.anomaly_score.tolist() == [0.1, 0.5, 0.6]
    assert (out.versions, out.thresholds) == (["1", "1", "2"], [-4.0, -4.0, -5.0])


def test_a_row_across_a_retrain_and_rows_before_the_first_model():
    c = chunk([2, 5])
    c.judged(0, np.array([math.nan, math.nan]), np.array([False, False]), None)
    c.judged(2, np.array([-1.0, -3.0]), np.array([False, True]), Model(version="1",
                                                                        threshold=-2.0))
    c.judged(4, np.array([-2.5]), np.array([True]), Model(version="2", threshold=-2.0))
    out = c.scored()
    assert math.isnan(out.raw[0]) and not out.anomaly[0] and out.anomaly_score[0] == 0.0
    assert (out.versions[0], out.thresholds[0]) == ("", None)
    # the row's lowest score came from the model before the retrain: its version, its scale
    assert (out.raw[1], out.versions[1], out.anomaly[1]) == (-3.0, "1", True)
    assert c.left == 0
