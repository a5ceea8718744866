"""Fixtures for MLflow tests: one real sqlite MLflow store per session, settings using it.

Loaded for every test by the root conftest (`pytest_plugins`). Creating a sqlite store costs seconds
(its schema migrations), so the store is shared; tests keep apart by using their own
registered-model name (`model_name`) and, where they search runs, their own product id.
"""

from __future__ import annotations

import uuid

import pytest

from blink import features

# a run's meta as the service's retrain logs it (dataset.read_range), for tests that log fits
META = {"product_id": "BTC-USD", "source": "coinbase", "data_start": "2026-01-05T00:00:00+00:00",
        "data_end": "2026-01-05T12:00:00+00:00", "trades": 3000, "blink_version": "test",
        "feature_windows": {"z_1": 1.0}, "feature_engine": features.ENGINE}


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


def fit_small(settings, X=None):
    """A fit on generated feature rows (3,000 unless X), as the registry tests log them."""
    from blink.features import FEATURE_NAMES
    from blink.model import trainer
    from tests.support.training import feature_rows

    return trainer.fit(feature_rows(3000) if X is None else X, settings, FEATURE_NAMES)
