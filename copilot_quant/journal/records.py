"""Immutable rows read back from the journal, and the UTC time format they are stored in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from copilot_quant.errors import JournalError
from copilot_quant.journal.states import JournalOrderState
from copilot_quant.model.instruments import multiplier_of
from copilot_quant.model.orders import Order, OrderSide, OrderType, TimeInForce

__all__ = [
    "ErrorRecord",
    "EventKind",
    "EventRecord",
    "FillRecord",
    "JournalOrder",
    "StatusRecord",
    "from_db_time",
    "order_terms",
    "to_db_time",
]

# One fixed-width ISO-8601 layout so that stored times sort correctly as text.
_DB_TIME = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def to_db_time(value: datetime) -> str:
    """``value`` as the journal's UTC text; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(value, datetime):
        raise JournalError(f"expected a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise JournalError(
            f"naive datetime {value.isoformat()} given to the journal; pass a tz-aware time, "
            "e.g. datetime.now(UTC) or ts.replace(tzinfo=ZoneInfo('America/New_York'))"
        )
    return value.astimezone(UTC).strftime(_DB_TIME)


def from_db_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class EventKind(StrEnum):
    """Engine events worth keeping; ``record_event`` also accepts any other short string."""

    START = "start"
    STOP = "stop"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECT = "reconnect"
    RECONCILE = "reconcile"
    HALT = "halt"
    RESUME = "resume"
    KILL_SWITCH = "kill_switch"
    ALERT = "alert"


#: Order fields the journal keeps in ``orders.terms`` (only those that are set).
_TERMS = (
    "oca_group",
    "oca_type",
    "trail_amount",
    "trail_percent",
    "limit_offset",
    "good_till",
    "parent_id",
)


def order_terms(order: Order) -> str:
    """``order``'s terms beyond the journal's columns (its OCA group, its trail) as JSON, "" when none."""
    terms = {name: getattr(order, name) for name in _TERMS}
    kept = {k: (int(v) if k == "oca_type" else v) for k, v in terms.items() if v not in (None, "")}
    if order.good_till is not None:
        kept["good_till"] = order.good_till.isoformat()
    if not order.oca_group:
        kept.pop("oca_type", None)
    return json.dumps(kept, sort_keys=True) if kept else ""


def _terms_from(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        terms = json.loads(text)
    except ValueError:
        raise JournalError(f"journal order terms {text!r} are not JSON; the file is damaged") from None
    kept = {k: v for k, v in terms.items() if k in _TERMS}
    if "good_till" in kept:
        kept["good_till"] = datetime.fromisoformat(kept["good_till"])
    return kept


@dataclass(frozen=True, slots=True)
class JournalOrder:
    """An order as the journal knows it: what was intended, what the broker said, how much filled."""

    order_ref: str
    account: str
    strategy: str | None
    order_id: str | None
    symbol: str
    side: OrderSide
    quantity: float
    order_type: OrderType
    limit_price: float | None
    stop_price: float | None
    time_in_force: TimeInForce
    tag: str
    state: JournalOrderState
    broker_order_id: int | None
    perm_id: int | None
    filled: float
    remaining: float
    avg_price: float
    reason: str
    created_at: datetime
    submitted_at: datetime | None
    updated_at: datetime
    #: The order's terms beyond the common columns (:func:`order_terms`), JSON; "" for none.
    terms: str = ""

    @property
    def is_active(self) -> bool:
        return self.state.is_active

    @property
    def signed_quantity(self) -> float:
        return self.quantity * self.side.sign

    def to_order(self) -> Order:
        """Rebuild the domain :class:`Order` (with its journaled status and fills) after a restart."""
        order = Order(
            symbol=self.symbol,
            quantity=self.quantity,
            order_type=self.order_type,
            side=self.side,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force,
            order_id=self.order_id,
            tag=self.tag,
            allow_fractional=not float(self.quantity).is_integer(),
            **_terms_from(self.terms),
        )
        order.status = self.state.to_order_status()
        order.filled_quantity = self.filled
        order.avg_fill_price = self.avg_price
        order.reject_reason = self.reason if self.state is JournalOrderState.REJECTED else ""
        order.broker_order_id = self.broker_order_id
        return order


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """One entry of an order's history; every ``record_*`` that touched the order adds one.

    ``state`` is the state *reported* for status reports (so that late or odd reports stay visible) and
    the state *reached* for the intent, the submission and fills; the order row holds the current state.
    """

    order_ref: str
    time: datetime
    state: JournalOrderState
    filled: float
    remaining: float
    avg_price: float
    reason: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution. ``exec_id`` is the broker's execution id and is unique in the journal."""

    exec_id: str
    order_ref: str | None
    symbol: str
    side: OrderSide
    quantity: float
    price: float
    time: datetime
    commission: float | None
    realized_pnl: float | None
    recorded_at: datetime

    @property
    def signed_quantity(self) -> float:
        return self.quantity * self.side.sign

    @property
    def notional(self) -> float:
        """Gross value traded, ``quantity × price × multiplier``: a futures contract's multiplier comes
        from its symbol (the journal records the contract traded, ``MESZ6``), 1 for anything else."""
        return self.quantity * self.price * multiplier_of(self.symbol)


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    time: datetime
    order_ref: str | None
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    time: datetime
    kind: str
    detail: str
