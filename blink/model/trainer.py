"""Training: forest + calibrated tails on one row per grid step, trimmed, thresholded by the
alert budget, checked. `fit` is pure (no I/O, no MLflow) so the backtest reuses it.

- **Rows.** NaN/inf rows (windows not warm yet) are dropped; fewer than `train_min_rows` left
  raises `TooFewRows`. Then ONE row per grid step of event time (`features.grid_rows`: the
  last trade's vector of each `feature_scale` step), so that busy periods (anomalies
  included) do not outweigh calm ones. The newest `holdout_fraction` of the rows is held
  out; the model fits on the last `train_hours` before it, the threshold calibrates on all of
  the window before it (`calibration_hours`).
- **Model** (`blink.model.served`): an isolation forest (`forest.grow`, C) on the used features
  (`model_features`, all by default) and calibrated tail tables of each used feature and of
  the forest's anomaly; score_raw = log10 of the Bonferroni-adjusted smallest tail
  probability (<= 0, higher = more normal).
- **Trim.** Pass 1 fits on every training row; its events (`event_gap_seconds` folding)
  above pass 1's own alert level (`budget.threshold` at `alerts_per_day` on its scores: what
  it would alert on) are dropped, each with `event_gap_seconds` after it, most extreme
  first, while at most `trim_fraction` of the rows go (an event too long for what is left
  loses its most extreme rows). Pass 2 refits on the rest, RE-SCORES every training row and
  trims anew at its own alert level (on the rows it kept): pass 1 had learned the anomalies
  in its tails and under-rated them, the trimmed model does not (`TRIM_PASSES`); the final
  model fits on what pass 2 kept. The trimmed share is a metric.
- **Threshold** (`blink.model.budget`): the level at which the UNTRIMMED calibration rows
  give `alerts_per_day` events a day, the tail of the event peaks modelled by a GPD (peaks
  over threshold, as SPOT), so that the rate holds out of sample. Each calibration row is
  scored by a model that did NOT see it: the rows before the training window by the final
  model, the training rows out of fold (the older half by a model fitted on the newer half,
  and the other way round). A model's own training rows look more normal to it than new
  rows do (their extremes shaped its tails): calibrated on them, the threshold let 4x the
  budget through on unseen real days (docs/features.md).
- **Promotion checks** (`promote_ok`, `reason`): no constant used feature; the scores have
  a spread; the held-out EVENT count is within the 99.9 % Poisson quantile of
  `max_holdout_rate_factor` x the budget over the held-out time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from blink import features
from blink.model import budget, dataset, served, tails
from blink.model.dataset import load_training_matrix  # noqa: F401 - re-exported (backtest)
from blink.model.forest import grow

log = logging.getLogger(__name__)

SCORE_QUANTILES = (0.001, 0.01, 0.5)
SAMPLE_ROWS = 32_768  # training rows the forest is fitted on (evenly spaced)
MIN_GRID_ROWS = 100  # grid rows a fit needs whatever train_min_rows says
# the two rules docs/features.md explains (False: the rule before them, for comparisons)
CROSSFIT = True  # the threshold reads the training rows' OUT-OF-FOLD scores
DECLUSTER = True  # tails fitted on episode peaks (`tails.fit` runs = each feature window)
# fits of the trim: pass 1 on every row, then each refit re-scores every training row and
# trims what IT would alert on (pass 1's tails had absorbed the anomalies: it under-rates them)
TRIM_PASSES = 2


class TooFewRows(ValueError):
    """Not enough warm feature rows to train on."""


@dataclass
class FitResult:
    forest: object  # the isolation forest on the used features (`CompiledForest`, `grow`n)
    feature_names: tuple[str, ...]
    threshold: float  # anomalous when score_raw < threshold
    train_stats: dict  # served.training_stats: tail tables, columns, score quantiles
    metrics: dict[str, float]
    params: dict[str, object]  # every hyperparameter and rule that produced this model
    promote_ok: bool
    reason: str
    example: np.ndarray  # a few training rows (the MLflow input example, used features)
    trained_at: float = field(default_factory=time.time)


def hyperparameters(settings) -> dict[str, object]:
    return {
        "n_estimators": settings.n_estimators,
        "max_samples": settings.max_samples,
        "max_features": settings.max_features,
        "random_state": settings.random_state,
        "alerts_per_day": settings.alerts_per_day,
        "threshold_rule": ("events/day of the calibration rows = alerts_per_day (event POT); "
                           "training rows scored out of fold" if CROSSFIT else
                           "events/day of the calibration rows = alerts_per_day (event POT)"),
        "tail_fit": "episode peaks" if DECLUSTER else "rows",
        "score_rule": "log10(m * min p_j): tails of used features and of the forest",
        "event_gap_seconds": settings.event_gap_seconds,
        "trim_fraction": settings.trim_fraction,
        "trim_rule": (f"{TRIM_PASSES} passes: each model's events above its alert level "
                      "(budget), + event gap, most extreme rows first within the cap"),
        "holdout_fraction": settings.holdout_fraction,
        "max_holdout_rate_factor": settings.max_holdout_rate_factor,
        "train_hours": settings.train_hours,
        "calibration_hours": settings.calibration_hours,
        "train_min_rows": settings.train_min_rows,
        "grid_seconds": settings.feature_scale,
        "sample_rows": SAMPLE_ROWS,
    }


def warm_rows(X: np.ndarray, settings) -> np.ndarray:
    """The rows a model may learn from (every feature finite); TooFewRows below
    `train_min_rows` of them (the backtest asks before it schedules a fit)."""
    X = dataset.warm(X)
    if len(X) < max(settings.train_min_rows, 2):
        raise TooFewRows(f"{len(X)} warm feature rows, need {settings.train_min_rows}")
    return X


def spaced(X: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` rows of X, evenly spaced through it (all of them when fewer)."""
    if len(X) <= limit:
        return X
    return X[np.linspace(0, len(X) - 1, limit).round().astype(np.int64)]


