"""The backtest's retrains: what a fit records, and the fit itself as it runs in a worker
process (niced) or inline, returning the compiled forest that serves (and MLflow logs)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from blink.config import Settings
from blink.times import iso


@dataclass
class Fit:
    """One retrain: when (event time), which version, and whether it was served."""
    end: float
    version: str
    rows: int
    promoted: bool
    reason: str
    threshold: float



def lower_priority() -> None:
    """Fitting processes yield the CPU to the feature/scoring stage and to PostgreSQL (the
    scoring stage waits for fits only when it has caught up; the tape writer waits for no one)."""
    os.nice(10)


def fit_one(fit: Callable, X, settings: Settings, names):
    """One retrain (in a worker process with `fit_workers`, else inline)."""
    return fit(X, settings, names)


def serve_forest(result, version: str, end: float):
    from blink.model.served import ServedModel

    return ServedModel(result.forest, tuple(result.feature_names), float(result.threshold),
                       label=f"backtest v{version}", version=version, trained_at=iso(end),
                       train_stats=dict(result.train_stats))
