"""A registered model this Blink cannot serve is refused at load, never crashed on or unpickled:
a corrupt or missing compiled forest, another feature engine, another feature grid."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from blink import features
from blink.model import registry, tracking
from tests.support.mlflow_store import META
from tests.support.mlflow_store import fit_small as _fit


async def test_a_model_without_a_valid_forest_is_refused(ml_settings, tmp_path):
    """Registry load reads forest.npz and nothing else: a corrupt forest (a child before its
    node) and a model without one raise ModelError, never crash or unpickle."""
    import mlflow
    import mlflow.pyfunc

    from blink.model import logged

    settings = ml_settings(pair="BROKEN-USD")
    meta = {**META, "product_id": "BROKEN-USD"}
    info = await asyncio.to_thread(tracking.log_to_mlflow, _fit(settings), settings, meta)
    arrays = dict(_fit(settings).forest.arrays())
    arrays["base"] = arrays["base"].copy()
    inner = np.flatnonzero(arrays["base"] != np.arange(len(arrays["base"])))
    arrays["base"][inner[-1]] = inner[-1] - 1  # a split whose children come before it
    bad = tmp_path / logged.FILE
    np.savez(bad, **arrays)
    tracking.client(settings)
    with mlflow.start_run(experiment_id=tracking.experiment_id(
            mlflow.MlflowClient(settings.mlflow_uri), settings)) as run:
        mlflow.log_text(mlflow.artifacts.load_text(f"runs:/{info.run_id}/{tracking.META_ARTIFACT}"),
                        tracking.META_ARTIFACT)
        corrupt = mlflow.pyfunc.log_model(name="model", python_model=logged.ForestModel(),
                                          artifacts={logged.ARTIFACT: str(bad)})
        empty = mlflow.pyfunc.log_model(name="other", python_model=logged.ForestModel())
    for model_info, message in ((corrupt, "unreadable forest.npz: corrupt forest"),
                                (empty, "no compiled forest")):
        resolved = registry.Resolved("test", None, run.info.run_id, model_info.model_uri)
        with pytest.raises(registry.ModelError, match=message):
            await asyncio.to_thread(registry.load, settings, resolved)


async def test_a_model_of_another_feature_engine_or_grid_is_refused(ml_settings):
    """Same feature names, other meaning: a model whose run records another engine (or none:
    an older Blink), or another grid step, is not served (its scores would be of other
    features); the one this Blink trained loads."""
    settings = ml_settings(pair="OLD-USD")
    result = _fit(settings)
    older = features.ENGINE.replace("regime=3600", "regime=1800")
    assert older != features.ENGINE
    cases = [({**META, "feature_engine": older}, settings, "trained on the feature engine "
              "with regime=1800; this Blink computes regime=3600 "),
             ({k: v for k, v in META.items() if k != "feature_engine"}, settings,
              r"with \(none recorded: an older Blink\); this Blink computes formulas=1 "),
             (META, replace(settings, feature_scale=15.0), "trained on a 1-s feature grid")]
    for meta, load_settings, message in cases:
        info = await asyncio.to_thread(tracking.log_to_mlflow, result, settings, meta)
        resolved = await asyncio.to_thread(registry.resolve, settings)
        assert resolved is not None and resolved.version == info.version
        with pytest.raises(registry.ModelError, match=message):
            await asyncio.to_thread(registry.load, load_settings, resolved)
    served = await asyncio.to_thread(registry.load, settings, resolved)  # the last one, as is
    assert served.threshold == result.threshold
