"""The order vocabulary: sides, order types, times in force and statuses, and how a strategy's words and
numbers become them.

A strategy may write ``'market'``, ``'MKT'`` or :attr:`OrderType.MARKET`; :func:`parse_enum` turns any of
them into the enum or raises :class:`~copilot_quant.errors.OrderValidationError` naming the allowed values.
:func:`check_price` and :func:`shown` check a price and show a value in such a message. The enums are
re-exported by :mod:`copilot_quant.model.orders` (and the guide's ``copilot_quant.backtest.orders``).
"""

from __future__ import annotations

import math
import numbers
from enum import StrEnum
from typing import Any, TypeVar

from copilot_quant.errors import OrderValidationError

__all__ = [
    "DONE",
    "NEEDS_LIMIT",
    "NEEDS_STOP",
    "ON_CLOSE",
    "TRAILING",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "TimeInForce",
    "check_price",
    "parse_enum",
    "shown",
]

_E = TypeVar("_E", bound=StrEnum)


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells: the sign of the position change."""
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"
    TRAILING_STOP_LIMIT = "trailing_stop_limit"
    MARKET_ON_CLOSE = "market_on_close"
    LIMIT_ON_CLOSE = "limit_on_close"

    # set lookups (the members hash as their str values): every order asks these at construction
    @property
    def needs_limit_price(self) -> bool:
        return self in NEEDS_LIMIT

    @property
    def on_close(self) -> bool:
        """Filled in the closing auction (IB's ``MOC``/``LOC``)."""
        return self in ON_CLOSE

    @property
    def is_trailing(self) -> bool:
        return self in TRAILING

    @property
    def needs_stop_price(self) -> bool:
        return self in NEEDS_STOP


NEEDS_LIMIT = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.LIMIT_ON_CLOSE})
NEEDS_STOP = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
ON_CLOSE = frozenset({OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE})
TRAILING = frozenset({OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT})


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"  # the opening auction: a market or limit order filled at the session's open, or cancelled
    IOC = "ioc"  # immediate or cancel: what the current price fills at once, the rest cancelled
    GTD = "gtd"  # good till date: works until ``Order.good_till``, then expires


class OrderStatus(StrEnum):
    CREATED = "created"  # built by a strategy, not yet seen by a broker
    SUBMITTED = "submitted"  # accepted by the broker, working
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_done(self) -> bool:
        """True once the order can no longer fill."""
        return self in DONE

    @property
    def is_active(self) -> bool:
        return not self.is_done


DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})

_ALIASES = {
    "mkt": "market",
    "lmt": "limit",
    "stp": "stop",
    "stp_lmt": "stop_limit",
    "trail": "trailing_stop",
    "moc": "market_on_close",
    "loc": "limit_on_close",
    "trail_limit": "trailing_stop_limit",
    "b": "buy",
    "s": "sell",
}


def parse_enum(enum: type[_E], value: Any, what: str) -> _E:
    if isinstance(value, enum):
        return value
    members: dict[str, _E] = enum._value2member_map_  # type: ignore[assignment]
    member = members.get(value) if isinstance(value, str) else None
    if member is not None:  # the common case, e.g. 'market', 'buy': no normalising needed
        return member
    text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    text = _ALIASES.get(text, text)
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum)
        raise OrderValidationError(f"unknown {what} {value!r}; use one of {allowed}") from None


def shown(value: object) -> str:
    """``value`` as a message shows it: numbers as plain numbers (a numpy ``np.float64(4.81)`` is ``4.81``),
    anything else as its ``repr``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return repr(value)


def check_price(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise OrderValidationError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(price) or price <= 0:
        raise OrderValidationError(f"{what} must be a positive finite price, got {shown(value)}")
    return price
