"""Calibrated tails: how rare a value is, against the training rows, as -log10 of a probability.

One table per scored quantity (each used feature, and the forest's anomaly -score_samples):
the values are folded to one side (|x| for two-sided features such as returns, x itself for
one-sided ones such as the volume surprise), then

- **body**: the empirical survival function S(a) = P(A > a), interpolated linearly between
  the quantiles at levels 0, 0.01, ..., 1 - TAIL (continuous: no ties at the top);
- **tail**: above u = the 1 - TAIL quantile, a generalised Pareto distribution fitted to the
  exceedances a - u by probability-weighted moments (Hosking & Wallis 1987), shape xi clipped
  to [0, XI_MAX]: never a finite end point (a value beyond everything seen still gets a finite,
  ever smaller probability) and never heavier than xi = XI_MAX; the scale sigma is floored
  at (u - median) / ln(0.5 / TAIL), the exponential tail that the body's own spread implies:
  a tail fitted on a few episodes (a slow feature, a point mass at 0) can come out far
  lighter than the body, and a value a little beyond the training range then scores a
  probability of 1e-30, outshouting every other term of the score;
  S(a) = TAIL * (1 + xi (a - u) / sigma)^(-1/xi) (xi = 0: TAIL * exp(-(a - u) / sigma)).

`surprise(X)` = -log10 S(a) per column (0 = as common as can be, 2 = the 1 % tail, 6 = one row
in a million). The model's score combines them (`Tails.score`): min(0, log10(k) - max_j S_j).

`gpd_quantiles` fits the same GPD at two quantiles instead of by moments: the alert budget
(`blink.model.budget`) uses it on its few event peaks, where one gross event would move the
moments.
"""

from __future__ import annotations

import math

import numpy as np

from blink.model import _tails

TAIL = 0.01  # share of the training rows above the GPD's base level u
XI_MAX = 0.5
LEVELS = np.round(np.linspace(0.0, 1.0 - TAIL, 100), 6)
MIN_P = 1e-300
MEDIAN = int(np.flatnonzero(LEVELS == 0.5)[0])  # the body's row at the median
# the GPD scale's floor: (u - median) / BODY_DECAY, the scale of an exponential tail whose
# median and 1 - TAIL quantile are the body's (ln(0.5 / TAIL) = ln 50 of them apart)
BODY_DECAY = float(np.log(0.5 / TAIL))


