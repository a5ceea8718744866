"""The training matrix: a range of the stored tape (`store.tape_reads`), through the one
feature implementation. No SQL here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np

from blink import __version__, features
from blink.store.tape_reads import read_tape


def feature_matrix(rows: np.ndarray, settings) -> np.ndarray:
    """`features.batch` over the rows (blocking, CPU-bound: run it in an executor)."""
    engine = features.FeatureEngine.from_settings(settings)
    return features.batch(rows["ts"], rows["price"], rows["size"], rows["taker_buy"],
                          engine=engine)


async def read_range(pool, settings, end_time: datetime) -> tuple[np.ndarray, dict]:
    """The last max(train_hours, calibration_hours) of tape before `end_time` (event time):
    (rows, meta).

    meta describes the data for MLflow params (reproducible from them alone).
    """
    end = end_time.astimezone(UTC)
    start = end - timedelta(hours=window_hours(settings))
    rows = await read_tape(pool, settings.pair, start, end)
    meta = {
        "product_id": settings.pair,
        "schema": settings.schema,
        "source": settings.source,
        "data_start": start.isoformat(),
        "data_end": end.isoformat(),
        "trades": int(len(rows)),
        "first_trade_id": int(rows["trade_id"][0]) if len(rows) else None,
        "last_trade_id": int(rows["trade_id"][-1]) if len(rows) else None,
        **features.meta(settings.feature_scale),
        "feature_min_history_seconds": settings.min_history_seconds,
        "feature_min_trades": settings.min_trades,
        "blink_version": __version__,
    }
    return rows, meta


def window_hours(settings) -> float:
    """Hours of tape one retrain reads: the model fits on the last train_hours of it, the
    threshold calibrates on all of it."""
    return max(settings.train_hours, settings.calibration_hours)


def warm(X: np.ndarray) -> np.ndarray:
    """The rows of X with every feature defined (the windows are warm); X itself when all
    are (the per-row pass only then: 5x the cost of the whole-array check)."""
    X = np.asarray(X, dtype=np.float64)
    if np.isfinite(X).all():
        return X
    return X[np.isfinite(X).all(axis=1)]


def warm_rows(X: np.ndarray) -> int:
    return len(warm(X))


async def load_training_matrix(pool, settings, end_time: datetime,
                               executor=None) -> tuple[np.ndarray, dict]:
    """The feature rows of the tape `read_range` reads before `end_time` (event time).

    Returns (X, meta): X is n_trades x k in trade-id order with NaN rows while the windows
    warm up (the first minutes of the range); meta as `read_range`, plus `feature_rows` and
    `ts` (the trades' event times, what `trainer.fit` needs for its grid).
    """
    rows, meta = await read_range(pool, settings, end_time)
    X = await asyncio.get_running_loop().run_in_executor(executor, feature_matrix, rows,
                                                         settings)
    return X, {**meta, "feature_rows": warm_rows(X), "ts": rows["ts"]}
