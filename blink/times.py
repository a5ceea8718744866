"""The one place Blink turns times into text (and, for input files, text into times).

Event time is a float of epoch seconds (UTC) everywhere in the pipeline; these are the only
formatters. `iso` is the form events, backtests and APIs report; `iso_fixed` the fixed-width
forms that files and logs use (seconds, milliseconds or microseconds, always with `Z`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIXED = {0: "", 3: "%f", 6: "%f"}


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