def sorted_quantiles(S: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """`np.quantile(S, levels, axis=0)` (its default linear method, the same bits) of the
    columns of S already sorted along axis 0 (`np.sort`: NaN last), without the partition
    np.quantile runs again on every call: `fit` sorts each column once for its 100 levels.
    A column holding a NaN gets NaN at every level, as np.quantile."""
    S = np.asarray(S, dtype=np.float64)
    n = len(S)
    q = np.asarray(levels, dtype=np.float64)
    virtual = (n - 1) * q  # numpy's own index for the linear method
    lo = np.floor(virtual)
    gamma = (virtual - lo).reshape((-1,) + (1,) * (S.ndim - 1))
    lo = lo.astype(np.intp)
    hi = lo + 1
    top = virtual >= n - 1
    lo[top], hi[top] = n - 1, n - 1
    a, b = S[lo], S[hi]
    d = b - a
    out = np.where(gamma >= 0.5, b - d * (1 - gamma), a + d * gamma)  # numpy's `_lerp`
    if S.ndim > 1:
        nan = np.isnan(S[-1])
        if nan.any():
            out[:, nan] = np.nan
    elif n and np.isnan(S[-1]):
        out[:] = np.nan
    return out


def gpd_pwm(y: np.ndarray) -> tuple[float, float]:
    """(xi, sigma) of a GPD from exceedances y >= 0: probability-weighted moments, xi clipped
    to [0, XI_MAX] and sigma then matched to the mean (E[Y] = sigma / (1 - xi))."""
    y = np.sort(np.asarray(y, dtype=np.float64))
    n = len(y)
    a0 = float(y.mean()) if n else 0.0
    if n < 3 or a0 <= 0:
        return 0.0, max(a0, 1e-12)
    a1 = float(np.mean(y * (n - 1 - np.arange(n)) / (n - 1)))
    d = a0 - 2 * a1
    xi = 2.0 - a0 / d if d > 0 else XI_MAX
    xi = float(np.clip(xi, 0.0, XI_MAX))
    return xi, max(a0 * (1 - xi), 1e-12)


# the two quantile levels `gpd_quantiles` matches: robust while fewer than 1 - Q_HIGH of the
# exceedances are gross (one giant event among 40 cannot move them)
Q_LOW, Q_HIGH = 0.5, 0.8


def gpd_quantiles(y: np.ndarray) -> tuple[float, float]:
    """(xi, sigma) of a GPD from exceedances y >= 0 matched at two quantiles (Q_LOW, Q_HIGH),
    xi in [0, XI_MAX]: Q(p) = sigma / xi ((1 - p)^-xi - 1), so Q(Q_HIGH) / Q(Q_LOW) fixes xi
    (ln 5 / ln 2 at xi = 0, rising with xi) and Q(Q_LOW) then sigma. Moments (`gpd_pwm`) are
    pulled by a single gross value; these quantiles are not."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < 3:
        return gpd_pwm(y)
    lo, hi = np.quantile(y, (Q_LOW, Q_HIGH))
    if not lo > 0:
        return gpd_pwm(y)

    def q(p: float, xi: float) -> float:  # the GPD quantile at sigma = 1
        return -math.log1p(-p) if xi < 1e-9 else ((1.0 - p) ** -xi - 1.0) / xi

    ratio, a, b = hi / lo, 0.0, XI_MAX
    if ratio <= q(Q_HIGH, a) / q(Q_LOW, a):
        xi = a
    elif ratio >= q(Q_HIGH, b) / q(Q_LOW, b):
        xi = b
    else:
        for _ in range(60):  # bisection: the ratio rises with xi
            xi = 0.5 * (a + b)
            a, b = (xi, b) if q(Q_HIGH, xi) / q(Q_LOW, xi) < ratio else (a, xi)
        xi = 0.5 * (a + b)
    return float(xi), float(max(lo / q(Q_LOW, xi), 1e-12))


def episode_peaks(x: np.ndarray, u: float, run: int) -> np.ndarray:
    """The peak of every episode of x above u: exceeding rows folded while fewer than
    `run` rows apart (rows in time order; run 1: every exceeding row is its own)."""
    idx = np.flatnonzero(x > u)
    if not len(idx):
        return np.empty(0)
    cut = np.flatnonzero(np.diff(idx) >= max(int(run), 1))
    return np.maximum.reduceat(x[idx], np.concatenate(([0], cut + 1)))


def fit(A: np.ndarray, two_sided, runs=None) -> dict:
    """Tables for the columns of A (rows = training values in time order), JSON-ready.

    `runs` (rows, per column; default 1) declusters the tail: the GPD is fitted to the peak
    of each EPISODE above u (exceedances closer than `run` rows folded), not to every row of
    it. A feature over an h-step window moves slowly: its rows above u come in runs of about
    h, and a fit on those rows rests on a handful of episodes weighted by their length.
    """
    A = np.asarray(A, dtype=np.float64)
    two = np.asarray(two_sided, dtype=bool)
    F = np.where(two, np.abs(A), A)
    runs = np.ones(F.shape[1], int) if runs is None else np.asarray(runs, int)
    body = sorted_quantiles(np.sort(F, axis=0), LEVELS)  # np.quantile: (levels, columns)
    xi, sigma, episodes = [], [], []
    for j in range(F.shape[1]):
        u = body[-1, j]
        peaks = episode_peaks(F[:, j], u, runs[j])
        x, s = gpd_pwm(peaks - u)
        s = max(s, (u - body[MEDIAN, j]) / BODY_DECAY)  # no lighter than the body says
        xi.append(x)
        sigma.append(s)
        episodes.append(int(len(peaks)))
    return {"two_sided": two.tolist(), "levels": LEVELS.tolist(), "body": body.T.tolist(),
            "xi": xi, "sigma": sigma, "tail": TAIL, "runs": runs.tolist(),
            "episodes": episodes}


class Tails:
    """`fit`'s tables, validated and copied into the compiled scorer (`blink/model/_tails.c`,
    the formulas above in one pass per row; a malformed table raises ValueError)."""

    def __init__(self, tables: dict) -> None:
        self.tables = tables
        try:
            arrays = [np.ascontiguousarray(tables[name], dtype) for name, dtype in _TABLES]
            self._kernel = _tails.Tails(*arrays, float(tables["tail"]))
        except KeyError as e:
            raise ValueError(f"malformed tail table: no {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"malformed tail table: {e}") from None

    def __reduce__(self):  # the kernel does not pickle: the receiver rebuilds it
        return Tails, (self.tables,)

    def __len__(self) -> int:
        return len(self.tables["body"])

    @property
    def u(self) -> np.ndarray:
        """The tails' base levels: each body's last quantile."""
        return np.array([b[-1] for b in self.tables["body"]], dtype=np.float64)

    def surprise(self, A: np.ndarray, forest: np.ndarray | None = None) -> np.ndarray:
        """-log10 P(value at least this extreme) per row and column (n x k, >= 0; NaN for a
        NaN value). With `forest` (score_samples of the n rows), A holds the first k - 1
        columns and the k-th is -forest."""
        A, forest = _inputs(A, forest)
        out = np.empty((len(A), len(self)))
        self._kernel.surprise(A, out, forest)
        return out

    def score(self, A: np.ndarray, forest: np.ndarray | None = None) -> np.ndarray:
        """score_raw of every row, in the same pass as its surprises: the log10 of the
        Bonferroni-adjusted smallest tail probability, min(0, log10(k) - max_j S_j) (<= 0,
        higher = more normal, 0 = unremarkable; NaN when a surprise is NaN)."""
        A, forest = _inputs(A, forest)
        out = np.empty(len(A))
        self._kernel.score(A, out, forest)
        return out


_TABLES = (("body", np.float64), ("levels", np.float64), ("xi", np.float64),
           ("sigma", np.float64), ("two_sided", np.bool_))


def _inputs(A, forest) -> tuple[np.ndarray, np.ndarray | None]:
    A = np.atleast_2d(np.ascontiguousarray(A, dtype=np.float64))
    if forest is not None:
        forest = np.ascontiguousarray(forest, dtype=np.float64)
    return A, forest

