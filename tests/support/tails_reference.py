"""The calibrated tails' formulas in numpy, column by column (what `tails.Tails` ran before
its scorer moved to C, `blink/model/_tails.c`): the oracle the compiled scorer is tested
against, and the baseline of `python -m bench scoring` and `latency`."""

from __future__ import annotations

import numpy as np

from blink.model.tails import MIN_P, combined


def surprise(tables: dict, A: np.ndarray) -> np.ndarray:
    """-log10 P(value at least this extreme) per row and column (n x k)."""
    two = np.asarray(tables["two_sided"], dtype=bool)
    survival = 1.0 - np.asarray(tables["levels"], dtype=np.float64)
    body = [np.asarray(b, dtype=np.float64) for b in tables["body"]]
    xis = np.asarray(tables["xi"], dtype=np.float64)
    sigmas = np.asarray(tables["sigma"], dtype=np.float64)
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    F = np.where(two, np.abs(A), A)
    out = np.empty_like(F)
    with np.errstate(all="ignore"):
        for j, q in enumerate(body):
            x, u = F[:, j], q[-1]
            y = np.maximum(x - u, 0.0)
            xi, sg = xis[j], sigmas[j]
            if xi > 0:
                log_s = -np.log10(1.0 + xi * y / sg) / xi
            else:
                log_s = -y / sg / np.log(10.0)
            tail = np.log10(float(tables["tail"])) + log_s
            b = np.log10(np.maximum(np.interp(x, q, survival, left=1.0), MIN_P))
            out[:, j] = -np.where(x > u, tail, b)
    out[np.isnan(F)] = np.nan
    return out


def score(tables: dict, A: np.ndarray) -> np.ndarray:
    """score_raw of every row: `combined` of the surprises."""
    return combined(surprise(tables, A))
