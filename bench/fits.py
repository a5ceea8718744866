"""`python -m bench fits`: what one retrain costs, forest by forest and whole.

Why: a backtest of bars or a series refits every 60 rows (`blink.backtest.sampling`), so the
retrain bounds its rows per second: 30,240 one-minute bars are ~500 retrains. Measured in one
run, best of REPEATS (the box is shared):

1. one forest (100 trees × 256) on one window (ROWS × FEATURES, standard normal, seeded):
   sklearn's `IsolationForest.fit` (what `trainer.fit` called four times a retrain before)
   next to `forest.grow` (the C builder it calls now), the compile step sklearn's forest
   needed (`CompiledForest.from_sklearn`), and one walk of the window's rows;
2. one whole `trainer.fit` on a bar-backtest-like window (BAR_GRID grid rows × the bars'
   used features, a random walk's features): its time, and the parts it is made of — four
   forests grown, the forest walks the retrain rules need (four passes over the window's
   rows: pass 1 for the trim, pass 2's tails, the two out-of-fold halves), the rest (tail
   tables, the budget's threshold, the trim) by difference.

The grown forest's scores against sklearn's on the same rows (rank correlation) are printed
next to sklearn's against itself with another seed: the same algorithm, another random
stream (`tests/unit/test_grow.py` pins it).
"""

from __future__ import annotations

import time

import numpy as np

from bench.report import table, write_section

ROWS, FEATURES, TREES, SAMPLES = 3000, 10, 100, 256
BAR_GRID = 6_300  # grid rows of a 1-minute-bar retrain's window (40 h, ~2.6 a bar)
REPEATS = 15


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x, kind="stable"), kind="stable") for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def bar_window():
    """A bar backtest's retrain input: the features of a seeded random walk, 4 trades a
    bar at 15 s steps, through `trainer.prepare` (settings as `sampling.plan` makes them)."""
    import dataclasses

    from blink import config, features
    from blink.backtest import sampling

    rng = np.random.default_rng(4)
    n = BAR_GRID + 2_000  # warm-up rows dropped by prepare
    ts = 1.7e9 + 15.0 * np.arange(n)
    price = 10_000 * np.exp(np.cumsum(rng.normal(0, 4e-4, n)))
    size = rng.uniform(0.25, 5, n)
    base = config.load(env={})
    settings = dataclasses.replace(base, feature_scale=15.0,
                                   model_features=sampling.MODEL_FEATURES["bars"],
                                   min_history_seconds=base.min_history_seconds * 15.0,
                                   train_hours=40.0, train_min_rows=600)
    X = features.batch(ts, price, size, rng.random(n) < 0.5,
                       engine=features.FeatureEngine.from_settings(settings))
    return X, ts, settings


def run() -> str:
    from sklearn.ensemble import IsolationForest

    from blink.features import FEATURE_NAMES
    from blink.model import trainer
    from blink.model.forest import CompiledForest, grow

    X = np.random.default_rng(0).standard_normal((ROWS, FEATURES))

    def sk(seed=0):
        return IsolationForest(n_estimators=TREES, max_samples=SAMPLES, random_state=seed).fit(X)
    fitted = sk()
    grown = grow(X, TREES, SAMPLES, seed=0)
    ref, other, mine = (f.score_samples(X) for f in (fitted, sk(1), grown))
    forests = [
        (f"sklearn `IsolationForest.fit`, {ROWS:,} rows × {FEATURES}, {TREES} trees × "
         f"{SAMPLES}", best(sk, 5)),
        ("`forest.grow` (C), the same", best(lambda: grow(X, TREES, SAMPLES, seed=0))),
        ("compile sklearn's forest (`CompiledForest.from_sklearn`, no longer needed)",
         best(lambda: CompiledForest.from_sklearn(fitted), 5)),
        (f"walk the {ROWS:,} rows (`score_samples`, compiled)",
         best(lambda: grown.score_samples(X))),
    ]
    base = forests[0][1]
    rows = [(what, f"{s * 1e3:,.2f} ms", f"{base / s:,.1f}×") for what, s in forests]

    Xb, ts, settings = bar_window()
    w = trainer.prepare(Xb, settings, ts)
    cols = trainer.used_columns(FEATURE_NAMES, settings)
    used = np.ascontiguousarray(w.X[w.fit_from:][:, cols])
    whole = best(lambda: trainer.fit(w, settings, FEATURE_NAMES), 7)
    grows = 4 * best(lambda: grow(used, settings.n_estimators, settings.max_samples))
    grown_bar = grow(used, settings.n_estimators, settings.max_samples)
    walks = 4 * best(lambda: grown_bar.score_samples(used))
    n = len(used)
    fit_rows = [
        (f"one `trainer.fit` on a bar window: {n:,} grid rows × {len(cols)} used features",
         f"{whole * 1e3:,.1f} ms", "100 %"),
        ("… 4 forests grown (pass 1, pass 2, two out-of-fold halves)",
         f"{grows * 1e3:,.1f} ms", f"{grows / whole:.0%}"),
        (f"… forest walks: 4 × {n:,} rows", f"{walks * 1e3:,.1f} ms", f"{walks / whole:.0%}"),
        ("… the rest: tail tables and surprises, trim, budget threshold (numpy)",
         f"{(whole - grows - walks) * 1e3:,.1f} ms", f"{(whole - grows - walks) / whole:.0%}"),
    ]
    return ("## One retrain's forest and the whole retrain\n\n"
            f"Best of {REPEATS} (sklearn: of 5; whole fit: of 7) in one run. The grown "
            f"forest's scores against sklearn's on the same {ROWS:,} rows: rank correlation "
            f"{spearman(mine, ref):.3f}, means {mine.mean():.4f} vs {ref.mean():.4f} (sklearn "
            f"against itself with another seed: {spearman(other, ref):.3f}).\n\n"
            + table(rows, ("one forest", "time", "vs sklearn fit")) + "\n\n"
            + table(fit_rows, ("one retrain (`trainer.fit`)", "time", "share")))


def main() -> None:
    body = run()
    write_section("fits", body)
    print(body)


if __name__ == "__main__":
    main()
