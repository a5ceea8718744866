"""An isolation forest as flat arrays, grown in C (`grow`, `blink.model._grow`) and walked in C
(`blink.model._forest`).

`grow` builds the forest Blink trains, logs and serves (Liu, Ting & Zhou 2008, as sklearn's
IsolationForest: per tree `max_samples` rows without replacement, a random column, a uniform
split; `blink/model/_grow.c` says how), in under a ms where sklearn's fit took ~90 ms
(`python -m bench fits`): a bar backtest fits up to five forests every 60 rows. `from_sklearn`
compiles a fitted sklearn IsolationForest into the same arrays: the tests' oracle and the
benchmarks' reference.

sklearn's `score_samples` costs milliseconds for one row (input validation, one `apply` call
per tree) and a few µs per row in batches. Here the nodes of every tree live in flat arrays
that a C loop walks: about a µs per row, alone or in a batch (the numpy walk this replaced took
~30 µs alone, 5-8 µs per row in batches). sklearn stays the reference:
`score_samples` reproduces `IsolationForest.score_samples` (to ~1e-15; tests pin 1e-12), NaN
inputs and a single training sample (-0.5 everywhere) included, same sign convention — higher
is more normal, the anomalous end is the low end. A row scores bit-identically alone
(`score_one`) or in a batch: the same C code, the trees summed in the same order.

Layout: nodes are renumbered breadth-first, tree after tree, so that the two children of an
internal node are adjacent, right child first: `next = base[node] + (x[feature[node]] <=
threshold[node])`. A leaf points at itself with threshold NaN. `value[leaf]` is sklearn's
per-leaf path length (depth + c(n_leaf_samples) - 1). A NaN input goes to the child sklearn
chose at training (`nan_left`). Input is rounded through float32 as sklearn does.

The C kernel keeps its own validated copy of the arrays (so it walks without the GIL, and a
corrupt model raises ValueError instead of crashing); the arrays here are made read-only to keep
the two equal, and pickling sends the arrays and rebuilds the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from blink.model import _forest, _grow

_ARRAYS = (("feature", np.int64), ("threshold", np.float64), ("base", np.int64),
           ("value", np.float64), ("nan_left", np.bool_), ("roots", np.int64))
_NATIVE = (np.dtype(np.float64), np.dtype(np.float32))  # the dtypes the kernel reads


@dataclass(frozen=True, slots=True)
class CompiledForest:
    feature: np.ndarray  # int64 per node: column of X (already mapped through the tree's subset)
    threshold: np.ndarray  # float64 per node; NaN on leaves
    base: np.ndarray  # int64 per node: right child (left child = base + 1); itself on leaves
    value: np.ndarray  # float64 per node: path length credited when the walk ends here
    roots: np.ndarray  # int64 per tree
    depth: int  # levels of the deepest tree
    denominator: float  # n_trees * c(max_samples)
    n_features: int
    nan_left: np.ndarray  # bool per node: a NaN goes left (sklearn's missing_go_to_left)
    _kernel: _forest.Forest = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, dtype in _ARRAYS:
            a = np.ascontiguousarray(getattr(self, name), dtype)
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        object.__setattr__(self, "_kernel", _forest.Forest(
            self.feature, self.threshold, self.base, self.value, self.nan_left, self.roots,
            int(self.n_features), float(self.denominator)))

    def __reduce__(self):
        # the kernel does not pickle: send the fields, the receiver rebuilds (and re-checks) it
        return CompiledForest, (self.feature, self.threshold, self.base, self.value, self.roots,
                                self.depth, self.denominator, self.n_features, self.nan_left)

    @classmethod
    def from_sklearn(cls, iforest) -> CompiledForest:
        """Compile a fitted `sklearn.ensemble.IsolationForest`.

        All trees at once, one numpy step per level: node ids are first made global (tree
        offsets), the breadth-first walk collects each level of every tree (right child then
        left, so siblings end up adjacent), and a stable sort by tree puts each tree's levels
        back together — the same order as a per-tree breadth-first queue."""
        trees = [est.tree_ for est in iforest.estimators_]
        counts = np.array([t.node_count for t in trees], np.int64)
        offsets = np.cumsum(counts) - counts
        shift = np.repeat(offsets, counts)
        left = np.concatenate([t.children_left for t in trees]).astype(np.int64)
        right = np.concatenate([t.children_right for t in trees]).astype(np.int64)
        inner = left != -1
        left, right = np.where(inner, left + shift, -1), np.where(inner, right + shift, -1)
        # a tree's feature indexes its own column subset (leaves hold -2: mapped, then dropped)
        column = np.concatenate([np.asarray(cols)[np.maximum(t.feature, 0)] for t, cols in
                                 zip(trees, iforest.estimators_features_, strict=True)])
        threshold = np.concatenate([t.threshold for t in trees])
        nan_left = np.concatenate([t.missing_go_to_left for t in trees]) != 0
        # sklearn's own per-node path lengths, computed as sklearn does (per element)
        value = (np.concatenate(iforest._decision_path_lengths)
                 + np.concatenate(iforest._average_path_length_per_tree) - 1.0)

        levels, level = [], offsets
        while level.size:
            levels.append(level)
            parents = level[inner[level]]
            level = np.column_stack((right[parents], left[parents])).ravel()
        order = np.concatenate(levels)
        order = order[np.argsort(np.repeat(np.arange(len(trees)), counts)[order], kind="stable")]

        n = len(order)
        slot = np.empty(n, np.int64)
        slot[order] = np.arange(n)
        inner = inner[order]  # leaves read slot[-1] below: harmless, `where` drops it
        c = average_path_length(float(iforest._max_samples))
        return cls(np.where(inner, column[order], 0),
                   np.where(inner, threshold[order], np.nan),
                   np.where(inner, slot[right[order]], np.arange(n)),
                   value[order], offsets, len(levels) - 1,
                   len(trees) * c, int(iforest.n_features_in_), inner & nan_left[order])

    def arrays(self) -> dict[str, np.ndarray | int | float]:
        """Every field, as `CompiledForest(**arrays)` takes them back (what MLflow logs)."""
        names = ("feature", "threshold", "base", "value", "roots", "depth", "denominator",
                 "n_features", "nan_left")
        return dict(zip(names, self.__reduce__()[1], strict=True))

    def save(self, path) -> None:
        """Write the arrays to an .npz file (what MLflow logs: no pickle in it)."""
        np.savez(path, **self.arrays())

    @classmethod
    def load(cls, path) -> CompiledForest:
        """Read `save`'s file (pickles refused); a corrupt forest raises ValueError."""
        with np.load(path, allow_pickle=False) as z:
            fields = {name: z[name] for name in z.files}
        for name in ("depth", "n_features"):
            fields[name] = int(fields[name])
        fields["denominator"] = float(fields["denominator"])
        return cls(**fields)

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def score_one(self, x) -> float:
        """score_samples of one row (list, tuple or array of n_features values)."""
        try:  # a list of floats or a float64 array: straight to C, no array to build
            return self._kernel.score_one(x)
        except TypeError:  # another dtype, a strided array, a Series...
            return self._kernel.score_one(_rows(x))

    def score_samples(self, X) -> np.ndarray:
        """Like `IsolationForest.score_samples`: higher = more normal, in [-1, 0)."""
        X = _rows(X)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got shape {X.shape}")
        out = np.empty(len(X))
        self._kernel.score(X, out)
        return out


