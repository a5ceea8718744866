"""The exact row reader's parts: `Row`, the cursor that numbers and checks CSV records, and the
state a row parser carries from row to row (next trade id, tick rule, the previous time).

Each format's row parser (`ticks`, `bars`, `series`) takes `(line, cells)` pairs from a
`Cursor` and yields `Row`s of exact `Trade`s: the parsers ARE the definition of the formats;
the column path (`blink.formats.columns`) only ever agrees with them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from blink.formats.cells import BadCell, FileFormatError
from blink.formats.sides import TickRule
from blink.times import EPOCH
from blink.trade import Trade

Cells = Iterator[tuple[int, list[str]]]  # (line number, the record's cells)
ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # line number in the file (1 = header)
    timestamp: str  # the time field exactly as written
    value: str  # price (ticks), close (bars) or value (series), exactly as written
    trades: tuple[Trade, ...]  # what the row stands for, in time order


class Cursor:
    """Records of a csv reader with their line numbers, checking the column count."""

    def __init__(self, name: str, reader, width: int, skipped: int) -> None:
        self.name, self.reader, self.width, self.skipped = name, reader, width, skipped
        self.line = skipped

    def cells(self) -> Cells:
        try:
            for cells in self.reader:
                self.line = self.reader.line_num + self.skipped
                if not cells or cells == [""]:
                    continue
                if len(cells) != self.width:
                    hint = " (truncated?)" if len(cells) < self.width else ""
                    raise FileFormatError(f"{self.name}:{self.line}: expected {self.width} "
                                          f"columns, got {len(cells)}{hint}")
                yield self.line, cells
        except csv.Error as e:
            raise FileFormatError(f"{self.name}:{self.line + 1}: {e}") from None


@dataclass
class Carried:
    """What a row parser carries from row to row (and a chunk to the next)."""
    next_id: int = 1  # the next made-up trade id (bars, series, ticks without ids)
    tick: TickRule = field(default_factory=TickRule)  # sides of rows without one
    last: datetime | None = None  # the previous row's time

    def copy(self) -> Carried:
        tick = TickRule()
        tick.price, tick.side = self.tick.price, self.tick.side
        return Carried(self.next_id, tick, self.last)

    def ids(self) -> Iterator[int]:
        while True:
            self.next_id += 1
            yield self.next_id - 1

    def in_order(self, when: datetime, name: str, text: str, strict: bool = False) -> None:
        """Rows go forward in time (`strict`: never two at one time); BadCell if not."""
        last = self.last
        if last is not None and (when < last or strict and when == last):
            raise BadCell(f"{name}: {text[:40]!r} is {'not after' if strict else 'before'} the "
                          "previous row's time (rows must be in time order, oldest first: "
                          "reverse a newest-first file)")
        self.last = when

    def in_order_us(self, us: np.ndarray, strict: bool = False) -> bool:
        """The column path's check of a chunk's times (µs since the epoch): in order, and
        after the previous row; True (and the last time kept) if so."""
        step = np.diff(us)
        if not (step > 0).all() if strict else not (step >= 0).all():
            return False
        if self.last is not None:
            first, last = int(us[0]), (self.last - EPOCH) // ONE_US
            if first < last or strict and first == last:
                return False
        self.last = EPOCH + timedelta(microseconds=int(us[-1]))
        return True
