"""Brackets in a backtest's order book: an entry and its exits, per :mod:`copilot_quant.model.bracket`.

The order book keeps each bracket's exits *held* (status ``SUBMITTED``, as IB shows them ``PreSubmitted``)
until the entry fills; the exits then join the working orders at the path point where the entry filled,
and are first offered that point's price as a gap (the no-look-ahead rule of ``model.bracket``). Each exit
fills at most the bracket's exposure; when the group is complete the exits still working are cancelled.
Cancelling one exit cancels the others (:meth:`Bracket.cancel_other_exits`; IB: the exits are one OCA group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from copilot_quant.backtest.working_order import finish_order
from copilot_quant.model.bracket import exit_allowance, group_complete
from copilot_quant.model.orders import OrderStatus

if TYPE_CHECKING:
    from copilot_quant.backtest.working_order import WorkingOrder

__all__ = ["Bracket", "exit_refusal"]


@dataclass(slots=True, eq=False)
class Bracket:
    """One bracket: its entry, its exits waiting for the entry to fill, and what the exits filled."""

    entry: WorkingOrder
    held: list[WorkingOrder] = field(default_factory=list)
    exits: list[WorkingOrder] = field(default_factory=list)
    exits_filled: float = 0.0

    def allowance(self, working: WorkingOrder) -> float:
        """How much exit ``working`` may fill now (the bracket's exposure, at most its remainder)."""
        order = working.order
        return exit_allowance(
            self.entry.order.filled_quantity, self.exits_filled, order.quantity - order.filled_quantity
        )

    @property
    def active(self) -> bool:
        """Whether the entry filled anything: exits then work (for the bracket's exposure)."""
        return self.entry.order.filled_quantity > 0

    @property
    def complete(self) -> bool:
        entry = self.entry.order
        return group_complete(entry.status.is_done, entry.filled_quantity, self.exits_filled)

    def release(self) -> list[WorkingOrder]:
        """The held exits, now working (the entry filled)."""
        released, self.held = self.held, []
        self.exits.extend(released)
        return released

    def cancel_other_exits(self, working: WorkingOrder) -> bool:
        """``working`` was cancelled: if it is one of the exits, the others that can still fill are cancelled
        too (model.bracket: IB's exits are one OCA group). True when one was."""
        if working is self.entry:
            return False
        others = [w.order for w in self.leftovers() if w is not working]
        why = (
            f"bracket exit {working.order.order_id} was cancelled: its other exits go with it (one OCA group)"
        )
        for order in others:
            finish_order(order, OrderStatus.CANCELLED, why)
        return bool(others)

    def leftovers(self) -> list[WorkingOrder]:
        """The exits that can still fill, held or working (to cancel once the group is complete)."""
        return [w for w in (*self.held, *self.exits) if w.order.status.is_active]


def exit_refusal(parent_id: str) -> str:
    """Why an exit naming ``parent_id`` cannot be admitted: its entry is not a working order of the book."""
    return (
        f"bracket exit for entry {parent_id!r}: that entry is not working (refused, or not returned before "
        "its exits in the same order list); return the entry and its exits together (Order.bracket builds them)"
    )
