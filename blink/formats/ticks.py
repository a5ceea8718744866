"""Blink's tick format: `product_id,trade_id,time,price,size,side`, one Coinbase trade a row.

Times are ISO-8601 with microseconds and Z; price and size are the exact decimal strings; side is
the maker side as Coinbase sends it. `blink.formats.files` reads it (and replays it); `record`
writes it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from blink.trade import Trade

TICKS = ("product_id", "trade_id", "time", "price", "size", "side")


def tick_cells(t: Trade) -> list[str]:
    """One trade as a row of the tick format (exact decimals, never scientific notation)."""
    return [t.product_id, str(t.trade_id), t.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            format(t.price, "f"), format(t.size, "f"), t.side]


def write_ticks(path: str | Path, trades: Iterable[Trade]) -> int:
    """Write trades as a tick CSV (with its header); returns the number written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TICKS)
        for t in trades:
            w.writerow(tick_cells(t))
            n += 1
    return n
