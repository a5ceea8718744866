"""The retrain's tables computed from one sort (`tails.sorted_quantiles`, `tails.fit`) and the
budget's event peaks in one pass (`budget.peaks`) give the same bits as the straightforward
code they replaced (kept here as the reference), on random inputs: ties, NaN, infinities,
uneven and repeated times, gaps that fall exactly on a time step."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from blink.model import budget, tails

# magnitudes and roundings that make ties and exact level hits likely
VALUES = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 1.0, 2.5, -3.0, 1e-300, 7.0])


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def reference_fit(A, two_sided, runs=None) -> dict:
    """`tails.fit` as written before it shared one sort: np.quantile per call."""
    A = np.asarray(A, dtype=np.float64)
    two = np.asarray(two_sided, dtype=bool)
    F = np.where(two, np.abs(A), A)
    runs = np.ones(F.shape[1], int) if runs is None else np.asarray(runs, int)
    body = np.quantile(F, tails.LEVELS, axis=0)
    xi, sigma, episodes = [], [], []
    for j in range(F.shape[1]):
        u = body[-1, j]
        peaks = tails.episode_peaks(F[:, j], u, runs[j])
        x, s = tails.gpd_pwm(peaks - u)
        xi.append(x)
        sigma.append(max(s, (u - body[tails.MEDIAN, j]) / tails.BODY_DECAY))
        episodes.append(int(len(peaks)))
    return {"two_sided": two.tolist(), "levels": tails.LEVELS.tolist(), "body": body.T.tolist(),
            "xi": xi, "sigma": sigma, "tail": tails.TAIL, "runs": runs.tolist(),
            "episodes": episodes}


@st.composite
def columns(draw):
    n = draw(st.integers(1, 120))
    k = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, k)) * 10.0 ** draw(st.integers(-6, 6))
    if draw(st.booleans()):
        F = np.round(F, draw(st.integers(0, 2)))  # ties
    for value in draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), max_size=2)):
        F[rng.integers(n), rng.integers(k)] = value
    return F


@settings(max_examples=300, deadline=None)
@given(columns())
def test_sorted_quantiles_are_numpys_quantiles(F):
    with np.errstate(invalid="ignore"):  # inf - inf, as np.quantile itself meets it
        assert same(tails.sorted_quantiles(np.sort(F, axis=0), tails.LEVELS),
                    np.quantile(F, tails.LEVELS, axis=0))
        assert same(tails.sorted_quantiles(np.sort(F[:, 0]), budget.LEVELS),
                    np.quantile(F[:, 0], budget.LEVELS))


@settings(max_examples=150, deadline=None)
@given(columns(), st.data())
def test_tail_tables_are_the_reference_tables(F, data):
    F = np.where(np.isfinite(F), F, 0.0)  # training rows are finite
    two = data.draw(st.lists(st.booleans(), min_size=F.shape[1], max_size=F.shape[1]))
    runs = data.draw(st.lists(st.integers(1, 40), min_size=F.shape[1], max_size=F.shape[1]))
    assert tails.fit(F, two, runs) == reference_fit(F, two, runs)
    assert tails.fit(F, two) == reference_fit(F, two)


@st.composite
def series(draw):
    """Times ascending (regular, irregular, with repeats) and values with ties."""
    n = draw(st.integers(1, 150))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    step = draw(st.sampled_from([0.1, 1.0, 15.0, 60.0]))
    if draw(st.booleans()):
        t = draw(st.sampled_from([0.0, 1.7e9])) + step * np.arange(n)
    else:
        t = np.sort(np.round(np.cumsum(rng.exponential(step, n)), draw(st.integers(0, 3))))
    s = rng.standard_normal(n)
    if draw(st.booleans()):
        s = np.round(s, 1)
    gap = draw(st.sampled_from([0.0, 0.3, 15.0, 120.0, step, 3 * step, step * (1 + 1e-12)]))
    return t, s, gap


@settings(max_examples=300, deadline=None)
@given(series(), st.lists(VALUES, max_size=6), st.booleans())
def test_budget_peaks_are_the_reference(data, extra, nan):
    t, s, gap = data
    if nan:
        s[len(s) // 2] = np.nan
    for level in (*extra[:2], 0.0, float(np.sort(s)[len(s) // 2])):
        want = np.array([s[a:b + 1].max() for a, b in budget.events(t, s > level, gap)])
        assert same(budget.peaks(t, s, level, gap), want)
