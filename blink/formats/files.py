"""Input files for replay, backtest and evaluate: opened, their format chosen, read as rows
(`read`: exact Trades, the definition) or as column chunks (`read_columns`: the fast path).

| format | columns (by meaning: `blink.formats.sniff`) | one input row becomes |
|---|---|---|
| `ticks`  | Blink's own, Tardis', or `time, price, size[, side][, id]` | that trade (`ticks`) |
| `bars`   | `time, open, high, low, close[, volume]` (OHLCV bars) | 1–4 trades (`bars`) |
| `series` | `time, value`, or any one numeric column (`column=`) | one trade (`series`) |

Containers: CSV, gzip CSV, Parquet, `-` for standard input (`blink.formats.containers`).
Times: `blink.times.parse_when`. `format=` overrides the guess. `product_id` overrides the
file's product (replay and backtest pass the configured pair). A bad file raises
`FileFormatError("FILE:LINE: PROBLEM")`; the CLI prints it and exits 2.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from blink.formats import containers, ticks
from blink.formats.bars import Bars
from blink.formats.cells import BadCell, FileFormatError
from blink.formats.columns import CHUNK_ROWS, Columns, chunks, columns
from blink.formats.rows import Carried, Cursor, Row
from blink.formats.series import Series
from blink.formats.sniff import Layout, choose
from blink.formats.ticks import DEFAULT_PRODUCT, TARDIS, TICKS
from blink.trade import Trade

__all__ = ["CHUNK_ROWS", "TARDIS", "TICKS", "Columns", "FileFormatError", "Layout", "Row",
           "columns", "describe", "read", "read_columns", "read_trades", "sniff"]


@dataclass
class _Opened:
    name: str
    container: str
    layout: Layout
    lines: Iterator[bytes]  # the data lines ...
    first_line: int  # ... numbered from here


@contextlib.contextmanager
def _opened(path: str | Path, format: str | None, column: str | None) -> Iterator[_Opened]:
    with containers.opened(path) as source:
        name, lines = source.name, source.lines
        first = next(lines, None)
        header = containers.cells(name, first, 1) if first is not None else []
        if not header or header == [""]:
            raise FileFormatError(f"{name}:1: empty file (no header)")
        second, titled = next(lines, None), 0
        row = _row(name, second, 2)
        if len(header) == 1 and row and len(row) > 1:  # a title line above the header
            header, second, titled = row, next(lines, None), 1
            row = _row(name, second, 3)
        layout = choose(name, header, row or None, format=format, column=column)
        head = [first] if layout.headerless else []
        data = itertools.chain(head, [] if second is None else [second], lines)
        yield _Opened(name, source.container, layout, data,
                      (1 if layout.headerless else 2) + titled)


def _row(name: str, line: bytes | None, number: int) -> list[str] | None:
    """The cells of the first data line (None: none, or unreadable: the reader reports it)."""
    try:
        return None if line is None else containers.cells(name, line, number)
    except FileFormatError:
        return None


def sniff(path: str | Path, *, format: str | None = None, column: str | None = None) -> Layout:
    """The layout of `path` (format, columns by meaning): reads its first two lines only."""
    with _opened(path, format, column) as f:
        return f.layout


def describe(path: str | Path, *, format: str | None = None, column: str | None = None) -> str:
    """One line for the log: the container, the format, the columns used, the time unit."""
    with _opened(path, format, column) as f:
        return f"{f.name}: {f.container}, {f.layout.describe()}"


def _parser(f: _Opened, product_id: str | None, bar_seconds: float | None, first_id: int):
    layout, carried = f.layout, Carried(first_id)
    if layout.format == "bars":
        return Bars(layout, product_id or DEFAULT_PRODUCT, carried, bar_seconds)
    if layout.format == "series":
        return Series(layout, product_id or DEFAULT_PRODUCT, carried)
    flavour = {"blink": ticks.BlinkTicks, "tardis": ticks.TardisTicks}.get(
        layout.flavour, ticks.GenericTicks)
    return flavour(layout, product_id, carried)


def read(path: str | Path, product_id: str | None = None, *, bar_seconds: float | None = None,
         first_id: int = 1, format: str | None = None, column: str | None = None
         ) -> Iterator[Row]:
    """Stream the rows of `path` (see the module docstring for the rules)."""
    with _opened(path, format, column) as f:
        reader = csv.reader(containers.decoded(f.name, f.lines, f.first_line))
        cursor = Cursor(f.name, reader, f.layout.width, f.first_line - 1)
        try:
            yield from _parser(f, product_id, bar_seconds, first_id).rows(cursor.cells())
        except BadCell as e:
            raise FileFormatError(f"{f.name}:{e.line or cursor.line}: {e}") from None


def read_trades(path: str | Path, product_id: str | None = None, **kw) -> Iterator[Trade]:
    for row in read(path, product_id, **kw):
        yield from row.trades


def read_columns(path: str | Path, product_id: str | None = None, *,
                 bar_seconds: float | None = None, first_id: int = 1,
                 chunk_rows: int = CHUNK_ROWS, format: str | None = None,
                 column: str | None = None) -> Iterator[Columns]:
    """The rows `read` yields, `chunk_rows` at a time as `Columns` (bars: `read`'s rows grouped).

    A bad input raises `read`'s error once the rows before it have been yielded."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    kw = {"bar_seconds": bar_seconds, "first_id": first_id, "format": format, "column": column}
    with _opened(path, format, column) as f:
        if f.layout.format != "bars":
            yield from chunks(f.name, f.lines, f.first_line, f.layout.width,
                              _parser(f, product_id, bar_seconds, first_id), chunk_rows)
            return
    yield from columns(read(path, product_id, **kw), chunk_rows)
