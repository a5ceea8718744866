"""The Trade value type: one Coinbase match, exact decimals, event time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from blink.times import TimeError, from_iso

SIDES = frozenset({"buy", "sell"})
MAX_ID = 2**63 - 1  # the trades.trade_id column is a bigint
MAX_EXPONENT = 30  # decimals beyond 1e±30 are garbage (and would poison a whole DB batch)


class TradeError(ValueError):
    """A trade field is missing or has the wrong type; the message names the field."""


@dataclass(frozen=True, slots=True)
class Trade:
    product_id: str
    trade_id: int
    time: datetime  # timezone-aware UTC, matching-engine time
    price: Decimal
    size: Decimal
    side: str  # maker side as Coinbase sends it: "buy" = down-tick, "sell" = up-tick

    @property
    def ts(self) -> float:
        """Event time as epoch seconds (for features)."""
        return self.time.timestamp()

    @property
    def taker_buy(self) -> bool:
        """True when the aggressor bought (the maker side was sell)."""
        return self.side == "sell"


def parse_time(value: object) -> datetime:
    """ISO-8601 with 0-9 fractional digits and Z (or an offset) -> aware UTC datetime."""
    if not isinstance(value, str):
        raise TradeError("time: expected an ISO-8601 string")
    if len(value) == 27 and value[26] == "Z" and value[19] == ".":  # the websocket's form
        try:  # YYYY-MM-DDTHH:MM:SS.ffffffZ: fromisoformat reads it as is (UTC), ~3x faster
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the general path below names the problem
    try:
        t = from_iso(value)  # nanoseconds trimmed to microseconds
    except TimeError:
        raise TradeError(f"time: not ISO-8601: {value[:40]!r}") from None
    if t.tzinfo is None:
        raise TradeError(f"time: no timezone: {value[:40]!r}")
    return t.astimezone(UTC)


def parse_decimal(name: str, value: object) -> Decimal:
    if not isinstance(value, str):
        raise TradeError(f"{name}: expected a decimal string")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise TradeError(f"{name}: not a decimal: {value[:40]!r}") from None
    if not d.is_finite() or d <= 0:
        raise TradeError(f"{name}: must be positive and finite")
    if not -MAX_EXPONENT <= d.adjusted() <= MAX_EXPONENT:  # would overflow floats / numeric
        raise TradeError(f"{name}: out of range: {value[:40]!r}")
    return d


def parse_trade_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise TradeError("trade_id: expected a positive integer (PostgreSQL bigint)")
    return value


def parse_side(value: object) -> str:
    if value not in SIDES:
        raise TradeError("side: expected 'buy' or 'sell'")
    return value  # type: ignore[return-value]


def from_coinbase(msg: dict, product_id: str | None = None) -> Trade:
    """Build a Trade from a websocket match or a REST trade item (no product_id in REST)."""
    pid = product_id if product_id is not None else msg.get("product_id")
    if not isinstance(pid, str) or not pid:
        raise TradeError("product_id: missing")
    return Trade(
        product_id=pid,
        trade_id=parse_trade_id(msg.get("trade_id")),
        time=parse_time(msg.get("time")),
        price=parse_decimal("price", msg.get("price")),
        size=parse_decimal("size", msg.get("size")),
        side=parse_side(msg.get("side")),
    )
