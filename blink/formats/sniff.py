"""Which format a file is, and which column means what: read from its header, by meaning.

Column names match in any case and order; other columns are ignored.
- time: the first of TIME_NAMES present, else the first column if its first value is a time;
- `bars`: `open`, `high`, `low`, `close`, and a volume column if present (`volume`, else the
  first `volume…`, `vol` or `base_volume`; without one every bar counts volume 1);
- `ticks`: Blink's own header (`blink.formats.ticks.TICKS`), Tardis' (`TARDIS`), or generic
  `time, price, size` with an optional taker `side` and trade `id` (SIZE_NAMES, ID_NAMES);
- `series`: one numeric column: `--column NAME`, else the only numeric one beside the time,
  else the first of VALUE_NAMES present.
The guess, unless `--format` says: bars if the OHLC columns are there, else ticks if price and
size are, else a series (`--column` alone means a series). A file whose first line is already
data (a time, then numbers) has no header: two columns are a series, five or more bars in the
usual order (time, open, high, low, close[, volume, …]: Binance and ccxt exports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from blink.config import ConfigError
from blink.formats.cells import FileFormatError
from blink.formats.ticks import TARDIS, TICKS
from blink.times import TimeError, parse_when, when_form

FORMATS = ("ticks", "bars", "series")
TIME_NAMES = ("timestamp", "time", "time_utc", "datetime", "date", "open_time", "ts", "t")
OHLC = ("open", "high", "low", "close")
VOLUME_NAMES = ("volume", "vol", "base_volume")
SIZE_NAMES = ("size", "amount", "qty", "quantity")
ID_NAMES = ("id", "trade_id", "tid")
VALUE_NAMES = ("close", "price", "value")


@dataclass(frozen=True)
class Layout:
    """How to read a file: its format, the column index of each meaning, its header."""
    format: str  # "ticks", "bars" or "series"
    flavour: str  # ticks: "blink", "tardis" or "generic"; else ""
    names: tuple[str, ...]  # the header as written (headerless: "column 1", …)
    headerless: bool
    time_form: str  # how the first row's time reads ("ISO-8601", "epoch milliseconds", …)
    at: dict[str, int] = field(default_factory=dict)  # meaning -> column index

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def time_name(self) -> str:
        return self.names[self.at["time"]]

    def describe(self) -> str:
        """One line: format, the columns used (and ignored), the time unit."""
        kind = self.format + (f" ({self.flavour})" if self.flavour else "")
        used = ", ".join(f"{m}={self.names[i]}" for m, i in self.at.items())
        ignored = [n for i, n in enumerate(self.names) if i not in self.at.values()]
        rest = f"; ignored {', '.join(ignored)[:80]}" if ignored else ""
        head = "; no header" if self.headerless else ""
        return f"{kind}: {used}; times {self.time_form}{rest}{head}"


def choose(name: str, header: list[str], first: list[str] | None, *, format: str | None = None,
           column: str | None = None) -> Layout:
    """The layout of a file from its first line and its first data row (None: no rows)."""
    if format is not None and format not in FORMATS:
        raise ConfigError(f"--format {format!r}: choose ticks, bars or series")
    if column is not None and format not in (None, "series"):
        raise ConfigError(f"--column picks a series' value; it does not go with --format {format}")
    if _is_data(header):
        return _headerless(name, header, format, column)
    header = [c or f"column {i + 1}" for i, c in enumerate(header)]  # pandas' unnamed index
    low = [c.lower() for c in header]
    if format in (None, "ticks") and column is None:
        if tuple(low[:6]) == TICKS:
            return Layout("ticks", "blink", tuple(header), False, "ISO-8601",
                          {"product": 0, "id": 1, "time": 2, "price": 3, "size": 4, "side": 5})
        if tuple(low) == TARDIS:
            return Layout("ticks", "tardis", tuple(header), False, "epoch microseconds",
                          {"product": 1, "time": 2, "id": 4, "side": 5, "price": 6, "size": 7})
    time = _time(name, header, low, first)
    at = {"time": time}
    ohlc, price, size = [_find(low, (n,)) for n in OHLC], _find(low, ("price",)), _find(
        low, SIZE_NAMES)
    if format is None:
        format = ("series" if column is not None else "bars" if None not in ohlc
                  else "ticks" if price is not None and size is not None else "series")
    if format == "bars":
        if None in ohlc:
            raise FileFormatError(f"{name}:1: bars need open, high, low and close columns; "
                                  f"the header has {','.join(header)[:120]!r}")
        at |= dict(zip(OHLC, ohlc, strict=True))
        volume = [i for i in (_find(low, VOLUME_NAMES[:1]), _starting(low, "volume"),
                              _find(low, VOLUME_NAMES[1:])) if i is not None]
        if volume:
            at["volume"] = volume[0]
    elif format == "ticks":
        if price is None or size is None:
            raise FileFormatError(f"{name}:1: ticks need price and size (or amount, qty, "
                                  f"quantity) columns; the header has {','.join(header)[:120]!r}")
        at |= {"price": price, "size": size}
        for meaning, names in (("side", ("side",)), ("id", ID_NAMES)):
            if (i := _find(low, names)) is not None:
                at[meaning] = i
    else:
        at["value"] = _value(name, header, low, first, time, column)
    form = when_form(first[time]) if first and len(first) > time else "(no rows)"
    return Layout(format, "generic" if format == "ticks" else "", tuple(header), False, form, at)


def _is_data(cells: list[str]) -> bool:
    """A first line that is already data: a time, then numbers."""
    return len(cells) >= 2 and _is_time(cells[0]) and all(map(_is_number, cells[1:]))


def _headerless(name: str, row: list[str], format: str | None, column: str | None) -> Layout:
    names = tuple(f"column {i + 1}" for i in range(len(row)))
    form = when_form(row[0])
    if column is not None:
        raise ConfigError(f"--column {column!r}: {name} has no header to name columns")
    if len(row) == 2 and format in (None, "series"):
        return Layout("series", "", names, True, form, {"time": 0, "value": 1})
    if len(row) >= 5 and format in (None, "bars", "series"):
        if format == "series":
            return Layout("series", "", names, True, form, {"time": 0, "value": 4})
        at = {"time": 0} | dict(zip(OHLC, range(1, 5), strict=True))
        return Layout("bars", "", names, True, form, at | ({"volume": 5} if len(row) > 5 else {}))
    raise FileFormatError(f"{name}:1: no header, and {len(row)} columns are neither a "
                          "timestamp,value series nor time,open,high,low,close[,volume] bars: "
                          "add a header row")


def _time(name: str, header: list[str], low: list[str], first: list[str] | None) -> int:
    i = _find(low, TIME_NAMES)
    if i is not None:
        return i
    if first and _is_time(first[0]):
        return 0
    raise FileFormatError(f"{name}:1: no time column: expected one of {', '.join(TIME_NAMES)} "
                          f"(or times in the first column); the header has "
                          f"{','.join(header)[:120]!r}")


def _value(name: str, header: list[str], low: list[str], first: list[str] | None, time: int,
           column: str | None) -> int:
    if column is not None:
        i = _find(low, (column.strip().lower(),))
        if i is None:
            raise FileFormatError(f"{name}:1: no column {column!r}; the header has "
                                  f"{','.join(header)[:120]!r}")
        return i
    others = [i for i in range(len(header)) if i != time]
    numeric = [i for i in others if first is None or (i < len(first) and _is_number(first[i]))]
    if len(numeric) == 1:
        return numeric[0]
    if (i := _find(low, VALUE_NAMES)) is not None:
        return i
    choices = ", ".join(header[i] for i in numeric) or "none"
    raise FileFormatError(f"{name}:1: which column is the value? pass --column NAME "
                          f"(numeric columns: {choices[:120]})")


def _find(low: list[str], names: tuple[str, ...]) -> int | None:
    """The index of the first of `names` in the (lower-case) header."""
    return next((low.index(n) for n in names if n in low), None)


def _starting(low: list[str], prefix: str) -> int | None:
    return next((i for i, c in enumerate(low) if c.startswith(prefix)), None)


def _is_time(text: str) -> bool:
    try:
        parse_when(text)
    except TimeError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        return Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return False
