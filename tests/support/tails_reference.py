"""The calibrated tails' formulas in numpy, column by column: `tails.Tails` as it was before its
scorer moved to C (`blink/model/_tails.c`). The oracle the compiled scorer is tested against
(`tests/unit/test_tails_compiled.py`), and the baseline of `python -m bench scoring` and
`python -m bench latency` (`NumpyServed`: a served model scoring its tails this way)."""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np

from blink.model.served import ServedModel
from blink.model.tails import MIN_P


class Tails:
    """`fit`'s tables, ready to score in numpy (vectorised over rows)."""

    def __init__(self, tables: dict) -> None:
        self.two = np.asarray(tables["two_sided"], dtype=bool)
        self.survival = 1.0 - np.asarray(tables["levels"], dtype=np.float64)
        self.body = [np.asarray(b, dtype=np.float64) for b in tables["body"]]
        self.xi = np.asarray(tables["xi"], dtype=np.float64)
        self.sigma = np.asarray(tables["sigma"], dtype=np.float64)
        self.tail = float(tables["tail"])
        self.u = np.array([b[-1] for b in self.body])

    def surprise(self, A: np.ndarray) -> np.ndarray:
        """-log10 P(value at least this extreme) per row and column (n x k)."""
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        F = np.where(self.two, np.abs(A), A)
        out = np.empty_like(F)
        for j, q in enumerate(self.body):
            x = F[:, j]
            y = np.maximum(x - self.u[j], 0.0)
            xi, sg = self.xi[j], self.sigma[j]
            if xi > 0:
                log_s = -np.log10(1.0 + xi * y / sg) / xi
            else:
                log_s = -y / sg / np.log(10.0)
            tail = np.log10(self.tail) + log_s
            body = np.log10(np.maximum(np.interp(x, q, self.survival, left=1.0), MIN_P))
            out[:, j] = -np.where(x > self.u[j], tail, body)
        out[np.isnan(F)] = np.nan
        return out


def combined(S: np.ndarray) -> np.ndarray:
    """score_raw from the columns' surprises: log10 of the Bonferroni-adjusted smallest tail
    probability, min(0, log10(k) - max_j S_j)."""
    S = np.atleast_2d(S)
    return np.minimum(0.0, np.log10(S.shape[1]) - S.max(axis=1))


def surprise(tables: dict, A: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # inf - inf and the like, in the branch np.where drops
        return Tails(tables).surprise(A)


def score(tables: dict, A: np.ndarray) -> np.ndarray:
    """score_raw of every row: `combined` of the surprises."""
    with np.errstate(invalid="ignore"):
        return combined(surprise(tables, A))


class NumpyServed(ServedModel):
    """`served` scoring its tails in numpy, as `ServedModel.score` did before the compiled
    scorer (the forest still walked in C): the benchmarks' baseline."""

    @classmethod
    def of(cls, served: ServedModel) -> NumpyServed:
        return cls(**{f.name: getattr(served, f.name) for f in dataclasses.fields(served)})

    @cached_property
    def _numpy(self) -> tuple[Tails, np.ndarray]:
        return Tails(self.train_stats["tails"]), np.asarray(self.train_stats["columns"], np.int64)

    def score(self, X: np.ndarray) -> np.ndarray:
        t, cols = self._numpy
        used = np.atleast_2d(np.asarray(X, dtype=np.float64))[:, cols]
        A = np.column_stack([used, -self.forest.score_samples(used)])
        return combined(t.surprise(A))
