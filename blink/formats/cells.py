"""One text cell to one value, the problem named: the errors every reader raises.

A bad cell raises `BadCell("COLUMN: PROBLEM")`; the reader adds the file and line and raises
`FileFormatError("FILE:LINE: COLUMN: PROBLEM")`, which the CLI prints before exiting with 2.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from blink.config import ConfigError
from blink.times import TimeError, parse_when
from blink.trade import TradeError, parse_decimal, parse_side, parse_trade_id

T = TypeVar("T")


class FileFormatError(ConfigError):
    """A replay/backtest input is unreadable; the message names the file, line and problem."""


class BadCell(ValueError):
    """A problem in the current row (the reader adds the file and line: `line` when the
    parser had read ahead of the bad row, else the reader's current line)."""

    line: int | None = None


def parsed(name: str, fn: Callable[[str], T], text: str) -> T:
    """fn(text), any failure as BadCell naming the column."""
    try:
        return fn(text)
    except (TradeError, TimeError) as e:  # already names the field
        raise BadCell(str(e)) from None
    except (ValueError, InvalidOperation, KeyError, OverflowError):  # Overflow: beyond year 9999
        raise BadCell(f"{name}: bad value {text[:40]!r}") from None


def trade_id(name: str, text: str) -> int:
    """A trade id: a positive integer that fits PostgreSQL's bigint."""
    return parsed(name, lambda s: parse_trade_id(int(s)), text)


def positive(name: str, text: str) -> Decimal:
    """A price or size: `parse_decimal`'s positive, in-range decimal."""
    return parsed(name, lambda s: parse_decimal(name, s), text)


def side(name: str, text: str) -> str:
    """"buy" or "sell", as written."""
    return parsed(name, parse_side, text)


MISSING = ("", "nan")  # how exports write "no value" (pandas: empty; many datasets: NaN)


def missing(text: str) -> bool:
    """An empty or NaN cell (any case, spaces around it allowed)."""
    return text.strip().lower() in MISSING


def number(name: str, text: str) -> Decimal:
    """Any finite decimal (spaces around it allowed), kept exactly."""
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise BadCell(f"{name}: not a number: {text[:40]!r}") from None
    if not d.is_finite():
        raise BadCell(f"{name}: not finite: {text[:40]!r}")
    return d


def when(name: str, text: str) -> datetime:
    """A time cell by `blink.times.parse_when` (ISO-8601 or epoch s/ms/µs/ns)."""
    try:
        return parse_when(text, name)
    except TimeError as e:
        raise BadCell(str(e)) from None
