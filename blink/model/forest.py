"""A fitted IsolationForest compiled to flat numpy arrays: all trees walked at once.

sklearn's `score_samples` costs milliseconds for one row (input validation, one `apply` call
per tree). Here the nodes of every tree live in four flat arrays and one numpy step moves
every tree one level down, so a row costs `max_depth` (8 for max_samples=256) vectorised steps.
sklearn stays the trainer and the reference: `score_samples` reproduces
`IsolationForest.score_samples` (to ~1e-15; tests pin 1e-12), same sign convention — higher
is more normal, the anomalous end is the low end.

Layout: nodes are renumbered breadth-first so that the two children of an internal node are
adjacent, right child first: `next = base[node] + (x[feature[node]] <= threshold[node])`.
A leaf points at itself with threshold NaN (the comparison is always False), so rows that
reach a leaf early simply stay there. `value[leaf]` is sklearn's per-leaf path length
(depth + c(n_leaf_samples) - 1). Input is rounded through float32 as sklearn does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

CHUNK = 2048  # rows walked together in a batch (bounds the temporary arrays)


@dataclass(frozen=True, slots=True)
class CompiledForest:
    feature: np.ndarray  # int64 per node: column of X (already mapped through the tree's subset)
    threshold: np.ndarray  # float64 per node; NaN on leaves
    base: np.ndarray  # int64 per node: right child (left child = base + 1); itself on leaves
    value: np.ndarray  # float64 per node: path length credited when the walk ends here
    roots: np.ndarray  # int64 per tree
    depth: int  # levels to walk (the deepest tree)
    denominator: float  # n_trees * c(max_samples)
    n_features: int

    @classmethod
    def from_sklearn(cls, iforest) -> CompiledForest:
        """Compile a fitted `sklearn.ensemble.IsolationForest`."""
        feature, threshold, base, value, roots = [], [], [], [], []
        offset, depth = 0, 0
        pairs = zip(iforest.estimators_, iforest.estimators_features_, strict=True)
        for tree_idx, (est, cols) in enumerate(pairs):
            t = est.tree_
            # sklearn's own per-node path lengths, summed in sklearn's order
            leaf_value = (iforest._decision_path_lengths[tree_idx]
                          + iforest._average_path_length_per_tree[tree_idx] - 1.0)
            order, slot = _breadth_first(t.children_left, t.children_right)
            n = len(order)
            f = np.zeros(n, np.int64)
            thr = np.full(n, np.nan)
            b = np.arange(n, dtype=np.int64)
            for new, old in enumerate(order):
                left = t.children_left[old]
                if left != -1:
                    f[new] = cols[t.feature[old]]
                    thr[new] = t.threshold[old]
                    b[new] = slot[t.children_right[old]]
            feature.append(f)
            threshold.append(thr)
            base.append(b + offset)
            value.append(leaf_value[order])
            roots.append(offset)
            offset += n
            depth = max(depth, t.max_depth)
        c = average_path_length(float(iforest._max_samples))
        return cls(np.concatenate(feature), np.concatenate(threshold), np.concatenate(base),
                   np.concatenate(value), np.asarray(roots, np.int64), depth,
                   len(iforest.estimators_) * c, int(iforest.n_features_in_))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf reached in every tree: (n_rows, n_trees) node indexes (X already float64,
        C-contiguous). Flat `take` gathers: X as one vector, row offsets added once."""
        n = len(X)
        flat = X.reshape(-1)
        offsets = np.arange(0, n * self.n_features, self.n_features)[:, None]
        nodes = np.tile(self.roots, (n, 1))
        feature, threshold, base = self.feature, self.threshold, self.base
        for _ in range(self.depth):
            decide = flat.take(offsets + feature.take(nodes)) <= threshold.take(nodes)
            nodes = base.take(nodes) + decide
        return nodes

    def score_one(self, x: np.ndarray) -> float:
        """score_samples of one row (1-D, n_features): the same walk on 1-D arrays, then the
        same sum and finish as a batch, so a row scores bit-identically alone or in a batch."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        nodes = self.roots
        feature, threshold, base = self.feature, self.threshold, self.base
        for _ in range(self.depth):
            nodes = base.take(nodes) + (x.take(feature.take(nodes)) <= threshold.take(nodes))
        return float(self._scores(nodes[None, :])[0])

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Like `IsolationForest.score_samples`: higher = more normal, in [-1, 0)."""
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.shape[1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {X.shape[1]}")
        return np.concatenate([self._scores(self.leaves(X[start:start + CHUNK]))
                               for start in range(0, len(X), CHUNK)] or [np.empty(0)])

    def _scores(self, nodes: np.ndarray) -> np.ndarray:
        """Scores from the leaves reached, (n_rows, n_trees) -> n_rows."""
        return self._finish(self.value.take(nodes).sum(axis=1))

    def _finish(self, depths):
        if self.denominator == 0:  # a single training sample: sklearn scores it -1
            return -np.ones_like(depths)
        return -(2.0 ** -(depths / self.denominator))


def _breadth_first(left: np.ndarray, right: np.ndarray) -> tuple[list[int], dict[int, int]]:
    """Old node ids in the new order, and old id -> new id; siblings adjacent, right first."""
    order, slot, queue = [0], {0: 0}, deque([0])
    while queue:
        node = queue.popleft()
        if left[node] != -1:
            for child in (right[node], left[node]):
                slot[int(child)] = len(order)
                order.append(int(child))
                queue.append(int(child))
    return order, slot


def average_path_length(n: float) -> float:
    """c(n): the mean path length of an unsuccessful BST search (sklearn's formula)."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n
