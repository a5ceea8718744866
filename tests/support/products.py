"""Several products through the real app before the per-product ingest is merged.

Issue 15 is built on three branches: the feed side (one subscription, a tape per product)
lands separately. Until then the real ingest context plays the FIRST product, and
`other_products_ctx` plays the synthetic source for every other product the way ingest does
for one: its own `Tape` and `Writer`, the product's detector (`keys.DETECTORS[p]`)
subscribed in trade-id order through a `StepBatch`. Each product gets its own seed (the
first's + its index), so their streams and anomalies differ.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from blink.feeds.synthetic import SyntheticSource
from blink.runtime import keys
from blink.runtime.batching import StepBatch
from blink.runtime.tasks import stop_tasks
from blink.service import ingest
from blink.service.app import create_app
from blink.store.writer import Writer
from blink.tape import Tape


async def other_products_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, metrics, health = app[keys.SETTINGS], app[keys.METRICS], app[keys.HEALTH]
    tapes = app[keys.TAPES] = {settings.pair: app[keys.TAPE]}
    parts, tasks = [], []
    for i, product in enumerate(settings.pairs[1:], start=1):
        own = dataclasses.replace(settings.for_product(product), seed=settings.seed + i)
        source = SyntheticSource(own, None)
        tape = tapes[product] = Tape(product, metrics, source.name, hold_seconds=0.0)
        writer = Writer(app[keys.POOL], own, metrics, health[f"writer:{product}"])
        batch = StepBatch(app[keys.DETECTORS][product].on_trades)
        tape.subscribe(writer.submit)
        tape.subscribe_ordered(batch.add)
        app[keys.LATESTS][product].labels = source.labels
        parts.append((tape, batch, writer))
        tasks += [asyncio.create_task(writer.run(), name=f"writer:{product}"),
                  asyncio.create_task(source.run(tape), name=f"source:{product}")]
    yield
    await stop_tasks(*tasks[1::2])  # the sources first, then what they fed
    for tape, batch, writer in parts:
        tape.release_all()
        batch.flush()
        await writer.close()
    await stop_tasks(*tasks[0::2])


def products_app(settings) -> web.Application:
    """`create_app(settings)` with every product fed (see the module docstring)."""
    app = create_app(settings)
    ctx = app.cleanup_ctx
    ctx.insert(list(ctx).index(ingest.ingest_ctx) + 1, other_products_ctx)
    return app
