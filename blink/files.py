"""CSV inputs for replay and backtest, streamed row by row; the format is detected by its header.

| format | header | one input row becomes |
|---|---|---|
| `ticks`  | `product_id,trade_id,time,price,size,side` (extra columns ignored) | that trade |
| `bars`   | `time_utc,open,high,low,close,volume…` (1 s, 1 min, … OHLCV bars) | 1–4 trades |
| `tardis` | `exchange,symbol,timestamp,local_timestamp,id,side,price,amount` | that trade |
| `series` | any two columns `timestamp,value` (a header row is optional) | one trade |

Rules: bars follow `blink/bars.py`; their length is `bar_seconds`, else the smallest positive
step between bar times in the first 64 rows. Tardis `timestamp` is µs since the epoch and its
TAKER side becomes Coinbase's maker side. Series timestamps are ISO-8601 (no zone = UTC) or
epoch s / ms / µs / ns (told apart by magnitude); the value is kept as written (`Row.value`, may
be zero or negative) and becomes the price of a size-1 trade. Bars and series get consecutive
trade ids from `first_id` and sides by the tick rule. `product_id` overrides the file's product
(replay passes the configured pair); otherwise ticks keep theirs, Tardis uses the symbol, bars
and series BTC-USD.

A bad file raises `FileFormatError("FILE:LINE: PROBLEM")`; the CLI prints it and exits 2.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from blink import bars
from blink.config import ConfigError
from blink.ticks import TICKS
from blink.trade import Trade, TradeError, parse_decimal, parse_side, parse_time, parse_trade_id

BARS = ("time_utc", "open", "high", "low", "close")  # + a volume column
TARDIS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
DEFAULT_PRODUCT = "BTC-USD"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAKER_SIDE = {"buy": "sell", "sell": "buy"}  # taker side -> Coinbase's maker side


class FileFormatError(ConfigError):
    """A replay/backtest input is unreadable; the message names the file, line and problem."""


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # line number in the file (1 = header)
    timestamp: str  # the time field exactly as written
    value: str  # price (ticks), close (bars) or value (series), exactly as written
    trades: tuple[Trade, ...]  # what the row stands for, in time order


class _Bad(ValueError):
    """A problem in the current row (the reader adds the file and line)."""


def sniff(path: str | Path) -> str:
    """The format of `path`: "ticks", "bars", "tardis" or "series" (reads the header only)."""
    with _open(path) as f:
        return _kind(path, _header(path, f))[0]


def read(path: str | Path, product_id: str | None = None, *, bar_seconds: float | None = None,
         first_id: int = 1) -> Iterator[Row]:
    """Stream the rows of `path` (see the module docstring for the rules)."""
    with _open(path) as f:
        header = _header(path, f)
        kind, headerless = _kind(path, header)
        skipped = 0 if headerless else 1
        if headerless:
            f.seek(0)
        cursor = _Cursor(path, csv.reader(_decoded(path, f, skipped + 1)), len(header), skipped)
        rows = cursor.cells()
        try:
            if kind == "ticks":
                yield from _ticks(rows, product_id)
            elif kind == "tardis":
                yield from _tardis(rows, product_id)
            elif kind == "bars":
                ids = itertools.count(first_id)
                yield from _bars(rows, product_id or DEFAULT_PRODUCT, ids, bar_seconds)
            else:
                yield from _series(rows, product_id or DEFAULT_PRODUCT, itertools.count(first_id))
        except _Bad as e:
            raise FileFormatError(f"{path}:{cursor.line}: {e}") from None


def read_trades(path: str | Path, product_id: str | None = None, **kw) -> Iterator[Trade]:
    for row in read(path, product_id, **kw):
        yield from row.trades


def _open(path: str | Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as e:
        raise FileFormatError(f"{path}: cannot open: {e.strerror or e}") from None


def _decoded(path: str | Path, f: IO[bytes], first: int) -> Iterator[str]:
    """Lines decoded one by one, so a bad byte is reported with its line number."""
    for n, raw in enumerate(f, first):
        try:
            yield raw.decode("utf-8-sig" if n == 1 else "utf-8")  # drop a BOM
        except UnicodeDecodeError:
            raise FileFormatError(f"{path}:{n}: not UTF-8 text") from None


def _header(path: str | Path, f: IO[bytes]) -> list[str]:
    first = next(csv.reader(_decoded(path, iter([f.readline()]), 1)), [])
    if not first:
        raise FileFormatError(f"{path}:1: empty file (no header)")
    return [c.strip().lower() for c in first]


def _kind(path: str | Path, header: list[str]) -> tuple[str, bool]:
    """(format, headerless) for a header row."""
    if tuple(header[:6]) == TICKS:
        return "ticks", False
    if tuple(header[:5]) == BARS and len(header) == 6 and header[5].startswith("volume"):
        return "bars", False
    if tuple(header) == TARDIS:
        return "tardis", False
    if len(header) == 2:
        try:  # a first row that is already data: no header
            _when(header[0]), _number("value", header[1])
            return "series", True
        except _Bad:
            return "series", False
    raise FileFormatError(
        f"{path}:1: unrecognised header {','.join(header)[:120]!r}: expected Blink ticks "
        f"({','.join(TICKS)}), OHLCV bars ({','.join(BARS)},volume), Tardis ticks "
        f"({','.join(TARDIS)}) or a two-column timestamp,value series")


class _Cursor:
    """Rows of a csv reader with their line numbers, checking the column count."""

    def __init__(self, path: str | Path, reader, width: int, skipped: int) -> None:
        self.path, self.reader, self.width, self.skipped = path, reader, width, skipped
        self.line = skipped

    def cells(self) -> Iterator[tuple[int, list[str]]]:
        try:
            for cells in self.reader:
                self.line = self.reader.line_num + self.skipped
                if not cells or cells == [""]:
                    continue
                if len(cells) != self.width:
                    hint = " (truncated?)" if len(cells) < self.width else ""
                    raise FileFormatError(f"{self.path}:{self.line}: expected {self.width} "
                                          f"columns, got {len(cells)}{hint}")
                yield self.line, cells
        except csv.Error as e:
            raise FileFormatError(f"{self.path}:{self.line + 1}: {e}") from None


def _field(name: str, fn, text: str):
    try:
        return fn(text)
    except TradeError as e:  # already names the field
        raise _Bad(str(e)) from None
    except (ValueError, InvalidOperation, KeyError):
        raise _Bad(f"{name}: bad value {text[:40]!r}") from None


def _id(name: str, text: str) -> int:
    return _field(name, lambda s: parse_trade_id(int(s)), text)


def _positive(name: str, text: str) -> Decimal:
    return _field(name, lambda s: parse_decimal(name, s), text)


def _ticks(cells, product_id: str | None) -> Iterator[Row]:
    for line, c in cells:
        t = Trade(product_id or c[0], _id("trade_id", c[1]), _field("time", parse_time, c[2]),
                  _positive("price", c[3]), _positive("size", c[4]),
                  _field("side", parse_side, c[5]))
        yield Row(line, c[2], c[3], (t,))


def _tardis(cells, product_id: str | None) -> Iterator[Row]:
    for line, c in cells:
        us = _field("timestamp", int, c[2])
        side = _field("side", lambda s: MAKER_SIDE[parse_side(s)], c[5])
        t = Trade(product_id or c[1], _id("id", c[4]), EPOCH + timedelta(microseconds=us),
                  _positive("price", c[6]), _positive("amount", c[7]), side)
        yield Row(line, c[2], c[6], (t,))


def _bars(rows, product: str, ids, bar_seconds: float | None) -> Iterator[Row]:
    names = ("open", "high", "low", "close", "volume")
    parsed = ((line, c, _when(c[0], "time_utc"),
               *(_number(n, v) for n, v in zip(names, c[1:], strict=True)))
              for line, c in rows)
    head = list(itertools.islice(parsed, 64))
    length = (timedelta(seconds=bar_seconds) if bar_seconds
              else bars.bar_length([b[2] for b in head]))
    tick, previous = bars.TickRule(), None
    for line, c, start, o, h, lo, close, vol in itertools.chain(head, parsed):
        if previous is not None and start <= previous:
            raise _Bad(f"time_utc: {c[0]!r} is not after the previous bar")
        if why := bars.problem(o, h, lo, close, vol):
            raise _Bad(why)
        previous = start
        yield Row(line, c[0], c[4], bars.bar_trades(product, ids, start, length, o, h, lo,
                                                    close, vol, tick))


def _series(rows, product: str, ids) -> Iterator[Row]:
    tick, one = bars.TickRule(), Decimal(1)
    for line, c in rows:
        value = _number("value", c[1])
        yield Row(line, c[0], c[1], (Trade(product, next(ids), _when(c[0]), value, one,
                                           tick(value)),))


def _number(name: str, text: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise _Bad(f"{name}: not a number: {text[:40]!r}") from None
    if not d.is_finite():
        raise _Bad(f"{name}: not finite: {text[:40]!r}")
    return d


def _when(text: str, name: str = "timestamp") -> datetime:
    """ISO-8601 (no zone = UTC) or epoch s/ms/µs/ns told apart by magnitude."""
    text = text.strip()
    try:
        x = Decimal(text)
    except InvalidOperation:
        try:
            return parse_time(text)
        except TradeError as e:
            if "no timezone" not in str(e):
                raise _Bad(f"{name}: not ISO-8601 or epoch: {text[:40]!r}") from None
            return parse_time(text + ("T00:00:00" if len(text) == 10 else "") + "+00:00")
    if not x.is_finite():
        raise _Bad(f"{name}: not finite: {text[:40]!r}")
    for digits in (0, 3, 6, 9):  # s, ms, µs, ns
        if abs(x) < Decimal(10) ** (11 + digits):
            return EPOCH + timedelta(microseconds=int(x * 10 ** (6 - digits)))
    raise _Bad(f"{name}: epoch out of range: {text[:40]!r}")
