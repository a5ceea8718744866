"""The prototype isolation-forest builder of `bench.fits` loads into a real sklearn forest."""

from __future__ import annotations

import numpy as np

from bench import fits
from blink.model.forest import CompiledForest


def test_built_trees_load_into_sklearn_and_score_like_the_compiled_forest():
    X = np.random.default_rng(2).standard_normal((1500, 6))
    X[:, 5] = 1.0  # a constant column is never split on
    nodes = fits.build(X, trees=20, samples=128, seed=3)
    assert not np.any(nodes["feature"] == 5)
    assert nodes["depth"].max() <= 7  # ceil(log2(128))
    forest = fits.to_sklearn(nodes, 6)
    ours = forest.score_samples(X[:200])
    compiled = CompiledForest.from_sklearn(forest).score_samples(X[:200])
    np.testing.assert_allclose(ours, compiled, atol=1e-12)
    assert ours[np.argmax(np.abs(X[:200, :5]).max(axis=1))] < np.median(ours)  # outlier low
    for est in forest.estimators_:  # every leaf of a tree holds its node's samples
        t = est.tree_
        leaves = t.children_left == -1
        assert t.n_node_samples[leaves].sum() == 128
