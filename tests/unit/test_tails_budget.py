"""Calibrated tails (GPD by PWM, declustered on episode peaks) and the alert budget (event
POT, its GPD matched at two quantiles), on data whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blink.model import budget, tails


def gpd(rng, xi: float, sigma: float, n: int) -> np.ndarray:
    u = rng.random(n)
    return sigma / xi * (u ** -xi - 1) if xi else -sigma * np.log(u)


@pytest.mark.parametrize("fit", [tails.gpd_pwm, tails.gpd_quantiles])
@pytest.mark.parametrize("xi", [0.0, 0.2, 0.4])
def test_both_fits_recover_a_gpd(fit, xi):
    y = gpd(np.random.default_rng(1), xi, 2.0, 20_000)
    got_xi, got_sigma = fit(y)
    assert got_xi == pytest.approx(xi, abs=0.05)
    assert got_sigma == pytest.approx(2.0, rel=0.08)
    assert fit(np.array([1.0])) == (0.0, 1.0)  # too few: exponential on the mean


def test_pwm_clips_a_heavier_tail():
    assert tails.gpd_pwm(-gpd(np.random.default_rng(2), 0.9, 1.0, 5000) * -1)[0] <= tails.XI_MAX


def test_surprise_is_the_empirical_body_and_a_continuous_tail():
    rng = np.random.default_rng(3)
    A = np.column_stack([rng.standard_t(4, 50_000), rng.exponential(1.0, 50_000)])
    t = tails.Tails(tails.fit(A, [True, False]))
    # the body: -log10 of the share of rows at least as extreme
    for q in (0.5, 0.9, 0.98):
        x = np.quantile(np.abs(A[:, 0]), q)
        assert t.surprise([[x, 0.0]])[0, 0] == pytest.approx(-math.log10(1 - q), abs=0.02)
    u = t.u
    below, above = t.surprise([u - 1e-9]), t.surprise([u + 1e-9])
    np.testing.assert_allclose(below, 2.0, atol=1e-6)  # the 1 % tail starts at 2
    np.testing.assert_allclose(above, 2.0, atol=1e-6)
    grid = np.linspace(0, 50, 500)
    s = t.surprise(np.column_stack([grid, grid]))
    assert (np.diff(s, axis=0) >= 0).all() and np.isfinite(s).all()  # no end point
    assert t.surprise([[-30.0, 0.0]])[0, 0] == t.surprise([[30.0, 0.0]])[0, 0]  # folded
    # out of sample the tail probability is right: the share beyond the 1e-4 level
    B = np.column_stack([rng.standard_t(4, 400_000), rng.exponential(1.0, 400_000)])
    rate = (t.surprise(B) > 4).mean(axis=0)
    assert (rate > 0.3e-4).all() and (rate < 3e-4).all(), rate
    assert np.isnan(t.surprise([[np.nan, 1.0]])[0, 0])


def test_episode_peaks_fold_runs():
    x = np.array([0, 5, 6, 0, 0, 0, 7, 0, 9, 0.0])
    assert tails.episode_peaks(x, 1.0, 1).tolist() == [5, 6, 7, 9]
    assert tails.episode_peaks(x, 1.0, 2).tolist() == [6, 7, 9]
    assert tails.episode_peaks(x, 1.0, 3).tolist() == [6, 9]
    assert tails.episode_peaks(x, 1.0, 10).tolist() == [9]
    assert len(tails.episode_peaks(x, 10.0, 3)) == 0


def test_a_slow_feature_is_fitted_on_its_episodes():
    """A 300-row moving sum: its rows above u come in runs; the declustered fit counts
    the episodes, and its tail is heavier than a fit on the autocorrelated rows."""
    rng = np.random.default_rng(4)
    slow = np.convolve(rng.standard_t(3, 60_000), np.ones(300), "valid")[:, None]
    rows = tails.fit(slow, [True])
    episodes = tails.fit(slow, [True], runs=[300])
    assert episodes["runs"] == [300] and rows["runs"] == [1]
    n_above = int(np.sum(np.abs(slow) > episodes["body"][0][-1]))
    assert episodes["episodes"][0] < n_above / 20 and rows["episodes"][0] == n_above
    far = np.array([[np.abs(slow).max() * 1.5]])
    assert tails.Tails(episodes).surprise(far) <= tails.Tails(rows).surprise(far)
    assert episodes["xi"][0] > rows["xi"][0] or episodes["sigma"][0] >= rows["sigma"][0]


def test_a_thin_fitted_tail_is_floored_by_the_body():
    """A feature with a point mass at 0 and a short tail (volratio_60 on a calm series):
    its few episodes give a tail far lighter than its body. The GPD scale is floored at the
    exponential scale the body implies, (u - median) / ln 50, so a value twice the training
    maximum is rare (S > 2) but not 1e-30."""
    rng = np.random.default_rng(5)
    x = np.where(rng.random(20_000) < 0.6, 0.0, rng.exponential(0.05, 20_000))
    x[x > 0.2] = 0.2  # nothing beyond 0.2 in training: the PWM fit alone is very light
    t = tails.fit(x[:, None], [False], runs=[60])
    u, med = t["body"][0][-1], t["body"][0][tails.MEDIAN]
    assert t["sigma"][0] == pytest.approx((u - med) / math.log(50))
    s = tails.Tails(t).surprise([[0.4]])[0, 0]
    assert 2 < s <= 2 + (0.4 - u) / t["sigma"][0] / math.log(10) + 1e-9 < 12


def test_score_is_the_bonferroni_adjusted_smallest_probability():
    t = tails.Tails(tails.fit(np.random.default_rng(9).normal(size=(5000, 3)), [True] * 3))
    A = np.array([[0.1, 0.2, 0.3], [8.0, 0.1, 0.0]])
    S, raw = t.surprise(A), t.score(A)
    np.testing.assert_allclose(raw, np.minimum(0.0, math.log10(3) - S.max(axis=1)), atol=1e-12)
    assert raw[0] == 0.0 and raw[1] < math.log10(3) - 5.0  # 8 sd: far beyond 1e-5


@pytest.mark.parametrize("xi", [0.0, 0.2, 0.4])
def test_one_giant_cannot_move_the_quantile_fit(xi):
    # 40 event peaks (the budget's least) and one of them a gross event: the moments jump to
    # the heaviest tail allowed, the two quantiles barely move
    peaks = gpd(np.random.default_rng(3), xi, 1.0, 40)
    giant = np.append(peaks, 60.0)
    assert tails.gpd_pwm(giant)[0] == tails.XI_MAX
    (a, s_a), (b, s_b) = tails.gpd_quantiles(peaks), tails.gpd_quantiles(giant)
    assert abs(b - a) < 0.1 and s_b == pytest.approx(s_a, rel=0.15)


def test_one_gross_event_does_not_set_the_threshold():
    """A day of iid scores with a budget of 2 a day, then the same with one giant event:
    the level stays where the ordinary events put it (it was pulled past 10 by the moments)."""
    rng = np.random.default_rng(7)
    t = np.arange(1440) * 60.0
    s = rng.standard_t(5, len(t))
    z, _ = budget.threshold(t, s, 120.0, 2.0)
    s[700] = 80.0
    z_giant, info = budget.threshold(t, s, 120.0, 2.0)
    assert z_giant == pytest.approx(z, rel=0.25) and z_giant < 10 < 80


def test_events_fold_within_the_gap():
    t = np.arange(10.0) * 60
    flags = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 1], bool)
    assert budget.events(t, flags, 120.0) == [(0, 1), (4, 4), (9, 9)]
    assert budget.events(t, flags, 180.0) == [(0, 4), (9, 9)]
    assert budget.count(t, flags.astype(float), 0.5, 120.0) == 3
    assert budget.events(t, np.zeros(10, bool), 1.0) == []


def test_threshold_gives_the_budget_in_and_out_of_sample():
    """iid heavy-tailed scores one a minute: 5 days to calibrate, 60 unseen days."""
    rng = np.random.default_rng(5)
    step, gap, per_day = 60.0, 120.0, 2.0
    t = np.arange(5 * 1440) * step
    z, info = budget.threshold(t, rng.standard_t(5, len(t)), gap, per_day)
    assert info["budget_peaks"] >= budget.N_PEAKS and 0 <= info["budget_xi"] <= tails.XI_MAX
    t2 = np.arange(60 * 1440) * step
    seen = len(budget.events(t2, rng.standard_t(5, len(t2)) > z, gap)) / 60
    assert per_day / 2 <= seen <= per_day * 2, seen
    # a budget above every event's rate: the empirical level
    z_all, _ = budget.threshold(t[:200], np.arange(200.0), gap, 1e9)
    assert z_all <= 199


def test_trim_drops_the_worst_events_within_the_cap():
    t = np.arange(2000) * 30.0  # 16.7 hours: events above the one-an-hour level go
    s = np.random.default_rng(6).normal(size=2000)
    s[500:505] = 40.0
    s[1500] = 30.0
    keep = budget.trim_mask(t, s, 60.0, 300.0, cap=0.05)  # each with 300 s (10 rows) after
    assert not keep[500:515].any() and not keep[1500:1511].any() and keep[516:1499].any()
    assert np.count_nonzero(~keep) <= 100
    assert budget.trim_mask(t, s, 60.0, 300.0, cap=0.0).all()


def test_trim_takes_the_worst_rows_of_an_event_too_long_for_the_cap():
    """The most extreme event is longer than the cap: its most extreme rows fill the cap
    (it is the one the tails must not learn; it used to be skipped whole, and on a 5-minute
    series, a guard of 300 rows against a cap of 100, nothing was ever trimmed)."""
    t = np.arange(2000) * 30.0
    s = np.random.default_rng(7).normal(size=2000)
    s[200:400] = np.linspace(40.0, 60.0, 200)  # 200 rows: above the 100-row cap
    s[1000] = 30.0
    keep = budget.trim_mask(t, s, 60.0, 60.0, cap=0.05)
    assert not keep[300:400].any() and keep[200:300].all()  # its 100 worst rows
    assert keep[1000] and np.count_nonzero(~keep) == 100  # the cap is spent on it
    keep = budget.trim_mask(t, s, 60.0, 60.0, cap=0.2)  # room for it all: the next goes too
    assert not keep[200:402].any() and not keep[1000:1003].any()


def test_trim_at_a_given_level_keeps_the_events_below_it():
    t = np.arange(2000) * 30.0
    s = np.random.default_rng(8).normal(size=2000)
    s[300], s[900], s[1500] = 40.0, 12.0, 8.0
    keep = budget.trim_mask(t, s, 60.0, 60.0, cap=0.05, level=10.0)
    assert not keep[300] and not keep[900] and keep[1500]
    assert np.count_nonzero(~keep) == 2 * 3  # each row and the 60 s (2 rows) after it


def test_holdout_limit_is_a_poisson_quantile():
    assert budget.holdout_limit(2.0, 0.05, 10.0) == 5  # lambda 1: P(N <= 5) = 0.9994
    assert budget.holdout_limit(2.0, 1e-6, 10.0) == 1  # a sliver of time: 1 is no evidence
    lam = 10.0 * 2.0 * 5
    n = budget.holdout_limit(2.0, 5, 10.0)
    assert lam < n < lam + 4 * math.sqrt(lam)
