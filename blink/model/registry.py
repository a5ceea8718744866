"""The served model: resolve `models:/<name>@production`, load it safely, swap it in.

`resolve` asks the registry which version the alias points at; without the alias (nothing
promoted yet, alias deleted) it falls back to the newest finished run of experiment `blink`
for this product and source whose checks passed. `load` downloads that model and reads it
with skops and Blink's OWN trusted-type list (never the list stored in the model's MLmodel
file, and never pickle), plus the threshold and train_stats stored with the run, and builds
a `ServedModel` (compiled forest). The service's watcher (`blink.service.watcher`) calls
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
    """Download, check and compile the resolved model (blocking: run in an executor)."""
    import mlflow
    import skops.io
    from mlflow.models import Model
    from sklearn.ensemble import IsolationForest

    from blink.model.served import ServedModel

    tracking.client(settings)
    with tempfile.TemporaryDirectory(prefix="blink-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=resolved.model_uri,
                                                         dst_path=tmp))
        flavor = Model.load(str(local / "MLmodel")).flavors.get("sklearn", {})
        if flavor.get("serialization_format") != "skops":
            raise ModelError(f"{resolved.label}: not in skops format; refusing to unpickle")
        model = skops.io.load(local / flavor["pickled_model"], trusted=tracking.SKOPS_TRUSTED)
        stored = json.loads(mlflow.artifacts.load_text(
            f"runs:/{resolved.run_id}/{tracking.META_ARTIFACT}"))
    if not isinstance(model, IsolationForest):
        raise ModelError(f"{resolved.label}: a {type(model).__name__}, not an IsolationForest")
    names = tuple(stored["feature_names"])
    if names != features.FEATURE_NAMES:
        raise ModelError(f"{resolved.label}: trained on features {', '.join(names)}; this Blink "
                         f"computes {', '.join(features.FEATURE_NAMES)} (retrain needed)")
    return ServedModel.from_sklearn(model, names, stored["threshold"], stored["train_stats"],
                                    label=resolved.label,
                                    version=resolved.version or resolved.run_id,
                                    trained_at=stored["trained_at"])
