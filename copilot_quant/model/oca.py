"""One-cancels-all (OCA) groups: the rule shared by the backtest's order book and the gateway's matching.

Orders that share a group name work together; an execution of one changes the others, as IB's
``ocaType`` says:

* ``1`` CANCEL_WITH_BLOCK: any execution of one member cancels every other working member.
* ``2`` REDUCE_WITH_BLOCK: the others are reduced by the quantity that executed.
* ``3`` REDUCE_NON_BLOCK: the same reduction, without overfill protection.

Whatever the type, a member that fills *completely* cancels the others.

**Decision: the reduction is by the filled quantity, not in proportion to the members' sizes.** The
evidence (December 2026):

* IB's TWS Users' Guide, One Cancels Other (ibkrguides.com/tws/usersguidebook/ordertypes/oco.htm), the
  only source that says what TWS does to the numbers: "If an order completely fills, other orders in the
  group are canceled. The On Fill: box instructs TWS what to do if an order in the group is partially
  filled": "Reduce other orders: Reduces the quantity of other orders in the group by the partially filled
  quantity of the order"; "Reduce other orders, overfill protection: Designed to reduce quantity of other
  orders in the group by the partially-filled quantity of the order, and specifies that only one order at
  a time will be submitted"; "Cancel other orders: All orders in the group will be canceled".
* The TWS API reference (``Order.ocaType``, and interactivebrokers.github.io/tws-api/oca.html) names the
  types "Remaining orders are proportionately reduced in size with block / with no block" and says
  "partial completion causes the group to re-balance", without saying proportionate to what. For members
  of one size both readings agree; read next to the Users' Guide, "proportionately" is the one-for-one
  reduction (a fill of 40 takes 40 off every other member), which is the rule here. (The rule before this
  one shrank each member by the group's done fraction of its own size; with unequal sizes it left a larger
  member more, or less, than TWS does.)

So: a member that executes ``q`` without completing takes ``q`` off each other working member's remaining
quantity (ocaType 2, 3; at zero the member is cancelled) or cancels them (ocaType 1); a member that
completes cancels them all. Quantities are the contracts' own units, as TWS counts them.

A member the client (the strategy) cancels takes the other working members with it, whatever the type:
IB's OCA description says "if, after transmission of the orders, any separate order within the OCA is
canceled by the user, the remaining working order(s) will automatically be sent cancellation requests",
and a live IB Gateway trace shows it (deepentropy/ibx#343). Expiry or a reduction to zero is not such a
cancel.

"Block" is IB's overfill protection: the group works one execution at a time. In a simulation the
difference is one of timing: with a block, a member that would execute at the same price update as the
one that just filled sees the cancellation or reduction first; without it, every member that executes at
that price update fills what it had, and the executions of the others apply to each afterwards (the group
may overfill). :class:`OcaExecutions` holds the executions not yet applied (one with a block, those of a
price update without).

A member's quantity follows the client: a modification (IB: placeOrder again with the same orderId) gives
it a new total, from which later reductions take; it changes nothing for the others, unless it lowers the
quantity to what already filled, which completes the member (:func:`completes`) and cancels them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from enum import IntEnum

from copilot_quant.errors import OrderValidationError

__all__ = [
    "OcaExecutions",
    "OcaType",
    "completes",
    "join_problem",
    "oca_remaining",
    "parse_oca_type",
]


class OcaType(IntEnum):
    """IB's ``ocaType`` values."""

    CANCEL_WITH_BLOCK = 1
    REDUCE_WITH_BLOCK = 2
    REDUCE_NON_BLOCK = 3

    @property
    def blocks(self) -> bool:
        """True when the group works one execution at a time (no overfill)."""
        return self is not OcaType.REDUCE_NON_BLOCK


def parse_oca_type(value: object) -> OcaType:
    """``value`` (1, 2, 3, an :class:`OcaType` or its name) as an :class:`OcaType`, or a named error."""
    if isinstance(value, OcaType):
        return value
    if isinstance(value, str) and value.strip().upper() in OcaType.__members__:
        return OcaType[value.strip().upper()]
    try:
        return OcaType(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        allowed = ", ".join(f"{t.value} ({t.name.lower()})" for t in OcaType)
        raise OrderValidationError(f"unknown oca_type {value!r}; use one of {allowed}") from None


def oca_remaining(oca_type: OcaType, remaining: float, executed: float, whole_shares: bool) -> float:
    """How much a member with ``remaining`` left may still fill after the *other* members of its group
    executed ``executed`` without completing (0 means: cancel it). Never more than ``remaining``."""
    if executed <= 0:
        return remaining
    if oca_type is OcaType.CANCEL_WITH_BLOCK:
        return 0.0
    left = remaining - executed
    if whole_shares:
        left = float(math.floor(left + 1e-9))
    return max(0.0, min(remaining, left))


def completes(filled: float, quantity: float) -> bool:
    """Whether a member that has ``filled`` of its ``quantity`` is complete (it then cancels the others)."""
    return filled > 0 and filled >= quantity - 1e-9


@dataclass(slots=True)
class OcaExecutions:
    """A group's executions not yet applied to its other members, by member (any hashable key)."""

    executed: dict[Hashable, float] = field(default_factory=dict)
    completed: set[Hashable] = field(default_factory=set)

    def add(self, member: Hashable, quantity: float, *, complete: bool) -> None:
        """Member ``member`` executed ``quantity``; ``complete`` when that filled its whole quantity."""
        self.executed[member] = self.executed.get(member, 0.0) + quantity
        if complete:
            self.completed.add(member)

    def __bool__(self) -> bool:
        return bool(self.executed or self.completed)

    def left_for(self, member: Hashable, oca_type: OcaType, remaining: float, whole_shares: bool) -> float:
        """What ``member``, with ``remaining`` left, may still fill once the *other* members' executions
        apply to it (0: cancel it; ``remaining``: untouched, as the member that executed is by its own)."""
        if any(other != member for other in self.completed):
            return 0.0
        others = sum(quantity for other, quantity in self.executed.items() if other != member)
        return oca_remaining(oca_type, remaining, others, whole_shares)


def join_problem(group: str, group_type: int | None, new_type: int, executed: bool) -> str | None:
    """Why an order of ``new_type`` cannot join ``group`` (of ``group_type``, None for a new group, which
    has ``executed`` already), or None. The backtest and the gateway refuse the same things."""
    if new_type not in tuple(OcaType):
        return (
            f"ocaType {new_type} is not supported with ocaGroup {group!r}; set ocaType to 1 (cancel the rest, "
            "with block), 2 (reduce the rest, with block) or 3 (reduce the rest, no block)"
        )
    if group_type is not None and group_type != new_type:
        return (
            f"OCA group {group!r} has ocaType {group_type}; every order of a group needs the same "
            f"ocaType (this one has {new_type})"
        )
    if executed:
        return f"OCA group {group!r} already has executions; a new order cannot join it: use a new ocaGroup"
    return None
