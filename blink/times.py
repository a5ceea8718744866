"""The one place Blink turns times into text, and the text of input files into times.

Event time is a float of epoch seconds (UTC) everywhere in the pipeline. Formatters: `iso` is
the form events, backtests and APIs report; `iso_fixed` the fixed-width forms that files and
logs use (seconds, milliseconds or microseconds, always with `Z`).

Parsers, for the time cells of input files: `parse_when` reads one cell, ISO-8601 (no zone =
UTC; `Z` or an offset; `T` or a space; 0-9 fraction digits, the first 6 count; a bare date) or
an epoch in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude
(`epoch_unit`). `epoch_us` and `iso_us` convert whole columns at once (numpy) and return None
unless every cell is in a form on which they provably give what `parse_when` gives.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED = {0: "", 3: "%f", 6: "%f"}
# epoch units by magnitude: |x| below the bound -> (name, fraction digits); beyond: ns
EPOCH_UNITS = ((10**11, "seconds", 0), (10**14, "milliseconds", 3), (10**17, "microseconds", 6),
               (10**20, "nanoseconds", 9))
EXACT_US = 2**53  # |µs| below this: float(µs) / 1e6 is the correctly rounded epoch seconds
DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


class TimeError(ValueError):
    """A time cell that is not a time; the message says what was expected."""


def utc(ts: float) -> datetime:
    """Epoch seconds -> aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


def iso(ts: float) -> str:
    """Epoch seconds as ISO-8601 UTC with Z; microseconds only when there are any."""
    return utc(ts).isoformat().replace("+00:00", "Z")


def iso_fixed(ts: float, digits: int = 6) -> str:
    """Epoch seconds as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z` (digits 0, 3 or 6, truncated)."""
    if digits not in _FIXED:
        raise ValueError(f"digits must be 0, 3 or 6, not {digits}")
    t = EPOCH + timedelta(microseconds=round(ts * 1e6))
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + t.strftime("%f")[:digits]
    return text + "Z"


def iso_or_none(t: datetime | float | None) -> str | None:
    """A datetime (its own isoformat) or epoch seconds (`iso_fixed(ts, 0)`), None as None."""
    if t is None:
        return None
    return t.isoformat() if isinstance(t, datetime) else iso_fixed(t, 0)


# ---- parsing one cell ---------------------------------------------------------------------------

def from_iso(text: str) -> datetime:
    """`datetime.fromisoformat` taking 0-9 fraction digits (the first 6 count): naive or aware
    as written. Raises TimeError naming the text."""
    trimmed = text
    if "." in trimmed:  # fromisoformat takes at most 6 fraction digits: drop the rest
        head, _, frac = trimmed.partition(".")
        digits = len(frac) - len(frac.lstrip("0123456789"))
        trimmed = f"{head}.{frac[:min(digits, 6)]}{frac[digits:]}"
    try:
        return datetime.fromisoformat(trimmed)
    except ValueError:
        raise TimeError(f"not ISO-8601: {text[:40]!r}") from None


def parse_iso(text: str) -> datetime:
    """ISO-8601 with 0-9 fraction digits (the first 6 count), `T` or a space; a time without
    a zone, or a bare date, is UTC. Raises TimeError (OverflowError: beyond year 1 / 9999)."""
    t = from_iso(text)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def epoch_unit(text: str) -> str | None:
    """The unit an epoch cell is read in ("seconds" … "nanoseconds"), None if not an epoch."""
    try:
        x = abs(Decimal(text.strip()))
    except InvalidOperation:
        return None
    return next((unit for bound, unit, _ in EPOCH_UNITS if x.is_finite() and x < bound), None)


def when_form(text: str) -> str:
    """How a time cell is read, for the log line: "ISO-8601" or "epoch <unit>"."""
    unit = epoch_unit(text)
    return "ISO-8601" if unit is None else f"epoch {unit}"


def parse_when(text: str, name: str = "timestamp") -> datetime:
    """A time cell (see the module docstring) as an aware UTC datetime; TimeError names `name`,
    the cell and what was expected."""
    text = text.strip()
    try:
        x = Decimal(text)
    except InvalidOperation:
        try:
            return parse_iso(text)
        except TimeError:
            raise TimeError(f"{name}: {text[:40]!r} is not a time (expected ISO-8601 or epoch "
                            "seconds/ms/µs/ns)") from None
        except OverflowError:  # an offset pushing year 1 or 9999 out of range
            raise TimeError(f"{name}: out of range: {text[:40]!r}") from None
    if not x.is_finite():
        raise TimeError(f"{name}: not finite: {text[:40]!r}")
    for bound, _, digits in EPOCH_UNITS:
        if abs(x) < bound:
            try:
                return EPOCH + timedelta(microseconds=int(x.scaleb(6 - digits)))
            except OverflowError:  # before year 1
                break
    raise TimeError(f"{name}: epoch out of range: {text[:40]!r}")


# ---- parsing whole columns (numpy): None unless provably what parse_when gives ------------------

