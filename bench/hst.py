"""river's HalfSpaceTrees (Tan, Ting & Liu, IJCAI 2011) as the evaluation's third detector.

`river` is a DEV dependency: only `bench` imports this module, never `blink`.

What it is fed: the SAME columns the forest uses (`trainer.used_columns`: every feature live,
a backtest's own on bars and plain series, `blink.backtest.sampling.MODEL_FEATURES`), so
the comparison is one of detectors on equal information, and it follows the feature set when
the detector core changes. (Until session 8 it took the whole vector: on bars it also split on
the made-up trade count and imbalance, and its figures moved when the count's definition did.)
HST splits each feature's range at random and weighs features by the width of their range, so
every column is min-max scaled on the training rows first (river's own advice: a
`MinMaxScaler` in front); a value outside the training range simply falls in the outer half.

How it plugs into the backtest (`Backtest(settings, fit=hst.fit, serve=hst.serve)`), so the
schedule, the threshold rule, the event folding and the scored span are the forest's:

- **fit**, at every retrain of the backtest's event-time schedule: a fresh
  `HalfSpaceTrees(n_trees=N_TREES, height=HEIGHT, window_size=m, seed=random_state)` learns
  the window's warm rows (at most `LEARN_ROWS`, evenly spaced: m of them) through river's
  `learn_one`; after m rows river pivots the masses, so the reference mass of every node is
  the mass of the training window. The threshold is the model's own rule on the scores of the
  window's rows (at most `trainer.SAMPLE_ROWS` of them, evenly spaced, as for the forest):
  the alert budget (`blink.model.budget`), as for the forest and the baseline.
- **serve**: river's `score_one` walks 25 Python trees per row (~60 µs); every trade of a day
  is scored, so the learnt trees are copied into arrays and walked for all rows at once by
  `Scorer` — the same walk (mass × 2^depth, stop below `size_limit`), the same normalisation
  (`tests/unit/test_bench_evaluation.py` pins it equal to `score_one`). score_raw = −(river's
  score): lower = more anomalous, as everywhere in Blink.

Not done: HST's native mode learns every row online (learn after score). Retraining on the same
schedule as the forest is what keeps the three columns of the evaluation comparable, and the
online mode would cost ~100 µs a trade in Python.
"""

from __future__ import annotations

import inspect

import numpy as np

from blink.features import FEATURE_NAMES
from blink.model import served
from blink.model.trainer import SAMPLE_ROWS, FitResult, used_columns

N_TREES, HEIGHT = 25, 8  # the paper's 25 trees; river's default height (2^9 - 1 nodes a tree)
LEARN_ROWS = 1024


class Scorer:
    """The learnt trees as arrays (heap order: children of i at 2i+1, 2i+2); shaped like
    `CompiledForest` (`score_samples`, `score_one`) so a `ServedModel` can serve it."""

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, r_mass: np.ndarray,
                 height: int, size_limit: float, max_score: float, lo: np.ndarray,
                 span: np.ndarray, columns: np.ndarray | None = None) -> None:
        self.feature, self.threshold, self.r_mass = feature, threshold, r_mass
        self.height, self.size_limit, self.max_score = height, size_limit, max_score
        self.lo, self.span = lo, span
        self.n_features = len(lo)
        self.columns = columns  # of the rows it is handed (None: all of them)

    @classmethod
    def from_river(cls, model, lo: np.ndarray, span: np.ndarray,
                   columns: np.ndarray | None = None) -> Scorer:
        n = 2 ** (model.height + 1) - 1
        shape = (len(model.trees), n)
        feature, threshold = np.zeros(shape, np.int64), np.zeros(shape)
        r_mass = np.zeros(shape)
        for t, root in enumerate(model.trees):
            stack = [(root, 0)]
            while stack:
                node, i = stack.pop()
                r_mass[t, i] = node.r_mass
                if hasattr(node, "feature"):  # a branch (leaves have masses only)
                    feature[t, i], threshold[t, i] = node.feature, node.threshold
                    stack += [(node.children[0], 2 * i + 1), (node.children[1], 2 * i + 2)]
        return cls(feature, threshold, r_mass, model.height, model.size_limit,
                   float(model._max_score), lo, span, columns)

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        X = ((X if self.columns is None else X[:, self.columns]) - self.lo) / self.span
        flat, base = X.ravel(), np.arange(len(X)) * X.shape[1]
        total = np.zeros(len(X))
        for t in range(len(self.feature)):
            feature, threshold, mass = self.feature[t], self.threshold[t], self.r_mass[t]
            node = np.zeros(len(X), np.int64)
            alive = np.ones(len(X), bool)
            for depth in range(self.height + 1):
                r = mass.take(node)
                total += r * alive * 2.0 ** depth
                if depth == self.height:
                    break
                alive &= r >= self.size_limit
                right = ~(flat.take(base + feature.take(node)) < threshold.take(node))
                node = 2 * node + 1 + right
        return total / self.max_score - 1.0  # = -(river's 1 - mass / max)

    def score_one(self, x) -> float:
        return float(self.score_samples(x)[0])


