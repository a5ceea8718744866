"""The fast reader: chunks of rows as arrays (`Columns`), whole columns converted at once.

A chunk of simple lines (no quotes, no blank lines, every line `width` cells) is split in one
go and its columns converted with numpy; a format's `fast` accepts only inputs on which that
conversion provably gives what its row parser gives (plain decimals, ISO times in a few fixed
layouts, …). Anything else in a chunk (quotes, blank lines, an exponent, a bad value) sends
that chunk through the row parser, which raises the same error at the same line;
`Columns.trades()` re-runs that parser too, so exact Decimals and Trades come from one place.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from blink.formats.cells import BadCell, FileFormatError
from blink.formats.containers import decoded
from blink.formats.rows import Cells, Cursor, Row
from blink.trade import Trade

CHUNK_ROWS = 65536
Parse = Callable[[Cells], Iterator[Row]]


@dataclass(frozen=True, slots=True, eq=False)  # no ==: numpy arrays have no truth value
class Columns:
    """Consecutive input rows as arrays (one chunk of a file)."""
    first_line: int  # file line number of the chunk's first row
    last_line: int  # file line number of its last row (progress reporting)
    timestamp: list[str]  # per row: the time field exactly as written
    value: list[str]  # per row: price/close/value exactly as written
    ends: np.ndarray  # per row, int64: one past the row's last trade in the arrays below
    ts: np.ndarray  # per trade, float64 epoch seconds (== Trade.ts)
    price: np.ndarray  # per trade, float64 (== float(Trade.price))
    size: np.ndarray  # per trade, float64 (== float(Trade.size))
    taker: np.ndarray  # per trade, bool (== Trade.taker_buy)
    _trades: Callable[[], list[Trade]] = field(repr=False)

    def trades(self) -> list[Trade]:
        """The exact Trade objects (Decimal), in order: parsed again from the chunk's cells on
        each call (~5 µs a trade), or kept ones (bars; chunks built from Rows)."""
        return self._trades()

    def __len__(self) -> int:
        return len(self.timestamp)

    def __repr__(self) -> str:  # not the 65536 timestamps
        return (f"Columns(lines {self.first_line}-{self.last_line}: {len(self)} rows, "
                f"{len(self.ts)} trades)")


def columns(rows: Iterable[Row], chunk_rows: int = CHUNK_ROWS) -> Iterator[Columns]:
    """Rows grouped `chunk_rows` at a time as `Columns` (a bad row: the rows before it first)."""
    chunk: list[Row] = []
    try:
        for row in rows:
            chunk.append(row)
            if len(chunk) == chunk_rows:
                yield from_rows(chunk)
                chunk = []
    except FileFormatError:
        if chunk:
            yield from_rows(chunk)
        raise
    if chunk:
        yield from_rows(chunk)


def from_rows(rows: list[Row]) -> Columns:
    trades = [t for r in rows for t in r.trades]
    n = len(trades)
    return Columns(
        rows[0].line, rows[-1].line, [r.timestamp for r in rows], [r.value for r in rows],
        np.cumsum([len(r.trades) for r in rows], dtype=np.int64),
        np.fromiter((t.ts for t in trades), np.float64, n),
        np.fromiter((float(t.price) for t in trades), np.float64, n),
        np.fromiter((float(t.size) for t in trades), np.float64, n),
        np.fromiter((t.taker_buy for t in trades), np.bool_, n), trades.copy)


def chunks(name: str, lines: Iterator[bytes], line: int, width: int, fmt,
           chunk_rows: int) -> Iterator[Columns]:
    """Columns of `lines` (line numbers from `line`), `chunk_rows` lines at a time: by
    `fmt.fast(line, cells)` when it takes the chunk, else by `fmt.rows(cells)`."""
    while raw := list(itertools.islice(lines, chunk_rows)):
        cells = split(raw, line, width)
        cols = None if cells is None else fmt.fast(line, cells)
        if cols is not None:
            yield cols
            line += len(raw)
            continue
        rows, line, error = exact(name, lines, raw, line, width, fmt.rows)
        if rows:
            yield from_rows(rows)
        if error:
            raise error from None


def split(raw: list[bytes], line: int, width: int) -> list[list[str]] | None:
    """The columns of consecutive lines that are simple CSV (no quotes, no blank lines,
    `width` cells each, nothing longer than csv's field limit), split as csv.reader would
    split them; None for anything else."""
    if max(map(len, raw)) > csv.field_size_limit():
        return None
    try:
        text = b"".join(raw).decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError:
        return None
    if '"' in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:  # csv.reader ends a row at a lone CR too
            return None
    if not text.endswith("\n"):  # the last line of a file may have no newline
        text += "\n"
    # each newline becomes a cell of its own: a line of `width` cells is `width` cells + "\n"
    cells = text.replace("\n", ",\n,")[:-1].split(",")
    n, step = len(raw), width + 1
    if len(cells) != n * step or cells[width::step].count("\n") != n:
        return None
    return [cells[k::step] for k in range(width)]


def exact(name: str, lines: Iterator[bytes], raw: list[bytes], line: int, width: int,
          parse: Parse) -> tuple[list[Row], int, FileFormatError | None]:
    """The rows of `raw` (lines from `line` on) by the row parser, as the row reader reads
    them: a record still open at the chunk's end continues into `lines`. Also the next line
    number and the error that stopped the rows, if any."""
    last = line + len(raw) - 1
    reader = csv.reader(itertools.chain(decoded(name, raw, line),
                                        decoded(name, lines, last + 1)))
    cursor = Cursor(name, reader, width, line - 1)
    rows: list[Row] = []
    try:
        for row in parse(cursor.cells()):
            rows.append(row)
            if cursor.line >= last:
                break
    except BadCell as e:
        return rows, 0, FileFormatError(f"{name}:{e.line or cursor.line}: {e}")
    except FileFormatError as e:
        return rows, 0, e
    return rows, line + reader.line_num, None


def fast(line: int, cells: list[list[str]], timestamp: list[str], value: list[str],
         us: np.ndarray, price: np.ndarray, size: np.ndarray, taker: np.ndarray,
         parse: Parse, trades: Callable[[], list[Trade]] | None = None) -> Columns:
    """A chunk read fast, one trade a row; its Trades are `trades()`, else the row parser's
    reading of its cells again."""
    n = len(timestamp)
    if trades is None:
        def trades() -> list[Trade]:
            return [t for row in parse(zip(itertools.count(line), zip(*cells, strict=True)))
                    for t in row.trades]
    return Columns(line, line + n - 1, timestamp, value, np.arange(1, n + 1, dtype=np.int64),
                   us / 1e6, price, size, taker, trades)


# Conversions of whole columns. Each returns None unless every text is in a form on which it
# provably agrees with the row parser; the chunk then goes through the row parser instead.

LOW, HIGH = 1.0000001e-30, 9.999999e30  # inside parse_decimal's 1e-30 <= x < 1e31, with margin
ID_LIST = re.compile(r"(?:0*[1-9][0-9]{0,17}\n)*")  # 1 .. 10**18 - 1; ASCII digits (not \d)


def ascii_only(texts: list[str], allowed: bytes) -> bool:
    """Every text is made of `allowed` ASCII bytes only."""
    try:
        data = "\n".join(texts).encode("ascii")
    except UnicodeEncodeError:
        return False
    return not data.translate(None, allowed + b"\n")


def floats(texts: list[str], allowed: bytes = b"-.0123456789") -> np.ndarray | None:
    """Plain decimals (no exponent, spaces or underscores) as floats: float() of such a text is
    float(Decimal(text)) and accepts exactly what Decimal accepts."""
    if not ascii_only(texts, allowed):
        return None
    try:
        return np.fromiter(map(float, texts), np.float64, len(texts))
    except ValueError:
        return None


def positives(texts: list[str]) -> np.ndarray | None:
    """parse_decimal's positive, in-range decimals."""
    x = floats(texts, b".0123456789")
    return x if x is not None and x.min() >= LOW and x.max() <= HIGH else None


def ints(texts: list[str]) -> np.ndarray | None:
    """int() of each text, if all fit int64 (int() itself: the row parser's rule)."""
    try:
        return np.fromiter(map(int, texts), np.int64, len(texts))
    except (ValueError, OverflowError):
        return None


def ids(texts: list[str]) -> bool:
    """Valid trade ids: integers from 1 to 10**18 - 1 in ASCII digits, leading zeros allowed
    (parse_trade_id takes 1 to 2**63 - 1, int() the same texts and more)."""
    return ID_LIST.fullmatch("\n".join(texts) + "\n") is not None


def sells(sides: list[str]) -> np.ndarray | None:
    """Which sides are "sell", when every side is "buy" or "sell" (else None)."""
    if sides.count("buy") + sides.count("sell") != len(sides):
        return None
    return np.fromiter(map(len, sides), np.int8, len(sides)) == 4