@dataclass(frozen=True)
class Window:
    """What a fit needs of a window of feature rows (`prepare`): one row per grid step, a
    few MB whatever the window, so the backtest can hand it to a fitting process cheaply."""
    ts: np.ndarray  # event time of the calibration rows (everything before the hold-out)
    X: np.ndarray  # their features
    fit_from: int  # X[fit_from:] are the training rows (the last train_hours)
    hold_ts: np.ndarray
    hold: np.ndarray
    rows_warm: int  # warm trade rows the window had


def used_columns(names: Sequence[str], settings) -> list[int]:
    wanted = settings.model_features
    unknown = set(wanted) - set(names)
    if unknown:
        raise ValueError(f"model_features: unknown features {sorted(unknown)}")
    return [i for i, n in enumerate(names) if not wanted or n in wanted]


def prepare(X: np.ndarray, settings, ts: np.ndarray | None = None) -> Window:
    """Warm rows of X (tape order, event times `ts`; one row per grid step when None) on
    the grid, split into calibration/training and held-out rows."""
    X = np.asarray(X, dtype=np.float64)
    ts = (np.arange(len(X)) * settings.feature_scale if ts is None
          else np.asarray(ts, dtype=np.float64))
    ok = np.isfinite(X).all(axis=1)
    X, ts = warm_rows(X[ok], settings), ts[ok]
    grid = features.grid_rows(ts, settings.feature_scale)
    X, ts = X[grid], ts[grid]
    if len(X) < MIN_GRID_ROWS:
        raise TooFewRows(f"{len(X)} grid rows, need {MIN_GRID_ROWS}")
    n_hold = max(1, round(len(X) * settings.holdout_fraction))
    cal_ts, hold_ts = ts[:-n_hold], ts[-n_hold:]
    fit_from = int(np.searchsorted(cal_ts, cal_ts[-1] - settings.train_hours * 3600.0,
                                   side="right"))
    fit_from = min(fit_from, len(cal_ts) - MIN_GRID_ROWS // 2)
    return Window(cal_ts, X[:-n_hold], max(fit_from, 0), hold_ts, X[-n_hold:], int(ok.sum()))


def _model(rows: np.ndarray, names, cols, settings, scale: float, own: bool = False):
    """Forest + tail tables fitted on `rows` (all columns) -> (score_raw of those rows with
    `own`, else None; ServedModel): the forest walked the rows for the tails, so a caller
    needing their scores does not walk them again."""
    used = rows[:, cols]
    forest = grow(spaced(used, SAMPLE_ROWS), settings.n_estimators, settings.max_samples,
                  settings.max_features, settings.random_state)
    two = [names[i] in features.TWO_SIDED for i in cols] + [False]
    runs = [features.WINDOWS.get(names[i], 1) for i in cols]
    runs.append(max(runs))  # the forest reads every window: its slowest
    runs = runs if DECLUSTER else None
    A = np.column_stack([used, -forest.score_samples(used)])
    tables = tails.fit(A, two, runs)
    stats = {"tails": tables, "columns": list(cols), "scale": float(scale)}  # what scoring reads
    raw = tails.Tails(tables).score(A) if own else None  # = .score(rows)
    return raw, served.ServedModel(forest, tuple(names), np.nan, "fit", "0", "", stats)


def _out_of_fold(train: np.ndarray, keep: np.ndarray, names, cols, settings, scale
                 ) -> np.ndarray:
    """-score_raw of every training row by a model that did not see it: the older half
    scored by a model fitted on the newer half (trimmed rows out), and the other way."""
    out = np.empty(len(train))
    half = len(train) // 2
    for fit_part, score_part in ((slice(half, None), slice(0, half)),
                                 (slice(0, half), slice(half, None))):
        _, m = _model(train[fit_part][keep[fit_part]], names, cols, settings, scale)
        out[score_part] = -m.score(train[score_part])
    return out


def fit(X: np.ndarray | Window, settings, feature_names: Sequence[str] | None = None,
        ts: np.ndarray | None = None) -> FitResult:
    """Trim, fit, threshold and check on `X` (rows in tape order at event times `ts`, NaN
    rows allowed), or on a window `prepare` already made of them."""
    w = X if isinstance(X, Window) else prepare(X, settings, ts)
    names = tuple(feature_names or (f"f{i}" for i in range(w.X.shape[1])))
    if len(names) != w.X.shape[1]:
        raise ValueError(f"{len(names)} feature names for {w.X.shape[1]} columns")
    cols = used_columns(names, settings) if feature_names else list(range(len(names)))
    scale, gap = settings.feature_scale, settings.event_gap_seconds
    train, train_ts = w.X[w.fit_from:], w.ts[w.fit_from:]
    started = time.perf_counter()
    own, final = _model(train, names, cols, settings, scale, own=True)
    # trimmed: what each pass would alert on at the budget (the anomalies, by the user's own
    # definition); rarer-than-hourly but ordinary moves stay, the tails must know them. A
    # pass that keeps the same rows as the one before would refit the same model: done.
    trim = (gap, settings.alerts_per_day, settings.trim_fraction)
    keep, s = np.ones(len(train), bool), -own
    for n in range(TRIM_PASSES):  # the trimmed model sees what the first one absorbed
        if n:
            s = -final.score(train)
        kept, keep = keep, budget.alert_trim(train_ts, s, keep, *trim)
        if np.array_equal(kept, keep):
            break
        _, final = _model(train[keep], names, cols, settings, scale)
    fit_seconds = time.perf_counter() - started
    # untrimmed: on unseen data every event counts (training rows: out of fold, below)
    s_cal = -final.score(w.X[:w.fit_from] if CROSSFIT else w.X)
    if CROSSFIT:
        s_cal = np.concatenate([s_cal, _out_of_fold(train, keep, names, cols, settings, scale)])
    z, info = budget.threshold(w.ts, s_cal, gap, settings.alerts_per_day)
    threshold = -z
    hold_days = max(float(w.hold_ts[-1] - w.ts[-1]) / 86400.0, 1e-9)
    hold_events = len(budget.events(w.hold_ts, final.score(w.hold) < threshold, gap))
    cal_events = len(budget.events(w.ts, -s_cal < threshold, gap))
    scores = -s_cal
    metrics = {
        "fit_seconds": fit_seconds,
        "rows_warm": float(w.rows_warm),
        "rows_calibration": float(len(w.X)),
        "rows_train": float(len(train)),
        "rows_trimmed": float(np.count_nonzero(~keep)),
        "trimmed_fraction": float(np.mean(~keep)),
        "rows_holdout": float(len(w.hold)),
        "threshold": threshold,
        "alerts_per_day": float(settings.alerts_per_day),
        "calibration_events_per_day": cal_events / info["budget_days"],
        "holdout_events": float(hold_events),
        "holdout_days": hold_days,
        "holdout_events_per_day": hold_events / hold_days,
        **info,
        **{f"score_q{q:g}": float(np.quantile(scores, q)) for q in SCORE_QUANTILES},
    }
    spans = np.ptp(train[keep][:, cols], axis=0)
    promote_ok, reason = _checks(spans, [names[i] for i in cols], scores, hold_events,
                                 hold_days, settings)
    stats = served.training_stats(scores, final.train_stats["tails"], cols, scale)
    params = {**hyperparameters(settings), "features_used": ",".join(names[i] for i in cols)}
    return FitResult(forest=final.forest, feature_names=names, threshold=threshold,
                     train_stats=stats, metrics=metrics, params=params,
                     promote_ok=promote_ok, reason=reason,
                     example=train[-5:][:, cols].copy())


def _checks(spans: np.ndarray, names: Sequence[str], scores: np.ndarray, hold_events: int,
            hold_days: float, settings) -> tuple[bool, str]:
    constant = [n for n, span in zip(names, spans, strict=True) if span == 0]
    if constant:
        return False, f"constant features: {', '.join(constant)}"
    if np.ptp(scores) == 0:
        return False, "calibration scores have no spread"
    limit = budget.holdout_limit(settings.alerts_per_day, hold_days,
                                 settings.max_holdout_rate_factor)
    rate = hold_events / hold_days
    if hold_events > limit:
        return False, (f"{hold_events} held-out events in {hold_days * 24:.2f} h "
                       f"({rate:.1f}/day) above {limit} (Poisson 99.9 % at "
                       f"{settings.max_holdout_rate_factor:g} x {settings.alerts_per_day:g}/day)")
    return True, (f"checks passed: {hold_events} held-out events in {hold_days * 24:.2f} h "
                  f"(limit {limit}), no constant feature")


def train_on_tape(rows: np.ndarray, settings, meta: dict):
    """Features, fit and MLflow log for one range of tape: -> (FitResult, VersionInfo).

    Blocking and CPU-bound, self-contained and picklable: the service runs it in a worker
    process (see `blink.service.retrain`), the CLI in a thread. Raises TooFewRows.
    """
    from blink.model import tracking

    X = dataset.feature_matrix(rows, settings)
    meta = {**meta, "feature_rows": dataset.warm_rows(X)}
    result = fit(X, settings, meta["feature_names"], ts=rows["ts"])
    info = tracking.log_to_mlflow(result, settings, meta)
    # the fitted forest stays here (it is in the registry now, and the watcher loads it)
    return dataclasses.replace(result, forest=None), info


async def retrain_once(pool, settings, end_time: datetime, executor=None):
    """Read the tape range before `end_time`, then `train_on_tape` in `executor`."""
    rows, meta = await dataset.read_range(pool, settings, end_time)
    return await asyncio.get_running_loop().run_in_executor(executor, train_on_tape, rows,
                                                            settings, meta)
