"""A series: one number per row (`timestamp,value`, a metric, one column of a wider file).

The value is kept as written (`Row.value`; zero and negative allowed) and becomes the price of a
size-1 trade, with consecutive trade ids from `first_id` and a side by the tick rule. Times are
ISO-8601 or epoch s/ms/µs/ns (`blink.times.parse_when`), going forward (equal times allowed).
A missing value (empty or NaN: no sample) gives the row no trade: the features see the silence
a missing row would be, and the row stays in the output, unscored.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import numpy as np

from blink.formats import cells as cell
from blink.formats.columns import Columns, fast, floats
from blink.formats.rows import Carried, Cells, Row
from blink.formats.sides import tick_takers
from blink.times import epoch_us, iso_us
from blink.trade import Trade

ONE = Decimal(1)


class Series:
    def __init__(self, layout, product: str, carried: Carried) -> None:
        self.product, self.carried = product, carried
        self.t, self.v = layout.at["time"], layout.at["value"]
        self.time_name, self.value_name = layout.time_name, layout.names[self.v]

    def rows(self, cells: Cells, carried: Carried | None = None) -> Iterator[Row]:
        carried = carried or self.carried
        ids = carried.ids()
        for line, c in cells:
            when = cell.when(self.time_name, c[self.t])
            # no sample (empty or NaN): a row without a trade, unscored
            value = None if cell.missing(c[self.v]) else cell.number(self.value_name, c[self.v])
            carried.in_order(when, self.time_name, c[self.t])
            trades = () if value is None else (
                Trade(self.product, next(ids), when, value, ONE, carried.tick(value)),)
            yield Row(line, c[self.t], c[self.v], trades)

    def fast(self, line: int, cells: list[list[str]]) -> Columns | None:
        stamps, values = cells[self.t], cells[self.v]
        us = epoch_us(stamps)
        if us is None:
            us = iso_us(stamps, naive=True)
        price = floats(values)
        if us is None or price is None:
            return None
        start = self.carried.copy()
        if not self.carried.in_order_us(us):
            return None
        taker = tick_takers(values, price, self.carried.tick)
        self.carried.next_id += len(values)
        return fast(line, cells, stamps, values, us, price, np.ones(len(values)), taker,
                    lambda c: self.rows(c, start.copy()))
