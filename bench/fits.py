"""`python -m bench fits`: what one retrain's forest costs, and the options to make it cheaper.

Why: a backtest of bars or a series refits every 60 rows (`blink.backtest.sampling`), so the
fit bounds its rows per second: 30,240 one-minute bars are 500 fits. Measured on one window
like a bar backtest's (ROWS × FEATURES, standard normal, seeded), best of REPEATS:

- sklearn `IsolationForest.fit` as `trainer.fit` calls it (100 trees × 256), with fewer rows,
  fewer trees, and `n_jobs=2`;
- `build`: a prototype isolation-forest builder here, numpy only, every tree at once level by
  level (the same rule as sklearn's: each tree draws `max_samples` rows without replacement;
  each node picks a feature uniformly among those not constant in it and a threshold
  uniformly between their min and max; depth ≤ ceil(log2(max_samples)); left when
  x <= threshold), its trees then loaded into a REAL `sklearn.ensemble.IsolationForest`
  (`to_sklearn`), so MLflow would still log an IsolationForest and sklearn's `score_samples`
  stays the reference (checked against the compiled forest here).

The trees differ from sklearn's for the same seed (another random stream): same distribution,
not the same forest. Nothing in `blink` uses this yet (see the report in docs/benchmarks.md).
"""

from __future__ import annotations

import math
import time

import numpy as np

from bench.report import table, write_section

ROWS, FEATURES, TREES, SAMPLES = 3000, 10, 100, 256
REPEATS = 15  # the box is shared: best of many


def build(X: np.ndarray, trees: int = TREES, samples: int = SAMPLES, seed: int = 0) -> dict:
    """Every node of `trees` isolation trees: arrays tree, heap id (children 2h+1, 2h+2),
    feature (-2 at leaves), threshold, n_node_samples, depth."""
    rng = np.random.default_rng(seed)
    n, k = X.shape
    m = min(samples, n)
    depth_max = math.ceil(math.log2(max(m, 2)))
    rows = np.argpartition(rng.random((trees, n)), m - 1, axis=1)[:, :m].ravel()
    starts = np.arange(0, trees * m, m)  # samples grouped by node: one segment a node
    tree, heap = np.arange(trees), np.zeros(trees, np.int64)
    out: dict[str, list] = {key: [] for key in ("tree", "heap", "feature", "threshold", "n",
                                                "depth")}
    for depth in range(depth_max + 1):
        sizes = np.diff(np.append(starts, len(rows)))
        values = X[rows]
        lo, hi = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
        spread = hi > lo  # (segments, k): features not constant in the node
        can = spread.any(axis=1) & (sizes >= 2) & (depth < depth_max)
        # a feature uniformly among the node's non-constant ones
        pick = (rng.random(len(starts)) * spread.sum(axis=1)).astype(np.int64)
        feature = np.argmax(np.cumsum(spread, axis=1) > pick[:, None], axis=1)
        seg_lo, seg_hi = lo[np.arange(len(starts)), feature], hi[np.arange(len(starts)), feature]
        threshold = seg_lo + rng.random(len(starts)) * (seg_hi - seg_lo)
        for key, v in (("tree", tree), ("heap", heap), ("feature", np.where(can, feature, -2)),
                       ("threshold", np.where(can, threshold, -2.0)), ("n", sizes),
                       ("depth", np.full(len(starts), depth))):
            out[key].append(v)
        if not can.any():
            break
        seg = np.repeat(np.arange(len(starts)), sizes)
        keep = can[seg]
        key = seg * 2 + (values[np.arange(len(rows)), feature[seg]] > threshold[seg])
        order = np.argsort(key[keep], kind="stable")
        rows, key = rows[keep][order], key[keep][order]
        starts = np.flatnonzero(np.diff(key, prepend=-1))
        parent, side = key[starts] // 2, key[starts] % 2
        tree, heap = tree[parent], 2 * heap[parent] + 1 + side
    return {key: np.concatenate(v) for key, v in out.items()} | {"max_depth": depth_max,
                                                                  "samples": m, "trees": trees}


