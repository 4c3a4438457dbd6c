"""One-cancels-all (OCA) groups: the rule shared by the backtest's order book and the gateway's matching.

Orders that share a group name work together; an execution of one changes the others, as IB's
``ocaType`` says:

* ``1`` CANCEL_WITH_BLOCK: any execution of one member cancels every other working member.
* ``2`` REDUCE_WITH_BLOCK: the others are reduced in proportion to what executed.
* ``3`` REDUCE_NON_BLOCK: the same reduction, without overfill protection.

A member the client (the strategy) cancels takes the other working members with it, whatever the type:
IB's OCA description says "if, after transmission of the orders, any separate order within the OCA is
canceled by the user, the remaining working order(s) will automatically be sent cancellation requests",
and a live IB Gateway trace shows it (deepentropy/ibx#343). Expiry or a reduction to zero is not such a
cancel.

"Block" is IB's overfill protection: the group works one execution at a time. In a simulation the
difference is one of timing: with a block, a member that would execute at the same price update as the
one that just filled sees the cancellation or reduction first; without it, every member that executes at
that price update fills what it had, and the reduction applies afterwards (the group may overfill).

Proportional reduction: the group's *done fraction* is the sum over members of ``filled / size`` (each
member's size when it joined). A member may then have at most ``size × (1 − done fraction)`` left,
rounded down to whole shares for whole-share orders; at zero it is cancelled. Two members of 100 shares,
one fills 40: the other may fill at most 60 more.

A member's size follows the client: modifying its quantity (IB: placeOrder again with the same orderId)
gives it the size under which it may fill exactly the new quantity now (:func:`resized_member`), so the
next reduction counts it at what the client last asked for, not at what it was first placed with. A
modification that only resends the size a reduction left (ib_async resends the reduced totalQuantity with
a new price) changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import IntEnum

from copilot_quant.errors import OrderValidationError

__all__ = [
    "OcaType",
    "group_done_fraction",
    "join_problem",
    "oca_remaining",
    "parse_oca_type",
    "resized_member",
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


def group_done_fraction(members: Iterable[tuple[float, float]]) -> float:
    """The group's done fraction from its members' ``(filled, size)``."""
    return sum(filled / size for filled, size in members if size > 0)


def oca_remaining(
    oca_type: OcaType, size: float, done_fraction: float, remaining: float, whole_shares: bool
) -> float:
    """How much a member of ``size`` with ``remaining`` left may still fill after another member executed,
    when the group's done fraction is ``done_fraction`` (0 means: cancel it). Never more than ``remaining``."""
    if oca_type is OcaType.CANCEL_WITH_BLOCK:
        return 0.0
    left = size * max(0.0, 1.0 - done_fraction)
    if whole_shares:
        left = float(math.floor(left + 1e-9))
    return max(0.0, min(remaining, left))


def resized_member(size: float, filled: float, done_fraction: float, quantity: float) -> tuple[float, float]:
    """A member of ``size`` that has ``filled`` is modified to a total ``quantity`` while its group's done
    fraction is ``done_fraction``: its new size and the group's new done fraction.

    The new size lets the member fill exactly ``quantity`` in all with what the other members did so far
    (``size × (1 − their done fraction) = quantity``); its own fills then count against the new size.
    """
    own = filled / size if size > 0 else 0.0
    free = 1.0 - (done_fraction - own)
    if quantity <= 0 or free <= 1e-12:
        return size, done_fraction  # the others completed the group: nothing is left to resize
    new_size = quantity / free
    return new_size, done_fraction - own + filled / new_size


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
