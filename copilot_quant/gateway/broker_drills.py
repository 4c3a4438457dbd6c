"""The drill surface of :class:`~copilot_quant.gateway.broker.SimBroker`: what real IB sometimes does,
on demand (rejections, informational order messages, held-back or late reports, execution corrections,
orders lost in a gateway reset). The fault layer (:mod:`~copilot_quant.gateway.faults`) and the control
port call these; the broker's normal path only reads the queues they fill.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from eventkit import Event

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import Account
from copilot_quant.gateway.broker_events import (
    AccountChanged,
    BrokerEvent,
    CommissionReported,
    ExecutionReported,
)
from copilot_quant.gateway.fills import corrected_execution
from copilot_quant.gateway.matching import MatchingEngine
from copilot_quant.gateway.orders import ExecutionRecord, IdAllocator, SimOrder

__all__ = ["BrokerDrills"]

log = logging.getLogger(__name__)


class BrokerDrills:
    """Mixin of :class:`~copilot_quant.gateway.broker.SimBroker` (it owns the state declared here)."""

    events: Event
    _orders: dict[tuple[int, int], SimOrder]
    _executions: list[ExecutionRecord]
    _account: Account
    _engine: MatchingEngine
    _ids: IdAllocator
    _reject_queue: deque[str]
    _answer_queue: deque[tuple[int, str, bool]]
    _withholding: bool
    _held: list[BrokerEvent]
    _late_commissions: list[BrokerEvent]
    _emit: Callable[[BrokerEvent], None]
    _error: Callable[[int, int, int, str], None]
    _save: Callable[[], None]

    def reject_next(self, reason: str = "Simulated rejection") -> None:
        """Reject the next new order with error 201 and ``reason`` (queued: call twice for two orders)."""
        self._reject_queue.append(reason)

    def withhold_executions(self, withhold: bool = True) -> None:
        """Hold back execDetails/commissionReport events (True); False releases the held ones in order.

        Executions still happen and are returned by ``executions()`` (reqExecutions) meanwhile.
        """
        self._withholding = withhold
        if not withhold:
            held, self._held = self._held, []
            for event in held:
                self.events.emit(event)

    def answer_next_order(self, code: int, message: str, *, keeps_working: bool) -> None:
        """Answer the next new order with error ``code``: after accepting it (``keeps_working``, e.g. 10349
        "TIF was set to DAY") or instead of accepting it (321 read-only API, 110 price off the tick grid)."""
        self._answer_queue.append((int(code), message, keeps_working))

    def find_order(self, order_id: int, client_id: int | None = None) -> SimOrder | None:
        """The newest order with ``order_id`` (of ``client_id`` when given)."""
        found = [
            r for r in self._orders.values() if r.order_id == order_id and client_id in (None, r.client_id)
        ]
        return max(found, key=lambda r: r.perm_id) if found else None

    def order_message(self, order_id: int, code: int, message: str, client_id: int | None = None) -> None:
        """Send error ``code`` about a working order without changing its status (IB's informational
        order messages, e.g. 10349)."""
        record = self.find_order(order_id, client_id)
        if record is None:
            raise ConfigError(f"no order {order_id} at the gateway")
        self._error(record.client_id, order_id, int(code), message)

    def correct_execution(
        self, exec_id: str | None = None, *, shares: float | None = None, price: float | None = None
    ) -> ExecutionRecord:
        """Correct an execution (the last one by default), as IB does: a new execId that differs only after
        its last ``.`` (…01 → …02) replaces it. The account books the quantity difference at the new price."""
        if not self._executions:
            raise ConfigError("there is no execution to correct")
        index = len(self._executions) - 1
        if exec_id is not None:
            index = next((i for i, e in enumerate(self._executions) if e.exec_id == exec_id), -1)
            if index < 0:
                raise ConfigError(f"no execution {exec_id!r} at the gateway")
        old = self._executions[index]
        new = corrected_execution(old, shares, price)
        delta = new.shares - old.shares
        record = self._orders.get((old.client_id, old.order_id))
        self._executions[index] = new
        if delta:
            side = 1 if old.side == "BOT" else -1
            self._account.apply_fill(old.contract, side * delta, new.price, 0.0)
        if record is not None:
            record = replace(record, filled=max(0.0, record.filled + delta))
            self._orders[record.key] = record
            self._emit(ExecutionReported(old.client_id, record, new))
            self._emit(CommissionReported(old.client_id, new))
            if delta:
                item = self._account.portfolio_item(old.contract.symbol)
                self._emit(AccountChanged((item,) if item is not None else ()))
        log.warning(
            "drill: execution %s corrected by %s (%g @ %g)", old.exec_id, new.exec_id, new.shares, new.price
        )
        self._save()
        return new

    def lose_recent_orders(self, count: int, client_id: int | None = None) -> list[SimOrder]:
        """Forget the ``count`` newest orders (of ``client_id``, else of the client with the newest order)
        and roll that client's order ids back over them, as an IB Gateway reset can: orders written just
        before it never reached IB, and ``nextValidId`` reissues their ids."""
        if count < 1:
            raise ConfigError(f"lose_recent_orders needs a count >= 1, got {count}")
        if client_id is None:
            newest = max(self._orders.values(), key=lambda r: r.perm_id, default=None)
            if newest is None:
                return []
            client_id = newest.client_id
        mine = sorted(
            (r for r in self._orders.values() if r.client_id == client_id), key=lambda r: r.order_id
        )
        lost = mine[-count:]
        for record in lost:
            self._orders.pop(record.key, None)
            self._engine.remove(record.key)
        kept = [r.order_id for r in mine[: len(mine) - len(lost)]]
        self._ids.last_order_id[client_id] = max(kept, default=0)
        log.warning(
            "drill: forgot %d order(s) of client %d; next order id %d",
            len(lost),
            client_id,
            self._ids.next_order_id(client_id),
        )
        self._save()
        return lost

    def release_commissions(self) -> int:
        """Send the commission reports held back in ``commission_mode = "late"``; returns how many."""
        held, self._late_commissions = self._late_commissions, []
        for event in held:
            self.events.emit(event)
        return len(held)

    @property
    def withheld(self) -> int:
        """How many events are being held back."""
        return len(self._held)