def to_sklearn(nodes: dict, n_features: int, feature_names=None):
    """The trees of `build` as a fitted `sklearn.ensemble.IsolationForest` (what `fit` sets)."""
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._iforest import _average_path_length
    from sklearn.tree import ExtraTreeRegressor
    from sklearn.tree._tree import NODE_DTYPE, Tree

    order = np.lexsort((nodes["heap"], nodes["tree"]))  # per tree, root first
    tree, heap = nodes["tree"][order], nodes["heap"][order]
    key = tree * (1 << 40) + heap
    bounds = np.searchsorted(tree, np.arange(nodes["trees"] + 1))
    estimators = []
    for t in range(nodes["trees"]):
        a, b = bounds[t], bounds[t + 1]
        sel = order[a:b]
        feature = nodes["feature"][sel]
        inner = feature >= 0
        left = np.where(inner, np.searchsorted(key, t * (1 << 40) + 2 * heap[a:b] + 1) - a, -1)
        right = np.where(inner, left + 1, -1)  # siblings are adjacent in heap order
        arr = np.zeros(b - a, dtype=NODE_DTYPE)
        arr["left_child"], arr["right_child"], arr["feature"] = left, right, feature
        arr["threshold"] = nodes["threshold"][sel]
        arr["n_node_samples"] = nodes["n"][sel]
        arr["weighted_n_node_samples"] = nodes["n"][sel]
        tree_ = Tree(n_features, np.array([1], dtype=np.intp), 1)
        tree_.__setstate__({"max_depth": int(nodes["depth"][sel].max()), "node_count": b - a,
                            "nodes": arr, "values": np.zeros((b - a, 1, 1))})
        est = ExtraTreeRegressor(max_features=1, max_depth=nodes["max_depth"])
        est.tree_, est.n_features_in_, est.n_outputs_, est.max_features_ = tree_, n_features, 1, 1
        estimators.append(est)
    forest = IsolationForest(n_estimators=nodes["trees"], max_samples=nodes["samples"])
    forest.estimators_ = estimators
    forest.estimator_ = ExtraTreeRegressor(max_features=1)
    forest.estimators_features_ = [np.arange(n_features)] * nodes["trees"]
    forest.n_features_in_, forest.max_samples_ = n_features, nodes["samples"]
    forest._max_samples, forest._max_features, forest.offset_ = nodes["samples"], n_features, -0.5
    forest._n_samples = nodes["samples"]
    if feature_names is not None:
        forest.feature_names_in_ = np.asarray(feature_names, dtype=object)
    forest._average_path_length_per_tree, forest._decision_path_lengths = zip(
        *[(_average_path_length(e.tree_.n_node_samples), e.tree_.compute_node_depths())
          for e in estimators], strict=True)
    return forest


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run() -> str:
    from sklearn.ensemble import IsolationForest

    from blink.model.forest import CompiledForest

    X = np.random.default_rng(0).standard_normal((ROWS, FEATURES))

    def sk(rows=ROWS, trees=TREES, **kw):
        return lambda: IsolationForest(n_estimators=trees, max_samples=SAMPLES,
                                       random_state=0, **kw).fit(X[:rows])
    built = build(X)
    forest = to_sklearn(built, FEATURES)
    compiled = CompiledForest.from_sklearn(forest)
    agree = float(np.max(np.abs(forest.score_samples(X[:500]) - compiled.score_samples(X[:500]))))
    fitted = IsolationForest(n_estimators=TREES, max_samples=SAMPLES, random_state=0).fit(X)
    ref = fitted.score_samples(X)
    mine = forest.score_samples(X)
    other = IsolationForest(n_estimators=TREES, max_samples=SAMPLES, random_state=1).fit(X)
    twin = float(np.corrcoef(other.score_samples(X), ref)[0, 1])
    timings = [
        (f"sklearn fit, {ROWS:,} rows × {FEATURES}, {TREES} trees × {SAMPLES} (as trainer.fit)",
         best(sk())),
        (f"sklearn fit, {SAMPLES} rows", best(sk(rows=SAMPLES))),
        ("sklearn fit, 50 trees", best(sk(trees=50))),
        ("sklearn fit, 25 trees", best(sk(trees=25))),
        ("sklearn fit, n_jobs=2 (threads)", best(sk(n_jobs=2))),
        (f"`build` (numpy, all {TREES} trees at once)", best(lambda: build(X))),
        ("`build` + `to_sklearn` (a real IsolationForest)",
         best(lambda: to_sklearn(build(X), FEATURES))),
        ("compile the forest (`CompiledForest.from_sklearn`)",
         best(lambda: CompiledForest.from_sklearn(forest))),
        (f"score the {ROWS:,} window rows (compiled forest: the threshold)",
         best(lambda: compiled.score_samples(X))),
    ]
    base = timings[0][1]
    rows = [(what, f"{s * 1e3:,.1f} ms", f"{base / s:,.1f}×") for what, s in timings]
    return ("## One retrain's forest: options\n\n"
            f"One window of {ROWS:,} rows × {FEATURES} features (seeded normal), best of "
            f"{REPEATS}. `build`'s forest loaded into sklearn: sklearn's `score_samples` and "
            f"the compiled forest agree to {agree:.1e}; its scores against sklearn's own forest "
            f"(same data, another random stream): mean {mine.mean():.4f} vs {ref.mean():.4f}, "
            f"correlation {np.corrcoef(mine, ref)[0, 1]:.3f} (sklearn with another seed: "
            f"{twin:.3f}).\n\n"
            + table(rows, ("what", "time", "vs sklearn fit")))


def main() -> None:
    body = run()
    write_section("fits", body)
    print(body)


if __name__ == "__main__":
    main()
