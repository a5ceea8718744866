"""The compiled tails scorer (`blink/model/_tails.c`) against the numpy formulas
(`tests.support.tails_reference`): the same S_j and score_raw on random tables and rows, and
every malformed table or input refused with a clear error."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blink.model import tails
from tests.support import tails_reference as ref
from tests.support.models import make_served

FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def tables(draw) -> dict:
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 12))
    # few distinct values: ties within a body and between levels
    pool = draw(st.lists(FINITE, min_size=1, max_size=6))
    body = [sorted(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)))
            for _ in range(k)]
    levels = sorted(draw(st.lists(st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.5, 0.9, 0.99, 1.0])
                                  | st.floats(0.0, 1.0), min_size=n, max_size=n)))
    xi = draw(st.lists(st.sampled_from([0.0, 0.0]) | st.floats(0.0, 2.0)
                       | st.floats(-1.0, 0.0), min_size=k, max_size=k))
    sigma = draw(st.lists(st.floats(1e-12, 1e3), min_size=k, max_size=k))
    return {"two_sided": draw(st.lists(st.booleans(), min_size=k, max_size=k)),
            "levels": levels, "body": body, "xi": xi, "sigma": sigma,
            "tail": draw(st.sampled_from([0.01, 1.0]) | st.floats(1e-6, 1.0))}


@st.composite
def case(draw) -> tuple[dict, np.ndarray]:
    t = draw(tables())
    k = len(t["body"])
    seen = sorted({v for b in t["body"] for v in b})
    value = (st.sampled_from(seen)  # exactly at a quantile
             | st.sampled_from([-v for v in seen])  # folded onto one
             | st.builds(lambda a, b: a + b, st.sampled_from(seen), st.floats(-2.0, 2.0))
             | st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -1e300])
             | FINITE)  # below the body, in it, in the tail
    rows = draw(st.integers(1, 6))
    A = [[draw(value) for _ in range(k)] for _ in range(rows)]
    return t, np.array(A, dtype=np.float64)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


@settings(max_examples=400, deadline=None)
@given(case())
def test_compiled_equals_the_numpy_formulas(c):
    t, A = c
    compiled = tails.Tails(t)
    want = ref.surprise(t, A)
    assert_same(compiled.surprise(A), want)
    with np.errstate(invalid="ignore"):
        assert_same(compiled.score(A), ref.score(t, A))
    # the last column handed over as a forest's score_samples: negated
    assert_same(compiled.surprise(A[:, :-1], -A[:, -1]), want)
    assert_same(compiled.score(A[:, :-1], -A[:, -1]), compiled.score(A))


def test_nan_gives_nan_surprise_and_nan_score():
    t = tails.fit(np.random.default_rng(0).normal(size=(2000, 3)), [True, False, True])
    A = np.array([[np.nan, 0.1, 0.2], [0.3, 0.1, 0.2]])
    s = tails.Tails(t).surprise(A)
    assert np.isnan(s[0, 0]) and not np.isnan(s[0, 1:]).any() and not np.isnan(s[1]).any()
    raw = tails.Tails(t).score(A)
    assert np.isnan(raw[0]) and raw[1] <= 0  # as `combined`: NaN propagates through the max
    assert np.isnan(ref.combined(s)[0])


def test_served_model_scores_through_the_compiled_path():
    served = make_served(n=20_000)
    X = np.random.default_rng(4).normal(0, 2, (300, len(served.feature_names)))
    X[::7, 1] = np.nan
    cols = served.train_stats["columns"]
    used = X[:, cols]
    A = np.column_stack([used, -served.forest.score_samples(used)])
    want = ref.score(served.train_stats["tails"], A)
    assert_same(served.score(X), want)
    assert_same(served.surprises(X), ref.surprise(served.train_stats["tails"], A))
    assert served.score_one(X[3]) == served.score(X[3:4])[0]  # alone as in a batch
    assert_same(ref.NumpyServed.of(served).score(X), want)  # the benchmarks' baseline
    # pickled or copied (the model worker, one copy per product): rebuilt, same scores
    for clone in (pickle.loads(pickle.dumps(served)), copy.deepcopy(served)):
        assert_same(clone.score(X), want)


def good() -> dict:
    return {"two_sided": [True, False], "levels": [0.0, 0.5, 0.99],
            "body": [[0.0, 1.0, 2.0], [-1.0, 0.0, 3.0]], "xi": [0.1, 0.0], "sigma": [1.0, 2.0],
            "tail": 0.01}


@pytest.mark.parametrize(("change", "message"), [
    ({"body": [[0.0, 1.0, 2.0], [0.0, 1.0]]}, "inhomogeneous"),
    ({"body": [[0.0, 1.0], [0.0, 1.0]]}, "levels: expected a 1-D array of 2 items"),
    ({"body": [[0.0, 2.0, 1.0], [0.0, 1.0, 2.0]]}, "nondecreasing .column 0, item 2: 1.0"),
    ({"body": [[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]]}, "finite and nondecreasing"),
    ({"body": [[0.0, 1.0, np.inf], [0.0, 1.0, 2.0]]}, "finite and nondecreasing"),
    ({"body": [[], []], "levels": []}, "at least one quantile"),
    ({"body": [], "two_sided": [], "xi": [], "sigma": []}, "body: expected a 2-D array"),
    ({"body": [0.0, 1.0, 2.0]}, "body: expected a 2-D array"),
    ({"levels": [0.0, 0.99, 0.5]}, "levels must be nondecreasing in .0, 1."),
    ({"levels": [-0.1, 0.5, 0.99]}, "levels must be nondecreasing in .0, 1."),
    ({"levels": [0.0, 0.5, np.nan]}, "levels must be nondecreasing in .0, 1."),
    ({"xi": [0.1]}, "xi: expected a 1-D array of 2 items"),
    ({"xi": [0.1, np.nan]}, "xi must be finite"),
    ({"sigma": [1.0, 0.0]}, "sigma must be finite and > 0"),
    ({"sigma": [-1.0, 1.0]}, "sigma must be finite and > 0"),
    ({"sigma": [1.0, np.inf]}, "sigma must be finite and > 0"),
    ({"two_sided": [True]}, "two_sided: expected a 1-D array of 2 items"),
    ({"tail": 0.0}, "tail must be in .0, 1."),
    ({"tail": 1.5}, "tail must be in .0, 1."),
    ({"tail": np.nan}, "tail must be in .0, 1."),
    ({"tail": "x"}, "could not convert"),
    ({"xi": None}, "malformed tail table"),
])
def test_a_malformed_table_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        tails.Tails({**good(), **change})


@pytest.mark.parametrize("missing", ["two_sided", "levels", "body", "xi", "sigma", "tail"])
def test_a_missing_table_is_named(missing):
    t = good()
    del t[missing]
    with pytest.raises(ValueError, match=f"no '{missing}'"):
        tails.Tails(t)


def test_inputs_of_the_wrong_shape_are_refused():
    t = tails.Tails(good())
    kernel = t._kernel
    with pytest.raises(ValueError, match="A: expected a 2-D array of 2 columns"):
        t.surprise(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="A: expected a 2-D array of 1 columns"):
        t.score(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="forest: expected a 1-D array of 3 items"):
        t.score(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(ValueError, match=r"out: expected a 2-D array of shape \(3, 2\)"):
        kernel.surprise(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="out: expected a 1-D array of 3 items"):
        kernel.score(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(TypeError, match="A: expected float64"):
        kernel.score(np.zeros((3, 2), np.float32), np.zeros(3))
    with pytest.raises(TypeError, match="A: expected a C-contiguous array"):
        kernel.score(np.zeros((2, 3)).T, np.zeros(3))
    with pytest.raises(TypeError, match="out: expected a C-contiguous writable array"):
        out = np.zeros(3)
        out.flags.writeable = False
        kernel.score(np.zeros((3, 2)), out)
    assert t.score(np.zeros((0, 2))).shape == (0,)
