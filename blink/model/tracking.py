"""MLflow tracking and registry: experiment `blink`, one run per fit, alias `production`.

Everything here blocks (and `import mlflow` alone costs ~1 s): call it in an executor.

A run holds params (hyperparameters, feature names and windows, data range, row counts, Blink
version), metrics (fit seconds, training-score quantiles, held-out anomaly rate), the model
(the compiled forest `trainer.fit` grew, as a pyfunc whose artifact is its arrays:
`blink.model.logged`; signature + input example, explicit pip requirements), and
`blink_model.json` (threshold, train_stats with the calibrated tail tables and used columns,
checks) which the registry watcher needs to serve
it. The model is registered as `registered_name(settings)`; the alias `production` moves to
the new version only when the promotion checks passed, otherwise the version is tagged with
the reason. Models trained on replayed or synthetic trades are registered under their own
name (`<model_name>_replay`, `<model_name>_synthetic`) so they never replace the live model
when a store is shared, just as their trades never mix with the live tape.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

EXPERIMENT = "blink"
ALIAS = "production"
META_ARTIFACT = "blink_model.json"
ENV_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_UV_AUTO_DETECT": "false",  # requirements are explicit; do not run `uv export`
    # an unreachable tracking server fails within seconds (default: 7 retries, minutes)
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # no git executable (the image): GitPython's documented switch, instead of a 17-line
    # warning from MLflow's run-source lookup at every log
    "GIT_PYTHON_REFRESH": "quiet",
}


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str
    model_uri: str
    promoted: bool
    reason: str

    @property
    def label(self) -> str:
        return f"{self.name}@{ALIAS} v{self.version}"


def registered_name(settings) -> str:
    """`model_name` for the live tape; `<model_name>_<source>` for replay and synthetic."""
    if settings.source == "coinbase":
        return settings.model_name
    return f"{settings.model_name}_{settings.source}"


def client(settings):
    """Point MLflow at Blink's store (process-wide) and return a client for it."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow

    uri = settings.mlflow_uri
    if uri.startswith("sqlite:///"):  # sqlite cannot create the directory itself
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(uri, uri)


def artifact_location(settings) -> str | None:
    """Artifacts of a sqlite store live next to its database; a server picks its own."""
    uri = settings.mlflow_uri
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()


def experiment_id(c, settings) -> str:
    from mlflow.exceptions import MlflowException

    exp = c.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(EXPERIMENT, artifact_location=artifact_location(settings))
    except MlflowException:  # created meanwhile by another process
        exp = c.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            raise
        return exp.experiment_id


def run_params(result, meta: dict) -> dict[str, str]:
    params = {**result.params, **{k: v for k, v in meta.items() if k != "feature_windows"}}
    params["feature_names"] = ",".join(result.feature_names)
    for name, w in meta.get("feature_windows", {}).items():
        params[f"window_{name}"] = w
    return {k: str(v) for k, v in params.items()}


def log_to_mlflow(result, settings, meta: dict) -> VersionInfo:
    """Log one fit as a run of experiment `blink`, register it, maybe move the alias."""
    c = client(settings)
    import tempfile

    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    from blink.model import logged

    names = list(result.feature_names)
    used = [names[i] for i in result.train_stats.get("columns", range(len(names)))]
    example = pd.DataFrame(result.example, columns=used)
    signature = infer_signature(example, result.forest.score_samples(result.example))
    # predict() also needs Blink itself (the walk is its C extension), not on PyPI: params
    # carry blink_version
    requirements = [f"numpy=={np.__version__}", f"pandas=={pd.__version__}",
                    f"mlflow=={mlflow.__version__}"]
    stored = {"threshold": result.threshold, "rule": result.params["threshold_rule"],
              "train_stats": result.train_stats, "feature_names": names,
              "trained_at": datetime.fromtimestamp(result.trained_at, UTC).isoformat(),
              "promote_ok": result.promote_ok,
              "reason": result.reason, "meta": meta}
    with mlflow.start_run(experiment_id=experiment_id(c, settings),
                          tags={"blink.promote_ok": str(result.promote_ok).lower(),
                                "blink.reason": result.reason[:5000]}) as run, \
            tempfile.TemporaryDirectory(prefix="blink-forest-") as tmp:
        mlflow.log_params(run_params(result, meta))
        mlflow.log_metrics({k: float(v) for k, v in result.metrics.items()})
        mlflow.log_text(json.dumps(stored, indent=1, default=str), META_ARTIFACT)
        arrays = Path(tmp) / logged.FILE
        result.forest.save(arrays)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=logged.ForestModel(),
            artifacts={logged.ARTIFACT: str(arrays)}, signature=signature,
            input_example=example, pip_requirements=requirements,
            registered_model_name=registered_name(settings),
        )
        mlflow.set_tag("blink.model_uri", info.model_uri)
    version = str(info.registered_model_version)
    name, run_id = registered_name(settings), run.info.run_id
    c.set_model_version_tag(name, version, "blink.promote_ok", str(result.promote_ok).lower())
    if result.promote_ok:
        c.set_registered_model_alias(name, ALIAS, version)
        log.info("model %s v%s promoted to @%s (%s)", name, version, ALIAS, result.reason)
    else:
        c.set_model_version_tag(name, version, "blink.not_promoted", result.reason[:5000])
        log.warning("model %s v%s NOT promoted: %s", name, version, result.reason)
    return VersionInfo(name, version, run_id, info.model_uri, result.promote_ok, result.reason)
