"""What a backtest writes: one scored row per input row, its cells formatted once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from blink.formats import files

COLUMNS = ("timestamp", "value", "score_raw", "anomaly", "anomaly_score", "model_version")


@dataclass(frozen=True, slots=True)
class Scored:
    """One output row (what `run` keeps for the evaluation)."""
    timestamp: str
    value: str
    ts: float  # event time of the row's last trade (a row without: a trade next to it)
    score_raw: float | None
    anomaly: bool
    anomaly_score: float
    model_version: str
    threshold: float | None

    def cells(self) -> list[str]:
        raw = math.nan if self.score_raw is None else self.score_raw
        return [self.timestamp, self.value, _raw_cell(raw), _flag_cell(self.anomaly),
                repr(self.anomaly_score), self.model_version]


def _raw_cell(raw: float) -> str:
    """score_raw as written: empty before the first model (NaN), else its repr."""
    return "" if raw != raw else repr(raw)


def _flag_cell(anomaly: bool) -> str:
    return "1" if anomaly else "0"


@dataclass
class ScoredChunk:
    """The output rows of one input chunk, as columns (one entry per row)."""
    cols: files.Columns
    raw: np.ndarray  # NaN before the first model
    anomaly: np.ndarray
    anomaly_score: np.ndarray
    versions: list[str]
    thresholds: list[float | None]

    def __len__(self) -> int:
        return len(self.cols)

    def cells(self) -> Iterable[tuple[str, ...]]:
        """The CSV rows, formatted as `Scored.cells` formats one (column by column)."""
        return zip(self.cols.timestamp, self.cols.value, map(_raw_cell, self.raw.tolist()),
                   map(_flag_cell, self.anomaly.tolist()),
                   map(repr, self.anomaly_score.tolist()), self.versions, strict=True)

    def rows(self) -> list[Scored]:
        # a row without trades (a missing bar or sample): the time of a trade next to it
        ts = (self.cols.ts[np.maximum(self.cols.ends - 1, 0)].tolist() if len(self.cols.ts)
              else [math.nan] * len(self))
        return [Scored(t, v, when, None if r != r else r, a, s, ver, thr)
                for t, v, when, r, a, s, ver, thr in zip(
                    self.cols.timestamp, self.cols.value, ts, self.raw.tolist(),
                    self.anomaly.tolist(), self.anomaly_score.tolist(), self.versions,
                    self.thresholds, strict=True)]
