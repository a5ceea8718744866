"""The served model: resolve `models:/<name>@production`, load it safely, swap it in.

`resolve` asks the registry which version the alias points at; without the alias (nothing
promoted yet, alias deleted) it falls back to the newest finished run of experiment `blink`
for this product and source whose checks passed. `load` downloads that model and reads the
compiled forest's arrays from it (`forest.npz`, `blink.model.logged`: never a pickle, and the
C kernel re-validates every node), plus the threshold and train_stats stored with the run,
and builds a `ServedModel`. The service's watcher (`blink.service.watcher`) calls
them in the model worker process.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blink import features
from blink.model import tracking

if TYPE_CHECKING:
    from blink.model.served import ServedModel

log = logging.getLogger(__name__)

ALIAS_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class ModelError(RuntimeError):
    """A registered model that this Blink cannot serve."""


@dataclass(frozen=True)
class Resolved:
    label: str  # "<name>@production v<N>", or "run:<run_id>" for the fallback
    version: str | None
    run_id: str
    model_uri: str


@dataclass
class ModelSlot:
    """The model being served (None until one is loaded): app[keys.MODEL]."""

    served: ServedModel | None = None
    label: str | None = None
    loaded_at: float | None = None


def resolve(settings) -> Resolved | None:
    """Which model should be served now (blocking: run in an executor)."""
    from mlflow.exceptions import MlflowException

    c = tracking.client(settings)
    name = tracking.registered_name(settings)
    try:
        mv = c.get_model_version_by_alias(name, tracking.ALIAS)
        return Resolved(f"{name}@{tracking.ALIAS} v{mv.version}", str(mv.version), mv.run_id,
                        f"models:/{name}/{mv.version}")
    except MlflowException as e:
        if e.error_code not in ALIAS_MISSING:
            raise
    exp = c.get_experiment_by_name(tracking.EXPERIMENT)
    if exp is None:
        return None
    runs = c.search_runs(
        [exp.experiment_id],
        filter_string=(f"attributes.status = 'FINISHED' AND tags.`blink.promote_ok` = 'true'"
                       f" AND params.product_id = '{settings.pair}'"
                       f" AND params.source = '{settings.source}'"),
        order_by=["attributes.start_time DESC"], max_results=10)
    for run in runs:
        uri = run.data.tags.get("blink.model_uri")
        if uri:
            return Resolved(f"run:{run.info.run_id}", None, run.info.run_id, uri)
    return None


def load(settings, resolved: Resolved):
    """Download, check and serve the resolved model (blocking: run in an executor)."""
    import mlflow
    from mlflow.models import Model

    from blink.model import logged
    from blink.model.forest import CompiledForest
    from blink.model.served import ServedModel

    tracking.client(settings)
    with tempfile.TemporaryDirectory(prefix="blink-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=resolved.model_uri,
                                                         dst_path=tmp))
        flavor = Model.load(str(local / "MLmodel")).flavors.get("python_function", {})
        artifact = flavor.get("artifacts", {}).get(logged.ARTIFACT, {}).get("path")
        if not artifact or Path(artifact).name != logged.FILE:
            raise ModelError(f"{resolved.label}: no compiled forest ({logged.FILE}) in it: a "
                             "model from an older Blink (retrain needed)")
        try:
            forest = CompiledForest.load(local / artifact)
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{resolved.label}: unreadable {logged.FILE}: {e}") from e
        stored = json.loads(mlflow.artifacts.load_text(
            f"runs:/{resolved.run_id}/{tracking.META_ARTIFACT}"))
    names = tuple(stored["feature_names"])
    if names != features.FEATURE_NAMES:
        raise ModelError(f"{resolved.label}: trained on features {', '.join(names)}; this Blink "
                         f"computes {', '.join(features.FEATURE_NAMES)} (retrain needed)")
    engine = stored.get("meta", {}).get("feature_engine")
    if engine != features.ENGINE:
        theirs, ours = (engine or "").split(), features.ENGINE.split()
        was = " ".join(t for t in theirs if t not in ours) or "(none recorded: an older Blink)"
        raise ModelError(f"{resolved.label}: trained on the feature engine with {was}; this "
                         f"Blink computes {' '.join(t for t in ours if t not in theirs)} "
                         "(retrain needed)")
    stats = stored["train_stats"]
    if stats.get("scale", settings.feature_scale) != settings.feature_scale:
        raise ModelError(f"{resolved.label}: trained on a {stats['scale']:g}-s feature grid; "
                         f"this Blink runs features.scale = {settings.feature_scale:g} s "
                         "(retrain needed)")
    if forest.n_features != len(stats.get("columns", names)):
        raise ModelError(f"{resolved.label}: a forest of {forest.n_features} features for "
                         f"{len(stats.get('columns', names))} used columns")
    return ServedModel(forest, names, float(stored["threshold"]), label=resolved.label,
                       version=str(resolved.version or resolved.run_id),
                       trained_at=str(stored["trained_at"]), train_stats=dict(stats))