def exact_us(us: np.ndarray) -> bool:
    """Every µs value converts to epoch seconds exactly (float(µs) / 1e6 correctly rounded)."""
    return bool(np.abs(us).max() < EXACT_US)


def epoch_us(texts: list[str]) -> np.ndarray | None:
    """Unsigned integer epochs in s, ms, µs or ns (by magnitude, as `parse_when`), as µs."""
    try:
        data = "\n".join(texts).encode("ascii")
    except UnicodeEncodeError:
        return None
    if data.translate(None, b"0123456789\n"):
        return None
    try:
        x = np.fromiter(map(int, texts), np.int64, len(texts))
    except (ValueError, OverflowError):
        return None
    us = x // 1000  # ns; then the smaller magnitudes, largest first
    for below, factor in ((10**17, 1), (10**14, 1000), (10**11, 10**6)):  # µs, ms, s
        at = x < below
        us[at] = x[at] * factor
    return us if exact_us(us) else None


def iso_us(texts: list[str], naive: bool) -> np.ndarray | None:
    """ISO-8601 times as µs since the epoch, for the layouts `YYYY-MM-DD(T| )HH:MM:SS`, an
    optional `.` and 1-9 fraction digits (the first 6 count), then `Z` or `±HH:MM` (or nothing,
    and a bare `YYYY-MM-DD`, when `naive`: UTC). Texts of several lengths go length by length."""
    try:
        data = ("\n".join(texts) + "\n").encode("ascii")
    except UnicodeEncodeError:
        return None
    width = len(texts[0]) + 1
    if len(data) == len(texts) * width:  # all of one length if every newline is in place
        m = np.frombuffer(data, np.uint8).reshape(-1, width)
        if (m[:, -1] == ord("\n")).all():
            return iso_layout_us(m[:, :-1], texts[0], naive)
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    us = np.empty(len(texts), np.int64)
    for length in np.unique(lengths).tolist():
        at = np.flatnonzero(lengths == length)
        part = iso_us([texts[i] for i in at.tolist()], naive)
        if part is None:
            return None
        us[at] = part
    return us


def iso_layout_us(m: np.ndarray, first: str, naive: bool) -> np.ndarray | None:
    """`iso_us` of the rows of `m` (ASCII bytes, one time a row) in the layout of `first`."""
    layout = iso_layout(first, naive)
    if layout is None:
        return None
    pattern = np.frombuffer(layout.encode("ascii"), np.uint8)
    digit, sign = pattern == ord("d"), pattern == ord("s")
    fixed = ~(digit | sign)
    if not (((m[:, digit] - ord("0")) <= 9).all() and (m[:, fixed] == pattern[fixed]).all()
            and np.isin(m[:, sign], (ord("+"), ord("-"))).all()):
        return None

    def number(start: int, digits: int) -> np.ndarray:
        x = m[:, start].astype(np.int64) - ord("0")
        for i in range(start + 1, start + digits):
            x = x * 10 + m[:, i] - ord("0")
        return x

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    if not ((month >= 1) & (month <= 12)).all():
        return None
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    if not ((day >= 1) & (day <= DAYS_IN_MONTH[month] - ((month == 2) & ~leap))).all():
        return None
    before = year - 1  # days since 0001-01-01, then since 1970-01-01
    days = (before * 365 + before // 4 - before // 100 + before // 400
            + DAYS_BEFORE_MONTH[month] + ((month > 2) & leap) + day - 1 - 719162)
    seconds = days * 86400
    if len(layout) > 10:
        hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
        if not ((hour <= 23) & (minute <= 59) & (second <= 59)).all():
            return None
        seconds += hour * 3600 + minute * 60 + second
    us = seconds * 1_000_000
    if layout[19:20] == ".":
        kept = min(len(layout) - 20 - len(layout[20:].lstrip("d")), 6)
        us += number(20, kept) * 10 ** (6 - kept)
    if layout.endswith("sdd:dd"):
        hours, minutes = number(len(layout) - 5, 2), number(len(layout) - 2, 2)
        if not ((hours <= 23) & (minutes <= 59)).all():
            return None
        east = np.where(m[:, len(layout) - 6] == ord("-"), -1, 1)
        us -= east * (hours * 60 + minutes) * 60_000_000
    return us if exact_us(us) else None


def iso_layout(text: str, naive: bool) -> str | None:
    """The layout of an ISO time that `iso_layout_us` reads ("d": a digit, "s": a sign)."""
    date = "dddd-dd-dd"
    if len(text) == 10:
        return date if naive else None
    if len(text) < 19 or text[10] not in "T ":
        return None
    layout, rest = date + text[10] + "dd:dd:dd", text[19:]
    if rest.startswith("."):
        digits = len(rest) - 1 - len(rest[1:].lstrip("0123456789"))
        if not 1 <= digits <= 9:
            return None
        layout, rest = layout + "." + "d" * digits, rest[1 + digits:]
    if rest == "Z":
        return layout + "Z"
    if len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        return layout + "sdd:dd"
    return layout if rest == "" and naive else None
