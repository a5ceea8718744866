"""The compiled forest reproduces sklearn's IsolationForest.score_samples to 1e-12."""

from __future__ import annotations

import pickle
from collections import deque

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from blink.model import _forest
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


# ---------------------------------------------------------------- C kernel

def _reference_compile(iforest):
    """The per-node Python compile that from_sklearn replaced (a breadth-first queue per tree,
    right child then left) plus nan_left: from_sklearn must build exactly these arrays."""
    arrays, offset = [[], [], [], [], [], []], 0
    pairs = zip(iforest.estimators_, iforest.estimators_features_, strict=True)
    for i, (est, cols) in enumerate(pairs):
        t = est.tree_
        order, queue = [0], deque([0])
        while queue:
            node = queue.popleft()
            if t.children_left[node] != -1:
                order += [t.children_right[node], t.children_left[node]]
                queue += [t.children_right[node], t.children_left[node]]
        slot = {int(old): new for new, old in enumerate(order)}
        for new, o in enumerate(order):
            inner = t.children_left[o] != -1
            arrays[0].append(cols[t.feature[o]] if inner else 0)
            arrays[1].append(t.threshold[o] if inner else np.nan)
            arrays[2].append(offset + (slot[t.children_right[o]] if inner else new))
            arrays[5].append(bool(inner and t.missing_go_to_left[o]))
        leaf_value = (iforest._decision_path_lengths[i]
                      + iforest._average_path_length_per_tree[i] - 1.0)
        arrays[3] += list(leaf_value[order])
        arrays[4].append(offset)
        offset += len(order)
    return arrays


FORESTS = [  # (n_estimators, max_samples, max_features, n_train)
    (100, 256, 1.0, 2000),
    (30, 64, 0.4, 500),  # feature subsets: columns mapped through estimators_features_
    (17, 2, 1.0, 300),  # tiny trees, n_trees not a multiple of the kernel's lanes
    (5, 3, 2, 40),
    (9, "auto", 1.0, 1),  # a single training sample: denominator 0, sklearn scores -0.5
    (4, "auto", 1.0, 3),  # identical samples: every tree is a single leaf
]


def _fit(n_estimators, max_samples, max_features, n_train, seed=7):
    rng = np.random.default_rng(seed)
    X = _training(rng, n=max(n_train, 2))[:n_train]
    if n_train == 3:
        X = np.repeat(X[:1], 3, axis=0)
    return IsolationForest(n_estimators=n_estimators, max_samples=max_samples,
                           max_features=max_features, random_state=seed).fit(X)


@pytest.mark.parametrize("params", FORESTS)
def test_from_sklearn_builds_the_reference_arrays(params):
    model = _fit(*params)
    forest = CompiledForest.from_sklearn(model)
    feature, threshold, base, value, roots, nan_left = _reference_compile(model)
    np.testing.assert_array_equal(forest.feature, feature)
    np.testing.assert_array_equal(forest.threshold, threshold)  # NaN == NaN here
    np.testing.assert_array_equal(forest.base, base)
    np.testing.assert_array_equal(forest.value, value)
    np.testing.assert_array_equal(forest.roots, roots)
    np.testing.assert_array_equal(forest.nan_left, nan_left)
    assert forest.depth == max(est.tree_.max_depth for est in model.estimators_)
    assert forest.n_features == 12 and forest.n_trees == params[0]


@pytest.mark.parametrize("params", FORESTS)
def test_kernel_matches_sklearn_alone_and_in_batches(params):
    model = _fit(*params)
    forest = CompiledForest.from_sklearn(model)
    rng = np.random.default_rng(11)
    rows = rng.normal(scale=3.0, size=(301, 12))  # 301: a last partial block of rows
    rows[::7, ::3] = np.nan
    rows[1::7, 5] = np.inf
    batch = forest.score_samples(rows)
    np.testing.assert_allclose(batch, model.score_samples(rows), rtol=0, atol=1e-12)
    for i in range(0, len(rows), 5):
        assert forest.score_one(rows[i]) == batch[i]
        assert forest.score_one(rows[i].tolist()) == batch[i]
        assert forest.score_one(tuple(rows[i])) == batch[i]
    # float32 and integer input are rounded once, as sklearn does; strided input is copied
    np.testing.assert_array_equal(forest.score_samples(rows.astype(np.float32)), batch)
    ints = rng.integers(-5, 6, size=(40, 12))
    np.testing.assert_allclose(forest.score_samples(ints), model.score_samples(ints),
                               rtol=0, atol=1e-12)
    assert forest.score_one(ints[0]) == forest.score_samples(ints[:1])[0]
    wide = np.hstack([rows, rows])
    np.testing.assert_array_equal(forest.score_samples(wide[:, :12]), batch)
    np.testing.assert_array_equal(forest.score_samples(np.asfortranarray(rows)), batch)
    assert forest.score_one(wide[3, ::2]) == forest.score_samples(wide[3:4, ::2])[0]


def _small_forest():
    rng = np.random.default_rng(5)
    model = IsolationForest(n_estimators=6, max_samples=32, random_state=1).fit(
        _training(rng, n=200))
    return CompiledForest.from_sklearn(model), rng.normal(size=(40, 12))


