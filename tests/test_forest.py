"""The compiled forest reproduces sklearn's IsolationForest.score_samples to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from blink.model.forest import CompiledForest, average_path_length


def _training(rng, n=2000, k=12):
    X = rng.normal(size=(n, k))
    X[:, 1] = np.round(X[:, 1])  # repeated values: leaves holding several samples
    X[:, 2] = rng.lognormal(size=n)  # heavy tail
    return X


@pytest.mark.parametrize("n_estimators, max_samples, max_features", [
    (100, 256, 1.0),
    (25, 64, 0.5),
    (10, "auto", 3),
    (40, 1000, 0.8),
])
def test_matches_sklearn_on_10000_rows(n_estimators, max_samples, max_features):
    rng = np.random.default_rng(n_estimators)
    model = IsolationForest(n_estimators=n_estimators, max_samples=max_samples,
                            max_features=max_features, random_state=3).fit(_training(rng))
    forest = CompiledForest.from_sklearn(model)
    rows = rng.normal(scale=2.0, size=(10_000, 12))
    rows[:100] *= 50  # far outside the training range
    np.testing.assert_allclose(forest.score_samples(rows), model.score_samples(rows),
                               rtol=0, atol=1e-12)
    batch = forest.score_samples(rows)
    for i, x in enumerate(rows[:50]):
        assert abs(forest.score_one(x) - model.score_samples(x[None])[0]) <= 1e-12
        assert forest.score_one(x) == batch[i]  # alone or in a batch: the same bits


def test_rows_on_split_thresholds_round_like_sklearn():
    rng = np.random.default_rng(1)
    model = IsolationForest(n_estimators=20, random_state=0).fit(_training(rng))
    forest = CompiledForest.from_sklearn(model)
    # rows built from the thresholds themselves exercise the <= edge and float32 rounding
    internal = ~np.isnan(forest.threshold)
    thr = forest.threshold[internal][:12 * 50].reshape(50, 12)
    rows = np.vstack([thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf)])
    np.testing.assert_allclose(forest.score_samples(rows), model.score_samples(rows),
                               rtol=0, atol=1e-12)


def test_shape_errors_and_one_dimensional_input():
    rng = np.random.default_rng(2)
    model = IsolationForest(n_estimators=5, random_state=0).fit(_training(rng, k=4)[:, :4])
    forest = CompiledForest.from_sklearn(model)
    x = rng.normal(size=4)
    assert forest.score_samples(x).shape == (1,)
    assert forest.score_samples(x)[0] == pytest.approx(forest.score_one(x), abs=1e-15)
    with pytest.raises(ValueError, match="expected 4 features"):
        forest.score_samples(np.zeros((3, 5)))


def test_average_path_length_formula():
    assert average_path_length(1) == 0.0 and average_path_length(2) == 1.0
    assert average_path_length(256) == pytest.approx(10.2447, abs=1e-4)