def grow(X, n_trees: int, max_samples: int, max_features: float = 1.0,
         seed: int | None = 0) -> CompiledForest:
    """An isolation forest of `n_trees` trees fitted on the rows of X (n x k; NaN allowed,
    +-inf not): each tree on min(max_samples, n) rows drawn without replacement and, with
    max_features < 1, on max(1, int(max_features * k)) of the columns. The same X and seed
    give the same forest (seed None: a fresh one)."""
    X = np.ascontiguousarray(X, np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got shape {X.shape}")
    if n_trees < 1:
        raise ValueError(f"n_trees: expected >= 1, got {n_trees}")
    m = min(int(max_samples), len(X))
    room = n_trees * max(2 * m - 1, 1)
    nodes = {name: np.empty(room, dtype) for name, dtype in _ARRAYS if name != "roots"}
    roots = np.empty(n_trees, np.int64)
    n_sub = max(1, int(max_features * X.shape[1]))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    n, height, denominator = _grow.grow(X, nodes["feature"], nodes["threshold"], nodes["base"],
                                        nodes["value"], nodes["nan_left"], roots,
                                        max(m, 1), n_sub, int(seed) % 2**64)
    return CompiledForest(nodes["feature"][:n].copy(), nodes["threshold"][:n].copy(),
                          nodes["base"][:n].copy(), nodes["value"][:n].copy(), roots, height,
                          denominator, X.shape[1], nodes["nan_left"][:n].copy())


def _rows(X) -> np.ndarray:
    """X as a C-contiguous float64 or float32 array, what the kernel reads; other dtypes are
    converted to float32, as sklearn does (the kernel rounds float64 through float32)."""
    X = np.asarray(X)
    return np.ascontiguousarray(X, X.dtype if X.dtype in _NATIVE else np.float32)


def average_path_length(n: float) -> float:
    """c(n): the mean path length of an unsuccessful BST search (sklearn's formula)."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n
