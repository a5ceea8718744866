"""Fixtures for MLflow tests: one real sqlite MLflow store per session, settings using it.

Loaded for every test by the root conftest (`pytest_plugins`). Creating a sqlite store costs seconds
(its schema migrations), so the store is shared; tests keep apart by using their own
registered-model name (`model_name`) and, where they search runs, their own product id.
"""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """A real sqlite MLflow store (created once for the whole session)."""
    from blink import config
    from blink.model import tracking

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "empty.toml").touch()
    settings = config.load(folder / "empty.toml", env={},
                           flags={"data_dir": str(folder), "mlflow_tracking_uri": uri})
    c = tracking.client(settings)
    tracking.experiment_id(c, settings)
    return uri


@pytest.fixture
def model_name() -> str:
    return f"blink_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ml_settings(make_settings, mlflow_uri, model_name):
    """Settings for fit + MLflow tests (no database), small training thresholds."""

    def make(**overrides):
        base = {"mlflow_tracking_uri": mlflow_uri, "model_name": model_name,
                "train_min_rows": 200, "n_estimators": 25}
        return make_settings(**{**base, **overrides})

    return make
