"""Tracking of orders sent to IB: status, real executions, commissions, deduplicated by ``execId``.

One :class:`OrderRecord` per submitted :class:`~copilot_quant.backtest.orders.Order`. Executions reported
by IB become :class:`~copilot_quant.backtest.orders.Fill`\\ s once IB's commission report for them arrives
(or, if it never does, after a grace period with an estimated commission, logged). Every ``execId`` is
turned into a fill exactly once per order, whether it arrives live, again after a reconnect, or through
``reqExecutions`` — so nothing is double counted.

Deduplication never fails open: an ``execId`` already seen for a *different* order is not a duplicate.
IB's ids never repeat, so that means the broker reused one (a simulated gateway restarted without its
state did): the execution is kept and becomes a fill of its own order, and the tracker logs an error
(:meth:`OrderTracker.other_orders` names the orders it collided with). Dropping it would hide a real
position from the strategy.

The tracker is keyed by IB order id (unique per client id, stable across reconnects) and by ``permId``;
it never holds on to ib_async objects beyond the ib_async ``Order`` needed to cancel.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from copilot_quant.backtest.orders import Fill, Order, OrderStatus

__all__ = ["OrderRecord", "OrderTracker", "PendingExecution"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PendingExecution:
    """An execution IB reported whose commission report has not arrived yet."""

    exec_id: str
    shares: float
    price: float
    time: datetime


@dataclass(slots=True, eq=False)
class OrderRecord:
    """What the broker adapter knows about one order. Read-only for users (passed to error callbacks)."""

    order: Order
    ib_order_id: int = 0
    perm_id: int = 0
    ib_order: Any = field(default=None, repr=False)
    fills: list[Fill] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exec_ids: set[str] = field(default_factory=set)
    pending: dict[str, PendingExecution] = field(default_factory=dict)
    cancel_requested: bool = False
    #: Why the cancel was requested; becomes the order's ``reject_reason`` once IB confirms it.
    cancel_reason: str = ""
    ib_status: str = ""
    #: The journal's ref for this order (IB ``orderRef``); empty when no journal is attached.
    order_ref: str = ""

    @property
    def status(self) -> OrderStatus:
        return OrderStatus(self.order.status)

    @property
    def filled_quantity(self) -> float:
        return sum(f.fill_quantity for f in self.fills)

    @property
    def is_done(self) -> bool:
        return self.status.is_done

    @property
    def settled(self) -> bool:
        """Done, and every execution has become a fill (no commission report outstanding)."""
        return self.is_done and not self.pending

    def aggregate_fill(self) -> Fill | None:
        """All fills so far as one: total quantity, volume-weighted price, summed commission."""
        if not self.fills:
            return None
        qty = sum(f.fill_quantity for f in self.fills)
        price = sum(f.fill_price * f.fill_quantity for f in self.fills) / qty
        if len(self.fills) == 1:
            return self.fills[0]
        return Fill(
            order=self.order,
            fill_price=price,
            fill_quantity=qty,
            commission=sum(f.commission for f in self.fills),
            timestamp=self.fills[-1].timestamp,
            fill_id="+".join(f.fill_id or "" for f in self.fills),
        )


class OrderTracker:
    """Thread-safe registry of :class:`OrderRecord`; callers wait on it with :meth:`wait`."""

    __slots__ = ("_all", "_by_ib_id", "_by_perm", "_by_ref", "_cond", "_records", "_seen_exec_ids")

    def __init__(self) -> None:
        self._records: dict[str, OrderRecord] = {}
        # Every record in the order added. ``_records`` maps an order_id to its newest record only: an order
        # adopted after a restart and one sent by this process can share an id (both count from O1).
        self._all: list[OrderRecord] = []
        self._by_ib_id: dict[int, OrderRecord] = {}
        self._by_perm: dict[int, OrderRecord] = {}
        self._by_ref: dict[str, OrderRecord] = {}
        # execId -> the records it was reported for (one, unless the broker reused the id)
        self._seen_exec_ids: dict[str, list[OrderRecord]] = {}
        self._cond = threading.Condition()

    # ----------------------------------------------------------------- registry
    def add(self, order: Order, order_ref: str = "") -> OrderRecord:
        record = OrderRecord(order=order, order_ref=order_ref)
        with self._cond:
            key = str(order.order_id)
            previous = self._records.get(key)
            if previous is not None and previous.order is order:
                self._all[self._all.index(previous)] = record  # the same order again: replace its record
            else:
                self._all.append(record)
            self._records[key] = record
            if order_ref:
                self._by_ref[order_ref] = record
        return record

    def bind(self, record: OrderRecord, ib_order_id: int, ib_order: Any) -> None:
        with self._cond:
            record.ib_order_id = ib_order_id
            record.ib_order = ib_order
            record.order.broker_order_id = ib_order_id
            self._by_ib_id[ib_order_id] = record

    def find(self, ib_order_id: int = 0, perm_id: int = 0, order_ref: str = "") -> OrderRecord | None:
        with self._cond:
            record = self._by_ib_id.get(ib_order_id) if ib_order_id else None
            if record is None and perm_id:
                record = self._by_perm.get(perm_id)
            if record is None and order_ref:
                record = self._by_ref.get(order_ref) or self._records.get(order_ref)
            if record is not None and perm_id and not record.perm_id:
                record.perm_id = perm_id
                self._by_perm[perm_id] = record
            return record

    def get(self, order_id: str) -> OrderRecord | None:
        with self._cond:
            return self._records.get(order_id)

    def record_for(self, order: Order) -> OrderRecord | None:
        """The record of this very ``order`` object (ids can repeat: an adopted order, an explicit id)."""
        with self._cond:
            record = self._records.get(str(order.order_id))
            if record is not None and record.order is order:
                return record
            return next((r for r in reversed(self._all) if r.order is order), None)

    def records(self) -> list[OrderRecord]:
        with self._cond:
            return list(self._all)

    def open_records(self) -> list[OrderRecord]:
        with self._cond:
            return [r for r in self._all if not r.is_done]

    # ----------------------------------------------------------------- updates
    def set_status(
        self, record: OrderRecord, status: OrderStatus, ib_status: str = "", reason: str = ""
    ) -> bool:
        """Move the order to ``status`` unless it is already done; returns whether it changed."""
        with self._cond:
            current = record.status
            if current.is_done and status is not current:
                return False
            if status is current and not reason:
                return False
            record.order.status = status
            if ib_status:
                record.ib_status = ib_status
            if reason and not record.order.reject_reason:
                record.order.reject_reason = reason
            self._cond.notify_all()
            return True

    def add_execution(self, record: OrderRecord, execution: PendingExecution) -> bool:
        """Note an execution; ``False`` if this ``execId`` was seen before for this order (a duplicate report).

        An ``execId`` seen only for other orders is noted (``True``) and logged as an error: see the module
        docstring.
        """
        with self._cond:
            owners = self._seen_exec_ids.setdefault(execution.exec_id, [])
            if any(_same_order(record, owner) for owner in owners):
                return False
            if owners:
                log.error(
                    "execution id %s reported for order %s was already reported for order(s) %s; IB never "
                    "reuses execution ids: kept as a fill of its own order, not dropped as a duplicate",
                    execution.exec_id,
                    _describe(record),
                    ", ".join(_describe(o) for o in owners),
                )
            owners.append(record)
            record.pending[execution.exec_id] = execution
            self._cond.notify_all()
            return True

    def settle(self, record: OrderRecord, exec_id: str, commission: float) -> Fill | None:
        """Turn a pending execution into a :class:`Fill` with ``commission``; ``None`` if not pending."""
        with self._cond:
            pending = record.pending.pop(exec_id, None)
            if pending is None:
                return None
            fill = Fill(
                order=record.order,
                fill_price=pending.price,
                fill_quantity=pending.shares,
                commission=max(0.0, float(commission)),
                timestamp=pending.time,
                fill_id=exec_id,
            )
            record.fills.append(fill)
            record.exec_ids.add(exec_id)
            qty = record.filled_quantity
            record.order.filled_quantity = qty
            record.order.avg_fill_price = sum(f.fill_price * f.fill_quantity for f in record.fills) / qty
            if not record.status.is_done:
                record.order.status = (
                    OrderStatus.FILLED
                    if qty >= record.order.quantity - 1e-9
                    else OrderStatus.PARTIALLY_FILLED
                )
            self._cond.notify_all()
            return fill

    def record_for_exec(self, exec_id: str) -> OrderRecord | None:
        with self._cond:
            for record in self._all:
                if exec_id in record.pending:
                    return record
            return None

    def seen(self, exec_id: str, record: OrderRecord | None = None) -> bool:
        """Whether ``exec_id`` was reported for ``record``'s order (default: for any order)."""
        with self._cond:
            owners = self._seen_exec_ids.get(exec_id, [])
            if record is None:
                return bool(owners)
            return any(_same_order(record, owner) for owner in owners)

    def other_orders(self, exec_id: str, record: OrderRecord) -> list[OrderRecord]:
        """The records of orders other than ``record``'s that ``exec_id`` was also reported for (normally
        none: a non-empty list means the broker reused an execution id)."""
        with self._cond:
            return [o for o in self._seen_exec_ids.get(exec_id, []) if not _same_order(record, o)]

    def wait(self, record: OrderRecord, timeout: float, *, until_settled: bool = True) -> bool:
        """Block until ``record`` is settled (or merely done); returns whether that happened in time."""
        with self._cond:
            if until_settled:
                return self._cond.wait_for(lambda: record.settled, timeout)
            return self._cond.wait_for(lambda: record.is_done, timeout)


def _same_order(a: OrderRecord, b: OrderRecord) -> bool:
    """Whether two records track the same order: the same journal ref (an adopted order has a new record
    with its old ref), else, without refs, the same record or ``Order`` object."""
    if a is b:
        return True
    if a.order_ref and b.order_ref:
        return a.order_ref == b.order_ref
    return a.order is b.order


def _describe(record: OrderRecord) -> str:
    return f"{record.order.order_id} ({record.order_ref})" if record.order_ref else str(record.order.order_id)