def _fields(forest, **changes):
    names = ("feature", "threshold", "base", "value", "roots", "depth", "denominator",
             "n_features", "nan_left")
    fields = {n: getattr(forest, n) for n in names}
    fields.update(changes)
    return fields


def test_pickle_round_trip_rebuilds_the_kernel():
    forest, rows = _small_forest()
    back = pickle.loads(pickle.dumps(forest))
    for name in ("feature", "threshold", "base", "value", "roots", "nan_left"):
        np.testing.assert_array_equal(getattr(back, name), getattr(forest, name))
    assert (back.depth, back.denominator, back.n_features) == (
        forest.depth, forest.denominator, forest.n_features)
    np.testing.assert_array_equal(back.score_samples(rows), forest.score_samples(rows))
    assert back.score_one(rows[0]) == forest.score_one(rows[0])
    # the kernel holds a copy of the arrays: they are read-only so the two can't drift apart
    with pytest.raises(ValueError, match="read-only"):
        back.threshold[0] = 0.0


def _corrupt(forest, name, index, value):
    a = getattr(forest, name).copy()
    a[index] = value
    return _fields(forest, **{name: a})


def test_corrupt_arrays_raise_value_error():
    forest, rows = _small_forest()
    internal = np.flatnonzero(forest.base != np.arange(len(forest.base)))
    node, last = int(internal[3]), len(forest.base)
    cases = [
        ("base", node, node - 1, "base"),  # a cycle: children before their node
        ("base", node, node, None),  # turned into a leaf: legal, only the scores change
        ("base", node, last - 1, "base"),  # its left child would be past the end
        ("base", node, last + 100, "base"),
        ("feature", node, 12, "feature"),
        ("feature", node, -1, "feature"),
        ("roots", 2, last, "roots"),
        ("roots", 0, -1, "roots"),
    ]
    for name, index, value, error in cases:
        fields = _corrupt(forest, name, index, value)
        if error is None:
            CompiledForest(**fields).score_samples(rows)
            continue
        with pytest.raises(ValueError, match=error):
            CompiledForest(**fields)
    with pytest.raises(ValueError, match="threshold: expected a 1-D array of"):
        CompiledForest(**_fields(forest, threshold=forest.threshold[:-1]))
    with pytest.raises(ValueError, match="n_features"):
        CompiledForest(**_fields(forest, n_features=0))
    # a tampered pickle: unpickling re-validates
    _, args = forest.__reduce__()
    tampered = pickle.dumps(_Pickles(CompiledForest, (*args[:2], np.zeros_like(forest.base),
                                                      *args[3:])))
    with pytest.raises(ValueError, match="corrupt forest: base"):
        pickle.loads(tampered)


class _Pickles:
    """Pickles as `cls(*args)`, whatever args are (a payload written by someone else)."""

    def __init__(self, cls, args):
        self.cls, self.args = cls, args

    def __reduce__(self):
        return self.cls, self.args


def test_kernel_checks_its_inputs():
    forest, rows = _small_forest()
    kernel = forest._kernel
    out = np.empty(len(rows))
    with pytest.raises(TypeError, match="X: expected float64 or float32"):
        kernel.score(rows.astype(np.int64), out)
    with pytest.raises(TypeError, match="X: expected a C-contiguous"):
        kernel.score(np.asfortranarray(rows), out)
    with pytest.raises(ValueError, match=r"X: expected an \(n, 12\) array"):
        kernel.score(rows[:, :5].copy(), out)
    with pytest.raises(ValueError, match="out: expected a 1-D array of 40 items"):
        kernel.score(rows, out[:-1])
    with pytest.raises(TypeError, match="out: expected a C-contiguous writable"):
        kernel.score(rows, _read_only(len(rows)))
    with pytest.raises(TypeError, match="out: expected float64"):
        kernel.score(rows, np.empty(len(rows), np.float32))
    with pytest.raises(ValueError, match="x: expected 12 features, got 11"):
        kernel.score_one(rows[0, :11].copy())
    with pytest.raises(ValueError, match="x: expected 12 features, got 13"):
        forest.score_one([0.0] * 13)
    with pytest.raises(ValueError, match="could not convert"):
        forest.score_one(["a"] * 12)
    with pytest.raises(TypeError, match="feature: expected int64"):
        _forest.Forest(forest.feature.astype(np.float64), forest.threshold, forest.base,
                       forest.value, forest.nan_left, forest.roots, 12, 1.0)
    kernel.score(rows, out)  # nothing above left the kernel in a bad state
    np.testing.assert_array_equal(out, forest.score_samples(rows))


def _read_only(n):
    a = np.empty(n)
    a.flags.writeable = False
    return a


def test_empty_and_misshapen_input():
    forest, rows = _small_forest()
    assert forest.score_samples(np.empty((0, 12))).shape == (0,)
    with pytest.raises(ValueError, match="expected 12 features"):
        forest.score_samples(np.empty(0))
    with pytest.raises(ValueError, match="expected 12 features"):
        forest.score_samples(np.zeros((2, 3, 12)))
