"""The broker adapter's cancels and order reads: cancel one order or every order IB may still hold (a kill
switch), list the open ones, wait for an order's fills.

Part of :class:`~copilot_quant.brokers.live_broker_adapter.LiveBrokerAdapter` (a mixin, so that the guide's
methods stay on the adapter). Placing and modifying are in :mod:`copilot_quant.brokers.order_placing`.
"""

from __future__ import annotations

import logging

from copilot_quant.backtest.orders import Order
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_order_events import IbOrderEvents
from copilot_quant.brokers.order_tracking import OrderTracker
from copilot_quant.errors import BrokerError

__all__ = ["OrderCancels"]

log = logging.getLogger(
    "copilot_quant.brokers.live_broker_adapter"
)  # the adapter's logger, as before the split


class OrderCancels:
    """Cancels and order reads, for the broker adapter (which sets the attributes below)."""

    _conn: IBConnection
    tracker: OrderTracker
    _events: IbOrderEvents

    def cancel_order(self, order: Order | str, *, reason: str = "") -> bool:
        """Ask IB to cancel a working order; ``True`` if the request was sent. The outcome arrives as status.

        ``reason`` becomes the order's ``reject_reason`` (and the journal's) once IB confirms the cancel.
        If IB executed the order before the request reached it, IB refuses the cancel (reported as an
        error, journaled) and the order ends ``FILLED`` as its executions say, not cancelled.
        """
        order_id = order if isinstance(order, str) else str(order.order_id)
        # ids can repeat (an adopted order, an explicit id): an Order object cancels that very order
        record = self.tracker.get(order_id) if isinstance(order, str) else self.tracker.record_for(order)
        if record is None or record.ib_order is None or record.lost:
            return False  # never sent, or lost: its old order id may now be another order's
        if record.is_done and not record.may_be_at_ib:
            return False  # finished, and IB said so itself
        if self.tracker.find(ib_order_id=record.ib_order_id) is not record:
            # IB gave this order id to another order (a gateway reset): cancelling would hit that one
            self._events.mark_lost(record, f"IB reuses its order id {record.ib_order_id} for another order")
            return False
        record.cancel_requested = True
        if reason:
            record.cancel_reason = reason
        try:
            self._conn.call(self._conn.ib.cancelOrder, record.ib_order)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.warning("cancel of %s failed: %s", order_id, exc)
            return False
        return True

    def get_open_orders(self) -> list[Order]:
        """Orders sent through this adapter that can still fill."""
        return [r.order for r in self.tracker.open_records()]

    def orders_ib_may_hold(self) -> list[Order]:
        """Every order IB may still hold: the open ones, and those made REJECTED/CANCELLED by an IB error
        code alone (IB did not report them finished itself; such an order can still fill)."""
        return [r.order for r in self.tracker.reachable_records()]

    def cancel_all_orders(self, reason: str = "") -> int:
        """Ask IB to cancel every order it may still hold (:meth:`orders_ib_may_hold`): what a kill switch
        must do. Returns how many cancel requests were sent."""
        sent = 0
        records = self.tracker.reachable_records()
        # A bracket goes whole: cancelling an entry that filled nothing cancels its exits at IB with it.
        unfilled_entries = {str(r.order.order_id) for r in records if r.order.filled_quantity <= 0}
        for record in records:
            if record.order.parent_id in unfilled_entries:
                record.cancel_requested = True
                record.cancel_reason = reason or record.cancel_reason
                continue
            if self.cancel_order(record.order, reason=reason):
                sent += 1
        return sent

    def wait_for_fills(self, order: Order, timeout: float) -> bool:
        """Block up to ``timeout`` s until ``order`` is done and all its fills are reported."""
        record = self.tracker.record_for(order)
        return record is not None and self.tracker.wait(record, timeout)
