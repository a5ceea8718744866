"""OHLCV bars: how a bar becomes trades, the tick rule that gives them a side, the row parser.

A bar's price path is open, low, high, close when it closes at or above its open, else open,
high, low, close (the usual "nearest extreme first" convention); consecutive equal prices merge.
The points are spread evenly over the bar, the first at the bar's start time; the bar's length
is `bar_seconds`, else the smallest positive step between bar times in the first 64 rows. The
volume is split evenly in 1e-8 BTC units with the remainder on the last trade; a volume too
small to split (or zero) gives one trade at the close; bars without a volume column count
volume 1. A bar whose open, high, low and close are all empty or NaN (how many exports write a
minute without trades), or a bar of volume 0 flat at the last price (how others write it), has
no trade: the features see the silence a missing row would be, and the row stays in the output,
unscored. Trade ids are consecutive; bars must go forward in time. Bars have no column path: a
chunk of bars is its rows (`blink.formats.columns.columns`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from blink.formats import cells as cell
from blink.formats.rows import Carried, Row
from blink.formats.sides import TickRule
from blink.trade import Trade

SATOSHI = Decimal("1E-8")
OHLC = ("open", "high", "low", "close")
NO_VOLUME = Decimal(1)
HEAD_ROWS = 64  # rows that tell the bar length


def bar_length(starts: list[datetime], default: float = 60.0) -> timedelta:
    """The smallest positive step between bar start times (`default` seconds without one)."""
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    return timedelta(seconds=min((s for s in steps if s > 0), default=default))


def problem(o: Decimal, h: Decimal, lo: Decimal, c: Decimal, vol: Decimal) -> str | None:
    """Why a bar is inconsistent, or None."""
    if not (0 < lo <= min(o, c) and max(o, c) <= h):
        return "inconsistent bar: need 0 < low <= open, close <= high"
    if vol < 0:
        return "inconsistent bar: negative volume"
    return None


def bar_trades(product: str, ids: Iterator[int], start: datetime, length: timedelta,
               o: Decimal, h: Decimal, lo: Decimal, c: Decimal, vol: Decimal,
               tick: TickRule) -> tuple[Trade, ...]:
    path = (o, lo, h, c) if c >= o else (o, h, lo, c)
    points = [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]
    if vol < SATOSHI * len(points):
        points = [c]
    n = len(points)
    share = (vol / n).quantize(SATOSHI, rounding=ROUND_DOWN)
    return tuple(
        Trade(product, next(ids), start + length * k / n, price,
              share if k < n - 1 else vol - share * (n - 1), tick(price))
        for k, price in enumerate(points))


def values(names: list[str], x: list[str], prices: list[tuple[str, int]], v: int | None
           ) -> tuple:
    """open, high, low, close, volume of a bar's cells; a bar whose four prices are all missing
    (empty or NaN: how exports write a minute without trades) is (None,) * 4 + (0,), and
    then a volume other than a missing one or zero is an error."""
    if all(cell.missing(x[i]) for _, i in prices):
        if v is not None and not cell.missing(x[v]) and cell.number(names[v], x[v]) != 0:
            raise cell.BadCell(f"{names[v]}: {x[v][:40]!r} in a bar without prices")
        return None, None, None, None, Decimal(0)
    return (*(cell.number(name, x[i]) for name, i in prices),
            NO_VOLUME if v is None else cell.number(names[v], x[v]))


class Bars:
    """The row parser of a bar file (`layout.at`: the columns of time, OHLC and volume)."""

    def __init__(self, layout, product: str, carried: Carried,
                 bar_seconds: float | None) -> None:
        self.at, self.names, self.time_name = layout.at, layout.names, layout.time_name
        self.product, self.carried, self.bar_seconds = product, carried, bar_seconds

    def rows(self, cells) -> Iterator[Row]:
        t, c, v = self.at["time"], self.at["close"], self.at.get("volume")
        prices = [(self.names[self.at[m]], self.at[m]) for m in OHLC]
        parsed = ((line, x, cell.when(self.time_name, x[t]), *values(self.names, x, prices, v))
                  for line, x in cells)
        head = list(itertools.islice(parsed, HEAD_ROWS))
        length = (timedelta(seconds=self.bar_seconds) if self.bar_seconds
                  else bar_length([b[2] for b in head]))
        ids, carried = self.carried.ids(), self.carried
        for line, x, start, op, hi, low, close, vol in itertools.chain(head, parsed):
            try:  # the head was read ahead: a problem names its own row's line
                carried.in_order(start, self.time_name, x[t], strict=True)
                if op is not None and (why := problem(op, hi, low, close, vol)):
                    raise cell.BadCell(why)
                if vol == 0 and op == hi == low == close == carried.tick.price:
                    op = None  # a minute without trades written as a flat bar of volume 0
            except cell.BadCell as e:
                e.line = line
                raise
            yield Row(line, x[t], x[c], () if op is None else bar_trades(
                self.product, ids, start, length, op, hi, low, close, vol, carried.tick))
