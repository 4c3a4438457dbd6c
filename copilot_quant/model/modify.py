"""Modifying a working order: which terms may change, the checked new terms, and the named outcomes.

IB modifies an order when ``placeOrder`` is called again with the same ``orderId`` and changed fields; the
order keeps its id and IB acknowledges the change with ``openOrder``/``orderStatus`` for that id. IB's own
advice (https://interactivebrokers.github.io/tws-api/modifying_orders.html) is to change only the price,
the size and the time in force, and to cancel and place a new order for anything else; a change of side or
contract is error 105 ("Order being modified does not match original order"), a modification of a filled
order error 104 ("Can't modify a filled order"). This module is that rule, once, for the backtest, the
simulated gateway and live trading:

* :data:`MODIFIABLE` — what ``strategy.modify(order, ...)`` may change: ``quantity``, ``limit_price``,
  ``stop_price`` (IB's ``auxPrice``), ``time_in_force`` (between DAY, GTC and GTD) and ``good_till``.
  Anything else is refused with :class:`~copilot_quant.errors.OrderValidationError`, naming the field. A
  trailing stop's stop follows the price and is not set by hand; its trail is not modifiable here either.
* :func:`check_modification` — the new terms, validated as a new order's would be.
* :class:`ModifyOutcome` — what became of a modification: applied or sent, or why not (the order already
  filled, is no longer working, or the new quantity is below what already filled).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from copilot_quant.errors import OrderValidationError
from copilot_quant.model.orders import Order, OrderStatus, TimeInForce, shown

__all__ = ["MODIFIABLE", "Modification", "ModifyOutcome", "check_modification", "modify_refusal"]

#: The order fields a modification may change (IB: price, size, time in force).
MODIFIABLE = ("quantity", "limit_price", "stop_price", "time_in_force", "good_till")

#: Times in force an order may be modified to: resting ones (IOC and OPG act once, at placement).
_RESTING = (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD)

_EPS = 1e-9


class ModifyOutcome(StrEnum):
    """What ``strategy.modify(...)`` did."""

    #: In force now: in a backtest from the next bar on; live, an order held back (never sent) changed.
    APPLIED = "applied"
    #: Live: sent to IB with the order's own id; IB acknowledges it, or refuses it (logged, terms restored).
    SENT = "sent"
    #: The order had already filled (IB's error 104, "Can't modify a filled order"): nothing changed.
    ALREADY_FILLED = "already_filled"
    #: The order is cancelled, rejected or expired, or its cancel was requested: nothing changed.
    NOT_WORKING = "not_working"
    #: The new quantity is below the shares already filled: refused, nothing changed.
    BELOW_FILLED = "below_filled"
    #: Live: the modification could not be sent (no connection, trading halted, a risk limit): nothing changed.
    NOT_SENT = "not_sent"

    @property
    def ok(self) -> bool:
        """True when the modification was applied or sent."""
        return self in (ModifyOutcome.APPLIED, ModifyOutcome.SENT)


@dataclass(frozen=True, slots=True)
class Modification:
    """An order's new terms (all of them, the unchanged ones copied), checked as a new order's would be."""

    quantity: float
    limit_price: float | None
    stop_price: float | None
    time_in_force: TimeInForce
    good_till: datetime | None

    def apply_to(self, order: Order) -> None:
        """Give ``order`` these terms (its id, status and fills stay)."""
        order.quantity = self.quantity
        order.limit_price = self.limit_price
        order.stop_price = self.stop_price
        order.time_in_force = self.time_in_force
        order.good_till = self.good_till

    @classmethod
    def of(cls, order: Order) -> Modification:
        """``order``'s current terms (to restore them when a broker refuses a modification)."""
        return cls(
            order.quantity,
            order.limit_price,
            order.stop_price,
            TimeInForce(order.time_in_force),
            order.good_till,
        )

    def describe(self, before: Order) -> str:
        """What changes from ``before``'s terms, e.g. ``"limit_price 101 -> 100.5, quantity 10 -> 20"``."""
        parts = [
            f"{name} {_shown(getattr(before, name))} -> {_shown(getattr(self, name))}"
            for name in MODIFIABLE
            if getattr(before, name) != getattr(self, name)
        ]
        return ", ".join(parts) or "no change"


def _shown(value: object) -> str:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return "none" if value is None else shown(value)


def check_modification(order: Order, changes: Mapping[str, Any]) -> Modification:
    """The terms ``order`` would have after ``changes`` (field name -> new value), validated.

    Raises :class:`~copilot_quant.errors.OrderValidationError` for a field that cannot be modified, no
    change at all, or terms no new order could have (e.g. a limit order without a limit price).
    """
    if not changes:
        raise OrderValidationError(
            f"modify() of order {order.order_id} needs at least one change: {', '.join(MODIFIABLE)}"
        )
    fixed = sorted(set(changes) - set(MODIFIABLE))
    if fixed:
        raise OrderValidationError(
            f"{', '.join(fixed)} of order {order.order_id} cannot be modified (IB modifies only the price, "
            f"the size and the time in force: {', '.join(MODIFIABLE)}); cancel it and submit a new order"
        )
    if order.type_enum.is_trailing and "stop_price" in changes:
        raise OrderValidationError(
            f"order {order.order_id} is a trailing stop: its stop follows the price and is not set by hand; "
            "cancel it and submit a new trailing order to change its trail"
        )
    candidate = order.copy(order_id=order.order_id, **changes)  # a new order's checks, on the new terms
    tif = TimeInForce(candidate.time_in_force)
    if tif != order.time_in_force and tif not in _RESTING:
        raise OrderValidationError(
            f"order {order.order_id} can be modified to time_in_force 'day', 'gtc' or 'gtd', not "
            f"{tif.value!r} (IOC and OPG act once, when an order is placed)"
        )
    return Modification(
        candidate.quantity,
        candidate.limit_price,
        candidate.stop_price,
        tif,
        candidate.good_till,
    )


def modify_refusal(
    order: Order, modification: Modification, *, cancel_requested: bool = False
) -> ModifyOutcome | None:
    """Why ``order`` cannot take ``modification`` now (a named outcome), or None when it can.

    A new quantity equal to what already filled is allowed: it completes the order (as at IB).
    """
    if order.status is OrderStatus.FILLED:
        return ModifyOutcome.ALREADY_FILLED
    if order.status.is_done or cancel_requested:
        return ModifyOutcome.NOT_WORKING
    if modification.quantity < order.filled_quantity - _EPS:
        return ModifyOutcome.BELOW_FILLED
    return None
