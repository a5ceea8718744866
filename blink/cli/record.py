"""`python -m blink record OUT.csv [--duration SECONDS]`: record the live feed for replay.

Uses the same websocket client, tapes and REST backfills as the service (no database): rows
are written in trade-id order per product, gaps refilled, in Blink's tick format
(`blink.formats.ticks`, the one definition the readers read). With several products
(`--pairs`) they all go to the one file, told apart by `product_id` (a replay routes them).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from aiohttp import web

from blink.config import Settings
from blink.feeds.coinbase import CoinbaseSource
from blink.formats.ticks import tick_writer
from blink.runtime import keys
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import stop_tasks
from blink.service import resources
from blink.tape import Tape
from blink.trade import Trade

log = logging.getLogger(__name__)


async def record(settings: Settings, out: Path, duration: float | None = None) -> int:
    """Record until `duration` seconds passed or cancelled; returns the rows written."""
    app = web.Application()
    http = resources.http_ctx(app)  # the app's client session (with its User-Agent)
    await anext(http)
    metrics, count = Metrics(), 0
    tapes = {p: Tape(p, metrics, "coinbase", grace=settings.heartbeat_grace_seconds,
                     hold_seconds=max(60.0, settings.hold_seconds)) for p in settings.pairs}
    source = CoinbaseSource(settings, metrics, Health(), app[keys.HTTP])
    out.parent.mkdir(parents=True, exist_ok=True)
    f = await asyncio.to_thread(open, out, "w", newline="", encoding="utf-8")
    with f:
        write_tick = tick_writer(f)

        def write(trade: Trade) -> None:
            nonlocal count
            write_tick(trade)
            count += 1

        for tape in tapes.values():
            tape.subscribe_ordered(write)
        task = asyncio.create_task(source.run(tapes), name="record-coinbase")
        loop = asyncio.get_running_loop()
        end = None if duration is None else loop.time() + duration
        try:
            while end is None or loop.time() < end:
                await asyncio.sleep(1.0 if end is None else min(1.0, max(0, end - loop.time())))
                await asyncio.to_thread(f.flush)
        finally:
            await stop_tasks(task)
            for tape in tapes.values():
                tape.release_all()
            f.flush()
            await anext(http, None)
            log.info("recorded %d trades to %s", count, out)
    return count


def main(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(record(settings, Path(args.out), args.duration))
    return 0
