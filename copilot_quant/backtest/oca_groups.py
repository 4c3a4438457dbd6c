"""One-cancels-all groups in a backtest's order book (``Order.oca_group``, :mod:`copilot_quant.model.oca`,
as at the gateway): who is in which group, and what a member's fill does to the others.

The order book (:mod:`copilot_quant.backtest.order_book`) enters each new order naming a group
(:meth:`OcaGroups.join`) and reports each member's execution (:meth:`OcaGroups.filled`); the other
members are then cancelled or reduced — at once with a block (ocaType 1, 2), after every execution at
the same path point without (ocaType 3: the book calls :meth:`OcaGroups.reduce` once that point is
booked). Both return whether a member was cancelled, so the book drops it once the bar is done. A member
whose quantity the strategy modifies is reduced from its new quantity later on, and one lowered to what
already filled completes, cancelling the others (:meth:`OcaGroups.resized`); a member the strategy
cancels takes the rest of its group with it (:meth:`OcaGroups.cancelled`, as at IB).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from copilot_quant.backtest.working_order import WorkingOrder, finish_order
from copilot_quant.model.oca import OcaExecutions, OcaType, completes, join_problem
from copilot_quant.model.orders import OrderStatus
from copilot_quant.model.participation import is_whole

__all__ = ["OcaGroup", "OcaGroups"]

# The order book's logger: these lines were the book's before they moved here, and users filter on its name.
log = logging.getLogger("copilot_quant.backtest.order_book")


@dataclass(slots=True)
class OcaGroup:
    """One OCA group: its type, its members, whether any executed, and the executions of a group without a
    block waiting for the end of their path point."""

    oca_type: OcaType
    members: list[WorkingOrder]
    executed: bool = False
    pending: OcaExecutions = field(default_factory=OcaExecutions)


class OcaGroups:
    """The run's OCA groups by name."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: dict[str, OcaGroup] = {}

    def join(self, working: WorkingOrder) -> str | None:
        """Enter a new order naming an OCA group into it; why it cannot join, or None."""
        order = working.order
        name = order.oca_group
        kind = OcaType(order.oca_type)
        group = self._groups.get(name)
        problem = join_problem(
            name,
            None if group is None else int(group.oca_type),
            int(kind),
            group is not None and group.executed,
        )
        if problem is not None:
            return problem
        if group is None:
            group = self._groups[name] = OcaGroup(kind, [])
        group.members.append(working)
        return None

    def filled(self, working: WorkingOrder, quantity: float, unblocked: dict[str, None]) -> bool:
        """``quantity`` of group member ``working`` just filled: cancel or reduce the other members now
        (with a block) or once the executions at this point are booked (``unblocked``). True when a
        member was cancelled."""
        group = self._groups.get(working.order.oca_group)
        if group is None:
            return False
        group.executed = True
        order = working.order
        complete = completes(order.filled_quantity, order.quantity)
        if group.oca_type.blocks:
            executions = OcaExecutions()
            executions.add(id(working), quantity, complete=complete)
            return self._apply(group, executions)
        group.pending.add(id(working), quantity, complete=complete)
        unblocked[order.oca_group] = None
        return False

    def resized(self, working: WorkingOrder, quantity_before: float) -> bool:
        """Group member ``working`` was modified from ``quantity_before`` to its quantity now: later
        reductions take from the new quantity; one lowered to what already filled completes the member,
        which cancels the others (:func:`~copilot_quant.model.oca.completes`). True when one was."""
        group = self._groups.get(working.order.oca_group)
        order = working.order
        if group is None or abs(order.quantity - quantity_before) <= 1e-9:
            return False
        if not completes(order.filled_quantity, order.quantity):
            return False
        executions = OcaExecutions()
        executions.add(id(working), 0.0, complete=True)
        return self._apply(group, executions)

    def cancelled(self, working: WorkingOrder) -> bool:
        """Group member ``working`` was cancelled by its strategy: the other members still working are
        cancelled too (model.oca: IB's rule for a member the user cancels). True when one was."""
        group = self._groups.get(working.order.oca_group)
        if group is None:
            return False
        name, order_id = working.order.oca_group, working.order.order_id
        others = [m.order for m in group.members if m is not working and not m.order.status.is_done]
        for order in others:
            finish_order(
                order, OrderStatus.CANCELLED, f"order {order_id} of OCA group {name!r} was cancelled"
            )
        return bool(others)

    def reduce(self, unblocked: dict[str, None]) -> bool:
        """Apply the executions of the groups without a block (``unblocked``, then cleared); True when a
        member was cancelled."""
        cancelled = False
        for name in unblocked:
            group = self._groups[name]
            executions, group.pending = group.pending, OcaExecutions()
            cancelled = self._apply(group, executions) or cancelled
        unblocked.clear()
        return cancelled

    @staticmethod
    def _apply(group: OcaGroup, executions: OcaExecutions) -> bool:
        """Cancel or reduce every working member by the other members' ``executions``."""
        cancelled = False
        for member in group.members:
            order = member.order
            if order.status.is_done:
                continue
            remaining = order.quantity - order.filled_quantity
            left = executions.left_for(id(member), group.oca_type, remaining, is_whole(order.quantity))
            if left >= remaining - 1e-9:
                continue
            if left <= 1e-9:
                finish_order(
                    order, OrderStatus.CANCELLED, f"another order of OCA group {order.oca_group!r} filled"
                )
                cancelled = True
            else:
                order.quantity = order.filled_quantity + left
                log.debug("order %s reduced to %g by its OCA group", order.order_id, order.quantity)
        return cancelled
