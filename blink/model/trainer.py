"""Training: fit an IsolationForest on feature rows, pick its threshold, check it is sane.

`fit` is pure (no I/O, no MLflow) so the backtest reuses it. The rules, in one place:

- **Rows.** NaN/inf rows (windows not warm yet) are dropped; fewer than `train_min_rows` left
  raises `TooFewRows`. Rows are in tape order; the most recent `holdout_fraction` of them is
  held out: the forest and the threshold never see it.
- **Threshold.** `score_raw` is sklearn's `score_samples` (higher = more normal, about -1..0),
  computed by the compiled forest (equal to sklearn's to ~1e-15, ~100x faster in batches).
  The threshold is the `1 - threshold_quantile` quantile of the training rows' `score_raw`, and
  a row is anomalous when `score_raw < threshold`: by construction 0.5 % of training trades
  (default quantile 0.995) are anomalous, i.e. a budget of alerts per hour that does not depend
  on the market's level or the model's score scale (unlike a fixed cut-off such as -0.6).
- **Sample.** The forest is fitted, and the training quantiles (threshold, `anomaly_score`'s
  CDF, the explanations' medians) are taken, on at most `SAMPLE_ROWS` training rows evenly
  spaced through the window; the held-out rate on at most `HOLD_ROWS`. Every tree draws only
  `max_samples` (256) rows anyway, while a 12-hour window of ticks is ~300,000 rows and
  sklearn's per-tree cost grows with the rows it is handed (its bagging weighs every row of
  the input for every tree); 32,768 rows still put ~33 scores below the default 0.1 %
  quantile. A retrain's fit + threshold costs ~0.25 s instead of ~0.5 s on the whole window
  (and ~6.6 s before the compiled forest scored the rows instead of sklearn).
- **Promotion checks** (`promote_ok`, `reason`): no constant feature column in the rows the
  forest is fitted on (a constant column means a broken feature, and the forest would ignore
  it silently); the training scores have a spread; the held-out anomaly rate is at most
  `max_holdout_rate_factor` times the expected rate `1 - threshold_quantile` (a model that
  flags 5 % of the newest trades instead of 0.5 % does not describe the current market).
  There is no lower bound: a calm recent hour legitimately has no anomaly at all.
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

from blink.model import dataset, served
from blink.model.dataset import load_training_matrix  # noqa: F401 - re-exported (backtest)

log = logging.getLogger(__name__)

SCORE_QUANTILES = (0.001, 0.005, 0.01, 0.05, 0.25, 0.5)
SAMPLE_ROWS = 32_768  # training rows the forest is fitted and thresholded on
HOLD_ROWS = 8_192  # held-out rows scored for the held-out anomaly rate


class TooFewRows(ValueError):
    """Not enough warm feature rows to train on."""


@dataclass
class FitResult:
    model: object  # the fitted sklearn IsolationForest (feature_names_in_ = feature_names)
    forest: object  # the same model compiled (`CompiledForest`): what serves it
    feature_names: tuple[str, ...]
    threshold: float  # anomalous when score_raw < threshold
    train_stats: dict  # served.training_stats: robust centre/scale, training-score quantiles
    metrics: dict[str, float]
    params: dict[str, object]  # every hyperparameter and rule that produced this model
    promote_ok: bool
    reason: str
    example: np.ndarray  # a few training rows (the MLflow input example)
    trained_at: float = field(default_factory=time.time)


def hyperparameters(settings) -> dict[str, object]:
    return {
        "n_estimators": settings.n_estimators,
        "max_samples": settings.max_samples,
        "max_features": settings.max_features,
        "random_state": settings.random_state,
        "threshold_quantile": settings.threshold_quantile,
        "threshold_rule": "score_raw < quantile(train score_raw, 1 - threshold_quantile)",
        "holdout_fraction": settings.holdout_fraction,
        "max_holdout_rate_factor": settings.max_holdout_rate_factor,
        "train_hours": settings.train_hours,
        "train_min_rows": settings.train_min_rows,
        "sample_rows": SAMPLE_ROWS,
        "hold_rows": HOLD_ROWS,
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
    """What a fit needs of a window of feature rows (`prepare`): a few MB whatever the
    window, so the backtest can hand it to a fitting process cheaply."""
    sample: np.ndarray  # at most SAMPLE_ROWS training rows, evenly spaced
    hold: np.ndarray  # at most HOLD_ROWS held-out rows, evenly spaced
    spans: np.ndarray  # per feature: max - min over the sample (constant check)
    example: np.ndarray  # the newest training rows (MLflow input example)
    rows_train: int
    rows_holdout: int


def prepare(X: np.ndarray, settings) -> Window:
    """Warm rows of X (tape order), split into training and held-out rows, sampled."""
    X = warm_rows(X, settings)
    n_hold = max(1, round(len(X) * settings.holdout_fraction))
    train, hold = X[:-n_hold], X[-n_hold:]
    sample = spaced(train, SAMPLE_ROWS)
    return Window(sample, spaced(hold, HOLD_ROWS), np.ptp(sample, axis=0), train[-5:].copy(),
                  len(train), n_hold)


def fit(X: np.ndarray | Window, settings, feature_names: Sequence[str] | None = None
        ) -> FitResult:
    """Fit, threshold and check a forest on `X` (rows in tape order, NaN rows allowed), or
    on a window `prepare` already made of them."""
    import pandas as pd
    from sklearn.ensemble import IsolationForest

    from blink.model.forest import CompiledForest

    w = X if isinstance(X, Window) else prepare(np.asarray(X, dtype=np.float64), settings)
    sample = w.sample
    names = tuple(feature_names or (f"f{i}" for i in range(sample.shape[1])))
    if len(names) != sample.shape[1]:
        raise ValueError(f"{len(names)} feature names for {sample.shape[1]} columns")
    model = IsolationForest(
        n_estimators=settings.n_estimators,
        max_samples=min(settings.max_samples, len(sample)),
        max_features=settings.max_features,
        random_state=settings.random_state,
    )
    # fitted on named columns: the model knows its features, as MLflow's signature does
    started = time.perf_counter()
    model.fit(pd.DataFrame(sample, columns=list(names)))
    fit_seconds = time.perf_counter() - started
    forest = CompiledForest.from_sklearn(model)
    scores = forest.score_samples(sample)
    threshold = served.threshold_for(scores, settings.threshold_quantile)
    hold_rate = float(np.mean(forest.score_samples(w.hold) < threshold))
    expected = 1 - settings.threshold_quantile

    quantiles = {f"score_q{q:g}": float(np.quantile(scores, q)) for q in SCORE_QUANTILES}
    metrics = {
        "fit_seconds": fit_seconds,
        "rows_train": float(w.rows_train),
        "rows_sampled": float(len(sample)),
        "rows_holdout": float(w.rows_holdout),
        "threshold": threshold,
        "train_anomaly_rate": float(np.mean(scores < threshold)),
        "holdout_anomaly_rate": hold_rate,
        "expected_anomaly_rate": expected,
        **quantiles,
    }
    promote_ok, reason = _checks(w.spans, names, scores, hold_rate, expected, settings)
    return FitResult(model=model, forest=forest, feature_names=names, threshold=threshold,
                     train_stats=served.training_stats(sample, scores), metrics=metrics,
                     params=hyperparameters(settings), promote_ok=promote_ok, reason=reason,
                     example=w.example)


def _checks(spans: np.ndarray, names: Sequence[str], scores: np.ndarray, hold_rate: float,
            expected: float, settings) -> tuple[bool, str]:
    constant = [n for n, span in zip(names, spans, strict=True) if span == 0]
    if constant:
        return False, f"constant features: {', '.join(constant)}"
    if np.ptp(scores) == 0:
        return False, "training scores have no spread"
    limit = settings.max_holdout_rate_factor * expected
    if hold_rate > limit:
        return False, (f"held-out anomaly rate {hold_rate:.4f} above {limit:.4f} "
                       f"({settings.max_holdout_rate_factor:g} x expected {expected:.4f})")
    return True, (f"checks passed: held-out anomaly rate {hold_rate:.4f} "
                  f"(limit {limit:.4f}), no constant feature")


def train_on_tape(rows: np.ndarray, settings, meta: dict):
    """Features, fit and MLflow log for one range of tape: -> (FitResult, VersionInfo).

    Blocking and CPU-bound, self-contained and picklable: the service runs it in a worker
    process (see `blink.service.retrain`), the CLI in a thread. Raises TooFewRows.
    """
    from blink.model import tracking

    X = dataset.feature_matrix(rows, settings)
    meta = {**meta, "feature_rows": dataset.warm_rows(X)}
    result = fit(X, settings, meta["feature_names"])
    info = tracking.log_to_mlflow(result, settings, meta)
    # the fitted forest stays here (it is in the registry now): unpickling it in the service
    # process would import sklearn and scipy there (~160 MB) for nothing
    return dataclasses.replace(result, model=None, forest=None), info


async def retrain_once(pool, settings, end_time: datetime, executor=None):
    """Read the tape range before `end_time`, then `train_on_tape` in `executor`."""
    rows, meta = await dataset.read_range(pool, settings, end_time)
    return await asyncio.get_running_loop().run_in_executor(executor, train_on_tape, rows,
                                                            settings, meta)
