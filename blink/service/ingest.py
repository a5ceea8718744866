"""The ingest pipeline's cleanup context: source -> one tape per product -> writer (+ detectors).

On start, for every product of `settings.pairs`: resume from its highest stored trade id (live
tape only; an empty live tape is bootstrapped with `feed.bootstrap_hours` of REST history by
the source, and replay/synthetic sources play that much history at once: see `keys.WARMUP`),
re-detect the holes left in its stored tape within the backfill horizon, note its gaps left
open by a previous run as interrupted, and build its `Tape` (`keys.TAPES`; `keys.TAPE` is the
first product's). ONE `Writer` takes every product's trades (the tape table is keyed by
(product_id, trade_id)); each tape is subscribed to the writer (every new trade, arrival order)
and to its product's detector (`keys.DETECTORS[p]`, or `keys.DETECTOR` for the first product,
set by a context that runs before this one; trade-id order). Then the configured source runs
(one for every product: one websocket) as a supervised task. The Coinbase source's first
`last_match` per product reveals that product's downtime, which its backfill fills from REST.
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

    pool = app[keys.POOL]
    return CoinbaseSource(settings, app[keys.METRICS], app[keys.HEALTH], app[keys.HTTP],
                          lambda product: gaps.GapStore(pool, product),
                          warmup=app.get(keys.WARMUP))


async def start_afresh(pool, settings: Settings) -> None:
    """A replay or synthetic session starts with an empty tape of its own schema.

    Its trade ids restart at the file's / the generator's first id, so rows (or a spill file)
    left by an earlier session would collide with the new trades and hide them.
    """
    await sessions.empty_session(pool, settings.schema)
    spill_path(settings.data_dir, settings.schema).unlink(missing_ok=True)
    log.info("%s session: schema %s emptied", settings.source, settings.schema)


async def resume_point(pool, settings: Settings,
                       product: str) -> tuple[int | None, list[tuple[int, int]]]:
    """Where the product's stored live tape ends, and its holes within the backfill horizon;
    its gaps a previous run left open are noted as interrupted (they are re-detected)."""
    resume = await gaps.resume_id(pool, product)
    since = datetime.now(UTC) - timedelta(hours=settings.backfill_horizon_hours)
    holes = await gaps.stored_holes(pool, product, since)
    await gaps.GapStore(pool, product).close_interrupted()
    log.info("resuming %s after trade id %s (%d holes to refill)", product, resume, len(holes))
    return resume, holes


def show_source(app: web.Application, source) -> None:
    """Every product's `Latest` names the source; synthetic: its injected anomalies (a list
    per product, shared with the source, that grows)."""
    latests = app.get(keys.LATESTS) or {app[keys.SETTINGS].pair: app[keys.LATEST]}
    for product, latest in latests.items():
        latest.source = source.name
        if hasattr(source, "product_labels"):
            latest.labels = source.product_labels[product]


async def ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings: Settings = app[keys.SETTINGS]
    pool, metrics, health = app[keys.POOL], app[keys.METRICS], app[keys.HEALTH]
    live = settings.source == "coinbase"  # only the live feed can refill holes: hold for it
    if not live:
        await start_afresh(pool, settings)
    source = make_live_source(app)
    tapes: dict[str, Tape] = {}
    for product in settings.pairs:
        resume, holes = await resume_point(pool, settings, product) if live else (None, [])
        tapes[product] = Tape(product, metrics, source.name, resume_id=resume, holes=holes,
                              grace=settings.heartbeat_grace_seconds,
                              hold_seconds=settings.hold_seconds if live else 0.0)
    writer = Writer(pool, settings, metrics, health["writer"])
    batches = []
    for product, tape in tapes.items():
        tape.subscribe(writer.submit)
        detector = keys.of_product(app, keys.DETECTORS, keys.DETECTOR, product)
        if detector is not None:  # a burst reaches the detector in loop-step batches
            batches.append(StepBatch(detector.on_trades))  # (one forest call)
            tape.subscribe_ordered(batches[-1].add)
    app[keys.TAPES], app[keys.TAPE], app[keys.WRITER] = tapes, tapes[settings.pair], writer
    show_source(app, source)
    writer_task = asyncio.create_task(writer.run(), name="writer")
    source_task = asyncio.create_task(
        supervise(lambda: source.run(tapes), health[source.name],
                  settings.reconnect_base_seconds, settings.reconnect_cap_seconds),
        name=f"source-{source.name}")
    yield
    await stop_tasks(source_task)
    for tape in tapes.values():
        tape.release_all()
    for batch in batches:
        batch.flush()
    await writer.close()
    await stop_tasks(writer_task)
