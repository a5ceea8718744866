"""A retrain on 12 h of tape at the live rate (~315,000 trades): read + features + fit +
MLflow log, each timed, in one run (the service runs the same steps in its model worker)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.report import table, write_section
from bench.service import scratch_database
from blink import config
from blink.model import dataset, tracking, trainer
from blink.store import db

TRADES = 315_000  # 12 h at 7.3 trades/s


async def _seed(dsn: str, end: datetime) -> None:
    from tests.support.trades import walk_rows

    start = end - timedelta(hours=12)
    rows = walk_rows(TRADES, start=start, seed=3)  # ~1 trade/s: squeeze into 12 h
    squeeze = timedelta(hours=12) / (rows[-1][2] - start) * 0.999
    rows = [(p, i, start + (t - start) * squeeze, *rest) for p, i, t, *rest in rows]
    pool = await db.create_pool(dsn)
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "trades", records=rows, columns=["product_id", "trade_id", "time", "price", "size",
                                             "side"])
    await pool.close()


async def _measure(settings, end: datetime) -> list[tuple]:
    pool = await db.create_pool(settings.pg_dsn)
    t0 = time.perf_counter()
    rows, meta = await dataset.read_range(pool, settings, end)
    t1 = time.perf_counter()
    await pool.close()
    X = dataset.feature_matrix(rows, settings)
    t2 = time.perf_counter()
    result = trainer.fit(X, settings, meta["feature_names"])
    t3 = time.perf_counter()
    tracking.log_to_mlflow(result, settings, {**meta, "feature_rows": dataset.warm_rows(X)})
    t4 = time.perf_counter()
    tracking.log_to_mlflow(result, settings, {**meta, "feature_rows": dataset.warm_rows(X)})
    t5 = time.perf_counter()
    return [("read the tape (binary COPY)", f"{len(rows):,} trades", f"{t1 - t0:.2f} s"),
            ("features.batch (the one engine)", f"{len(X):,} rows", f"{t2 - t1:.2f} s"),
            ("fit + threshold + checks", f"{int(result.metrics['rows_train']):,} rows",
             f"{t3 - t2:.2f} s"),
            ("MLflow log + register (first in process)", "", f"{t4 - t3:.2f} s"),
            ("MLflow log + register (warm)", "", f"{t5 - t4:.2f} s"),
            ("**total** (read + features + fit + warm log)", "",
             f"**{(t1 - t0) + (t3 - t1) + (t5 - t4):.2f} s**")]


def run() -> str:
    end = datetime(2026, 1, 6, tzinfo=UTC)
    with scratch_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "empty.toml").touch()
        settings = config.load(Path(tmp) / "empty.toml", env={}, flags={
            "pg_dsn": dsn, "data_dir": tmp, "train_min_rows": 1000})
        asyncio.run(_seed(dsn, end))
        rows = asyncio.run(_measure(settings, end))
    return ("## Retrain on 12 h of tape\n\n"
            f"{TRADES:,} trades (12 h at the live 7.3 trades/s) in PostgreSQL; default "
            "hyperparameters (100 trees, 256 samples); sqlite MLflow store. The service runs "
            "these steps in its model worker process.\n\n"
            + table(rows, ("step", "size", "time")))


def main() -> None:
    write_section("retrain", run())