def _rows(data, settings) -> tuple[np.ndarray, np.ndarray | None]:
    """(warm rows, their event times or None) of what the backtest hands a custom fit: the
    window itself (main), or a prepared window with `.X` and `.ts` (once the core has them)."""
    if hasattr(data, "X"):
        return np.asarray(data.X, np.float64), getattr(data, "ts", None)
    X = np.asarray(data, np.float64)
    return X[np.isfinite(X).all(axis=1)], None


def threshold(scores: np.ndarray, ts: np.ndarray | None, settings) -> float:
    """The detector's threshold rule applied to `scores` (score_raw, lower = anomalous): the
    alert budget (`blink.model.budget`) over the rows' event times — one row per grid step
    (`feature_cadence_seconds × feature_scale`) when the window carries no times."""
    from blink.model import budget

    if ts is None:
        ts = np.arange(len(scores)) * settings.feature_cadence_seconds * settings.feature_scale
    z, _ = budget.threshold(ts, -scores, settings.event_gap_seconds, settings.alerts_per_day)
    return -float(z)


def _stats(X: np.ndarray, scores: np.ndarray, settings) -> dict:
    """`served.training_stats` as this core defines it: (X, scores) on main; the rewritten
    core takes (scores, ..., scale=)."""
    first = next(iter(inspect.signature(served.training_stats).parameters))
    if first == "X":
        return served.training_stats(X, scores)
    return served.training_stats(scores, scale=settings.feature_scale)


def fit(data, settings, feature_names=FEATURE_NAMES, ts=None) -> FitResult:
    from river.anomaly import HalfSpaceTrees

    X, times = _rows(data, settings)
    times = times if times is not None else ts
    step = max(1, -(-len(X) // LEARN_ROWS))
    columns = np.asarray(used_columns(feature_names, settings), np.int64)
    sample = X[::step][:, columns]
    lo, hi = sample.min(axis=0), sample.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    model = HalfSpaceTrees(n_trees=N_TREES, height=HEIGHT, window_size=len(sample),
                           seed=settings.random_state)
    for row in ((sample - lo) / span).tolist():
        model.learn_one(dict(enumerate(row)))
    scorer = Scorer.from_river(model, lo, span, columns)
    # the threshold on at most SAMPLE_ROWS rows evenly spaced through the window, as the
    # forest's (`trainer.SAMPLE_ROWS`): a 12-hour window of ticks is ~200,000 rows
    pick = np.linspace(0, len(X) - 1, min(len(X), SAMPLE_ROWS)).round().astype(np.int64)
    if times is not None and len(times) != len(X):
        raise ValueError(f"{len(times)} times for {len(X)} rows")
    X, times = X[pick], (times[pick] if times is not None else None)
    scores = scorer.score_samples(X)
    thr = threshold(scores, times, settings)
    return FitResult(forest=scorer, feature_names=tuple(feature_names),
                     threshold=thr, train_stats=_stats(X, scores, settings),
                     metrics={"rows_train": float(len(X)), "threshold": thr},
                     params={"detector": "river HalfSpaceTrees", "n_trees": N_TREES,
                             "height": HEIGHT, "window_size": len(sample)},
                     promote_ok=True, reason="HalfSpaceTrees (no promotion checks)",
                     example=X[-5:].copy())


def serve(result: FitResult, version: str, end: float) -> served.ServedModel:
    return served.ServedModel(result.forest, result.feature_names, result.threshold,
                              label=f"hst v{version}", version=version, trained_at=str(end),
                              train_stats=result.train_stats)
