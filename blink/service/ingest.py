"""The ingest pipeline's cleanup context: source -> tape -> writer (+ detector, if present).

On start: resume from the highest stored trade id (live tape only; an empty live tape is
bootstrapped with `feed.bootstrap_hours` of REST history by the source, and replay/synthetic
sources play that much history at once: see `keys.WARMUP`), re-detect holes left in the
stored tape within the backfill horizon, build the `Tape` and the `Writer`, subscribe the writer
(every new trade, arrival order) and the detector (`keys.DETECTOR`, set by a context that runs
before this one; trade-id order), then run the configured source as a supervised task. The
Coinbase source's first `last_match` reveals the downtime, which its backfill fills from REST.
On cleanup: cancel the source, then `writer.close()` writes or spills everything in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from aiohttp import web

from blink.config import Settings
from blink.runtime import keys
from blink.runtime.batching import StepBatch
from blink.runtime.tasks import stop_tasks, supervise
from blink.store import gaps, sessions
from blink.store.spill import spill_path
from blink.store.writer import Writer
from blink.tape import Tape

log = logging.getLogger(__name__)


def make_live_source(app: web.Application):
    """The source named by the settings (Coinbase here; replay/synthetic from feeds.sources)."""
    settings: Settings = app[keys.SETTINGS]
    if settings.source != "coinbase":
        from blink.feeds.sources import make_source

        return make_source(settings, app.get(keys.WARMUP))
    from blink.feeds.coinbase import CoinbaseSource

    return CoinbaseSource(settings, app[keys.METRICS], app[keys.HEALTH], app[keys.HTTP],
                          gaps.GapStore(app[keys.POOL], settings.pair),
                          warmup=app.get(keys.WARMUP))


async def start_afresh(pool, settings: Settings) -> None:
    """A replay or synthetic session starts with an empty tape of its own schema.

    Its trade ids restart at the file's / the generator's first id, so rows (or a spill file)
    left by an earlier session would collide with the new trades and hide them.
    """
    await sessions.empty_session(pool, settings.schema)
    spill_path(settings.data_dir, settings.schema).unlink(missing_ok=True)
    log.info("%s session: schema %s emptied", settings.source, settings.schema)


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings: Settings = app[keys.SETTINGS]
    pool, metrics, health = app[keys.POOL], app[keys.METRICS], app[keys.HEALTH]
    resume, holes = None, []
    if settings.source != "coinbase":
        await start_afresh(pool, settings)
    else:
        resume = await gaps.resume_id(pool, settings.pair)
        since = datetime.now(UTC) - timedelta(hours=settings.backfill_horizon_hours)
        holes = await gaps.stored_holes(pool, settings.pair, since)
        await gaps.GapStore(pool, settings.pair).close_interrupted()
        log.info("resuming %s after trade id %s (%d holes to refill)", settings.pair, resume,
                 len(holes))
    source = make_live_source(app)
    live = settings.source == "coinbase"  # only the live feed can refill holes: hold for it
    tape = Tape(settings.pair, metrics, source.name, resume_id=resume, holes=holes,
                grace=settings.heartbeat_grace_seconds,
                hold_seconds=settings.hold_seconds if live else 0.0)
    writer = Writer(pool, settings, metrics, health["writer"])
    tape.subscribe(writer.submit)
    detector = app.get(keys.DETECTOR)
    batch = None if detector is None else StepBatch(detector.on_trades)
    if batch is not None:  # a burst reaches the detector in loop-step batches (one forest call)
        tape.subscribe_ordered(batch.add)
    app[keys.TAPE], app[keys.WRITER] = tape, writer
    app[keys.LATEST].source = source.name
    if hasattr(source, "labels"):  # synthetic: injected anomalies, shared list that grows
        app[keys.LATEST].labels = source.labels
    writer_task = asyncio.create_task(writer.run(), name="writer")
    source_task = asyncio.create_task(
        supervise(lambda: source.run(tape), health[source.name],
                  settings.reconnect_base_seconds, settings.reconnect_cap_seconds),
        name=f"source-{source.name}")
    yield
    await stop_tasks(source_task)
    tape.release_all()
    if batch is not None:
        batch.flush()
    await writer.close()
    await stop_tasks(writer_task)
