"""Image build step: run what Blink runs, so Python writes bytecode for exactly those modules.

Compiling every module of the environment (`UV_COMPILE_BYTECODE`) cost the image ~140 MB of
.pyc, half of it for modules Blink never imports (plotly's Python side, MLflow's server and
GenAI parts, most of scipy...). Instead, the build stage runs this once, with a writable venv
and PYTHONDONTWRITEBYTECODE unset: every `blink` module, the lazily imported embedded
PostgreSQL and Redis clients, and one MLflow round trip in a throwaway sqlite store — fit a
small isolation forest, log it (its arrays, `forest.npz`), register it, resolve the alias, load it.
Imports outside that set still work; they are compiled in memory when first used.
It doubles as a build-time check that the installed environment can train, register and serve:
`python deploy/warm_bytecode.py` exits non-zero otherwise.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile


def main() -> int:
    import blink

    for mod in pkgutil.walk_packages(blink.__path__, "blink."):
        if not mod.name.endswith("__main__"):  # importing a __main__ would run it
            importlib.import_module(mod.name)
    for name in ("pgserver", "redis.asyncio"):  # imported lazily by blink.store.db / resources
        importlib.import_module(name)

    import numpy as np

    from blink import config, features
    from blink.features import FEATURE_NAMES
    from blink.model import registry, tracking, trainer
    from blink.service.app import create_app

    with tempfile.TemporaryDirectory() as data:
        settings = config.load(env={"BLINK_DATA_DIR": data, "BLINK_SOURCE": "synthetic",
                                    "BLINK_N_ESTIMATORS": "10", "BLINK_TRAIN_MIN_ROWS": "200"})
        create_app(settings)  # routes, templates, every context's module
        rng = np.random.default_rng(0)
        X = rng.normal(size=(3000, len(FEATURE_NAMES))) @ (np.eye(len(FEATURE_NAMES)) + 0.1)
        result = trainer.fit(X, settings, FEATURE_NAMES)
        info = tracking.log_to_mlflow(result, settings, {"product_id": settings.pair,
                                                         **features.meta(settings.feature_scale)})
        resolved = registry.resolve(settings)
        assert resolved is not None, f"no servable model after logging {info}"
        registry.load(settings, resolved)
    print(f"bytecode written for the modules Blink runs; MLflow round trip: {info.label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
