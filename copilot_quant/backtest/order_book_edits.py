"""The order book's edits: a strategy's cancel and modify, finding a working order, cancelling them all.

Part of :class:`~copilot_quant.backtest.order_book.OrderBook` (a mixin: the book's matching is in
:mod:`~copilot_quant.backtest.order_book`, its edits here). A cancel is immediate — the order is
``CANCELLED`` at once and leaves the book — or, when it comes from ``on_fill`` while a bar is matched
(``matching``), the order is skipped for the rest of that bar and dropped when the bar is done. Cancelling
one member of a bracket's exits or of an OCA group cancels the others, as IB does; a modified OCA member
counts at its new size.
"""

from __future__ import annotations

import logging

from copilot_quant.backtest.brackets import Bracket
from copilot_quant.backtest.oca_groups import OcaGroups
from copilot_quant.backtest.working_order import WorkingOrder, finish_order
from copilot_quant.model.modify import Modification
from copilot_quant.model.orders import Order, OrderStatus, TimeInForce

__all__ = ["OrderBookEdits"]

log = logging.getLogger("copilot_quant.backtest.order_book")  # the book's logger, as before the split


class OrderBookEdits:
    """Cancels and modifications, for the order book (which sets the attributes below)."""

    # the state the edits share with the book's matching (set by OrderBook.__init__)
    __slots__ = ("_brackets", "_ends_session", "_oca", "_ordered", "_purge", "pending")

    pending: list[WorkingOrder]
    _purge: bool
    _oca: OcaGroups
    _brackets: dict[str, Bracket]
    _ordered: bool
    _ends_session: bool

    def _sweep_brackets(self) -> None:  # the book's: forget the brackets that are complete
        raise NotImplementedError

    def finish_immediate(self, order: Order) -> None:
        """An immediate-or-cancel order after its one chance: the rest is cancelled (it never works)."""
        if order.status is OrderStatus.CREATED:
            order.status = OrderStatus.SUBMITTED
        self._finish(order, OrderStatus.CANCELLED, "immediate or cancel: not filled at once")

    def working_orders(self, owner: int) -> list[Order]:
        """The orders of ``owner`` that can still fill (bracket exits held for their entry too)."""
        working = [w.order for w in self.pending if w.owner == owner and w.order.status.is_active]
        return working + [w.order for w in self._held() if w.owner == owner]

    def _held(self) -> list[WorkingOrder]:
        """Bracket exits waiting for their entry to fill (not in :attr:`pending` yet)."""
        return [w for b in self._brackets.values() for w in b.held if w.order.status.is_active]

    def cancel(self, order_id: str | None, reason: str, *, matching: bool = False) -> Order | None:
        """Cancel the working order ``order_id`` now (status ``CANCELLED`` with ``reason``) and return it;
        ``None`` if no such order can still fill. ``matching``: a bar is being matched (the call comes
        from ``on_fill``), so the order stays in the list, skipped, until :meth:`execute_bar` ends."""
        pending = self.pending
        for i, working in enumerate(pending):
            order = working.order
            if order.order_id == order_id and order.status.is_active:
                self._finish(order, OrderStatus.CANCELLED, reason)
                if matching:
                    self._purge = True
                else:
                    del pending[i]
                if working.bracket is not None:
                    if working.bracket.cancel_other_exits(working):
                        self._drop_cancelled(matching)
                    self._sweep_brackets()
                if order.oca_group and self._oca.cancelled(working):
                    self._drop_cancelled(matching)
                return order
        for working in self._held():
            if working.order.order_id == order_id:
                self._finish(working.order, OrderStatus.CANCELLED, reason)
                if working.bracket is not None and working.bracket.cancel_other_exits(working):
                    self._drop_cancelled(matching)
                return working.order
        return None

    def _drop_cancelled(self, matching: bool) -> None:
        """Orders were cancelled besides the one asked for: out of the working list now, or once the bar
        being matched is done."""
        if matching:
            self._purge = True
        else:
            self.pending[:] = [w for w in self.pending if w.order.status.is_active]

    def find(self, order_id: str | None) -> WorkingOrder | None:
        """The working order ``order_id`` that can still fill (the latest with that id), or None; a bracket's
        exit held until its entry fills counts (IB holds it PreSubmitted, and it can be modified)."""
        found = next(
            (w for w in reversed(self.pending) if w.order.order_id == order_id and w.order.status.is_active),
            None,
        )
        if found is None and self._brackets:
            held = (w for b in self._brackets.values() for w in b.held)
            found = next((w for w in held if w.order.order_id == order_id and w.order.status.is_active), None)
        return found

    def modify(
        self, working: WorkingOrder, modification: Modification, next_bar: int, *, matching: bool = False
    ) -> None:
        """Give ``working`` its new terms, in force from bar ``next_bar`` on (see :meth:`Strategy.modify`).

        The order keeps its place (submission order), its fills and, for a stop that has triggered, its
        trigger. Until ``next_bar`` it executes nowhere: a modification from ``on_fill`` while a bar is
        matched takes the order out of the rest of that bar (``matching``), since the new terms were decided
        after a point of the bar's path whose later prices the strategy has not seen (a DAY order whose
        session ends with that bar then expires with it). A quantity lowered to what already filled
        completes the order.
        """
        order = working.order
        before = order.quantity
        modification.apply_to(order)
        if order.oca_group and self._oca.resized(working, before):  # its group counts the new size
            self._drop_cancelled(matching)
        bracket = working.bracket
        if bracket is not None and any(w is working for w in bracket.held):
            return  # a held bracket exit: it starts working, with these terms, when its entry fills
        working.first_bar = max(working.first_bar, next_bar)
        done = order.filled_quantity >= order.quantity - 1e-9
        if done:
            order.status = OrderStatus.FILLED
            log.debug("order %s complete: its quantity was lowered to what filled", order.order_id)
        elif matching and self._ends_session and order.time_in_force == TimeInForce.DAY:
            # it sits out the rest of a bar that ends its session: a DAY order expires with it
            self._finish(order, OrderStatus.EXPIRED, "day order unfilled at the end of its session")
            done = True
        if done:
            if matching:
                self._purge = True
            else:
                self.pending.remove(working)
            return
        if order.auction or working.expires_bar is not None:
            self._ordered = True

    def cancel_all(self, reason: str) -> list[Order]:
        """Cancel every working order (e.g. at the end of a backtest); returns them."""
        cancelled = [w.order for w in [*self.pending, *self._held()]]
        for order in cancelled:
            self._finish(order, OrderStatus.CANCELLED, reason)
        self.pending.clear()
        self._brackets.clear()
        return cancelled

    _finish = staticmethod(finish_order)
