"""`python -m blink train`: train once on the stored tape and register the model."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime

from blink.model import trainer
from blink.store import db, tape_reads

log = logging.getLogger(__name__)


def main(settings, args=None) -> int:
    """`python -m blink train`: train once on the stored tape and register the model."""
    end = getattr(args, "end", None)
    try:
        result, info = asyncio.run(_train(settings, end))
    except trainer.TooFewRows as e:
        print(f"blink train: too few rows to train on {settings.pair} "
              f"(last {settings.train_hours:g} h of tape): {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - database or MLflow: one clear line, exit 1
        log.debug("training failed", exc_info=True)
        print(f"blink train: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    verdict = "promoted to @production" if info.promoted else "NOT promoted"
    print(f"registered {info.name} v{info.version} (run {info.run_id}): {verdict}: "
          f"{info.reason}; threshold {result.threshold:.5f}, "
          f"{int(result.metrics['rows_train'])} training rows")
    return 0


async def _train(settings, end: datetime | None):
    embedded, dsn = None, settings.pg_dsn
    if not dsn:
        embedded, dsn = await db.start_embedded(settings.data_dir)
    try:
        pool = await db.create_pool(dsn, settings.schema)
        try:
            end = end or await tape_reads.newest_trade_time(pool, settings.pair)
            if end is None:
                raise trainer.TooFewRows(f"no {settings.pair} trades in schema {settings.schema}")
            log.info("training on %s trades up to %s", settings.pair, end.isoformat())
            return await trainer.retrain_once(pool, settings, end)
        finally:
            await db.close_pool(pool)
    finally:
        if embedded is not None:
            await asyncio.get_running_loop().run_in_executor(None, embedded.stop)
