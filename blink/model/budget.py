"""The alert budget: a threshold that gives `alerts_per_day` anomaly EVENTS a day, and the
events a training window is trimmed of. Pure numpy, on one row per grid step.

Events are what the detector emits: rows whose anomaly s (= -score_raw, higher = worse) is
above a level, folded together while less than `gap` seconds apart (`events`). The level for a
budget B events/day (`threshold`) is found by peaks over threshold on the EVENT peaks, as SPOT
(Siffer et al., KDD 2017) does on declustered peaks:

1. base level u: the highest of LEVELS quantiles of s that still leaves at least
   max(N_PEAKS, RATE_FACTOR x B x days) events in the window (above the level where events
   stop merging, i.e. the level with the most events);
2. a GPD is fitted to the event peaks' excess over u, matched at two quantiles
   (`tails.gpd_quantiles`: xi in [0, 1/2]; robust to the few gross events among the peaks,
   which moments are not);
3. with rate_u = events above u per day, the level z solves
   rate_u (1 + xi (z - u) / sigma)^(-1/xi) = B (xi = 0: z = u + sigma ln(rate_u / B)).

When the budget is at least rate_u (a huge budget), z is the empirical level instead.
"""

from __future__ import annotations

import math

import numpy as np

from blink.model.tails import gpd_quantiles

N_PEAKS = 40  # event peaks the GPD is fitted on, at least
RATE_FACTOR = 10.0  # ... and at least 10 x the budget's events
LEVELS = 1.0 - np.geomspace(0.2, 1e-5, 60)  # candidate base levels (quantiles of s)


def _bounds(t: np.ndarray, flags: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last rows of the events (arrays): `events` without the Python tuples."""
    idx = np.flatnonzero(flags)
    if not len(idx):
        return idx, idx
    cut = np.flatnonzero(np.diff(t[idx]) > gap)
    return (np.concatenate(([idx[0]], idx[cut + 1])), np.concatenate((idx[cut], [idx[-1]])))


def events(t: np.ndarray, flags: np.ndarray, gap: float) -> list[tuple[int, int]]:
    """(first, last) row of each event: flagged rows folded while <= gap seconds apart."""
    firsts, lasts = _bounds(t, flags, gap)
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))


def peaks(t: np.ndarray, s: np.ndarray, level: float, gap: float) -> np.ndarray:
    """The peak s of every event above `level` (max of s over its rows, first to last)."""
    firsts, lasts = _bounds(t, s > level, gap)
    if not len(firsts):
        return np.array([])
    edges = np.empty(2 * len(firsts), np.intp)
    edges[0::2], edges[1::2] = firsts, lasts + 1  # segments [first, last]; between: dropped
    return np.maximum.reduceat(np.append(s, 0.0), edges)[0::2]


def count(t: np.ndarray, s: np.ndarray, level: float, gap: float) -> int:
    flagged = t[s > level]
    return int(len(flagged) and 1 + np.count_nonzero(np.diff(flagged) > gap))


def base_level(t: np.ndarray, s: np.ndarray, gap: float, wanted: float) -> float:
    """The highest candidate level still leaving `wanted` events (above the busiest level)."""
    levels = np.unique(np.quantile(s, LEVELS))
    found = np.array([count(t, s, lv, gap) for lv in levels])
    top = int(np.argmax(found))
    ok = np.flatnonzero((np.arange(len(levels)) >= top) & (found >= wanted))
    return float(levels[ok[-1]] if len(ok) else levels[top])


def threshold(t: np.ndarray, s: np.ndarray, gap: float, budget: float) -> tuple[float, dict]:
    """(level on s, info) for `budget` events a day over the rows (t ascending, seconds)."""
    days = max((t[-1] - t[0]) / 86400.0, 1e-9) if len(t) else 1e-9
    u = base_level(t, s, gap, max(N_PEAKS, RATE_FACTOR * budget * days))
    p = peaks(t, s, u, gap)
    rate_u = len(p) / days
    info = {"budget_base_level": u, "budget_base_rate": rate_u, "budget_peaks": float(len(p)),
            "budget_days": days}
    if not len(p):
        return u, {**info, "budget_xi": 0.0, "budget_sigma": 0.0}
    if budget >= rate_u:  # the empirical level: the peak of the budget-th largest event
        k = max(1, math.floor(budget * days))
        z = float(np.sort(p)[::-1][min(k, len(p)) - 1]) if k <= len(p) else u
        return z, {**info, "budget_xi": 0.0, "budget_sigma": 0.0}
    xi, sigma = gpd_quantiles(p - u)
    ratio = rate_u / budget
    z = u + (sigma / xi * (ratio ** xi - 1.0) if xi > 1e-9 else sigma * math.log(ratio))
    return float(z), {**info, "budget_xi": xi, "budget_sigma": sigma}


def trim_mask(t: np.ndarray, s: np.ndarray, gap: float, guard: float, cap: float,
              level: float | None = None) -> np.ndarray:
    """Rows to keep: the events above `level` (default: the window's one-event-an-hour
    level; the trainer passes its alert level) are dropped, each from its first row to
    `guard` seconds after its last, most extreme first, while at most `cap` of the rows go;
    an event longer than what is left of the cap loses its most extreme rows (the worst
    event is the one the tails must not learn; skipping it, as before, kept it whole)."""
    keep = np.ones(len(t), bool)
    if len(t) < 2:
        return keep
    hours = max((t[-1] - t[0]) / 3600.0, 1.0)
    level = base_level(t, s, gap, hours) if level is None else level
    found = events(t, s > level, gap)
    order = sorted(found, key=lambda ab: -s[ab[0]:ab[1] + 1].max())
    room = int(cap * len(t))
    for a, b in order:
        if room <= 0:
            break
        stop = int(np.searchsorted(t, t[b] + guard, side="right"))
        left = np.flatnonzero(keep[a:stop])
        if len(left) > room:
            left = left[np.argsort(-s[a:stop][left], kind="stable")[:room]]
        keep[a + left] = False
        room -= len(left)
    return keep


def alert_trim(t: np.ndarray, s: np.ndarray, kept: np.ndarray, gap: float, per_day: float,
               cap: float) -> np.ndarray:
    """`trim_mask` at the alert level that the `kept` rows' scores give for `per_day` events
    a day (what this model would alert on), each event with `gap` after it."""
    level, _ = threshold(t[kept], s[kept], gap, per_day)
    return trim_mask(t, s, gap, gap, cap, level)


def holdout_limit(budget: float, days: float, factor: float) -> int:
    """Most held-out events allowed: the 99.9 % Poisson quantile at factor x budget x days
    (a short hold-out expects a fraction of an event: one is no evidence of a bad model, so
    the limit is never below 1)."""
    lam = factor * budget * days
    n, term = 0, math.exp(-lam)
    total = term
    while total < 0.999:
        n += 1
        term *= lam / n
        total += term
    return max(n, 1)
