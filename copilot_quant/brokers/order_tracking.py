"""Tracking of orders sent to IB: status, real executions, commissions, deduplicated by ``execId``.

One :class:`TrackedOrder` per submitted :class:`~copilot_quant.backtest.orders.Order`. Executions reported
by IB become :class:`~copilot_quant.backtest.orders.Fill`\\ s once IB's commission report for them arrives
(or, if it never does, after a grace period with an estimated commission, logged). Every ``execId`` is
turned into a fill exactly once per order, whether it arrives live, again after a reconnect, or through
``reqExecutions`` — so nothing is double counted.

Deduplication never fails open: an ``execId`` already seen for a *different* order is not a duplicate.
IB's ids never repeat, so that means the broker reused one (a simulated gateway restarted without its
state did): the execution is kept and becomes a fill of its own order, and the tracker logs an error
(:meth:`OrderTracker.other_orders` names the orders it collided with). Dropping it would hide a real
position from the strategy.

Keys: IB's ``permId`` once IB assigned it (unique for the account and stable), else the IB order id, which
is unique only within one gateway session: after an IB Gateway reset ``nextValidId`` can roll back and a new
order reuses the id of one IB lost. So a report whose ``permId`` differs from the record bound to its order
id is *not* that record's, and :meth:`OrderTracker.bind` hands back the record an id was taken from, to be
marked lost (:meth:`OrderTracker.mark_lost`): a lost order is never cancelled through its old id.

Order truth comes from IB's own terminal reports: :attr:`TrackedOrder.ib_final` is set only when IB's
orderStatus said Filled/Cancelled. An order made REJECTED by an error code alone may still be held by IB:
:meth:`OrderTracker.reachable_records` lists it for cancels and the kill switch, and an execution for it
reopens it (:meth:`OrderTracker.reopen`).

Execution corrections (an ``execId`` differing only after its last ``.``) replace the earlier execution
(:meth:`OrderTracker.correct`); see :mod:`copilot_quant.brokers.exec_corrections`.

The tracker never holds on to ib_async objects beyond the ib_async ``Order`` needed to cancel.

Memory stays bounded over a long session: the tracker keeps the last :attr:`OrderTracker.keep_recent` orders
(:data:`RECENT_KEPT`, as the engine keeps its last fills) whatever their state, and an older one only while it
may still change — open, possibly at IB, lost (an execution may reopen it), awaiting a commission, or with a
modification in flight. An older order *finished for good* (IB itself reported it finished, or it was refused
before it was sent; every execution settled into a fill, handed to the journal; no modification in flight)
is forgotten from every index, at O(1) per order added. A forgotten order is what a long-finished one already
was to every lookup: not working, not cancellable, not at IB; an IB report still naming it (a replay after a
reconnect) finds no record and is ignored — its fills are in the journal, and reconciliation compares the
journal with IB.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from datetime import datetime
from itertools import chain
from typing import Any

from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.brokers.exec_corrections import ExecutionCorrection, exec_id_base, supersedes
from copilot_quant.errors import ConfigError

__all__ = ["RECENT_KEPT", "OrderRecord", "OrderTracker", "PendingExecution", "TrackedOrder"]

log = logging.getLogger(__name__)

#: How many of the latest orders :class:`OrderTracker` keeps by default whatever their state (see the module
#: docstring). A parity run, which compares every order of its (bounded) replay, keeps them all (``None``).
RECENT_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class PendingExecution:
    """An execution IB reported whose commission report has not arrived yet."""

    exec_id: str
    shares: float
    price: float
    time: datetime


@dataclass(slots=True, eq=False)
class TrackedOrder:
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
    #: IB itself reported the order finished (its own Filled/Cancelled status, not one ib_async derived
    #: from an error code): only then is it certain IB no longer holds it.
    ib_final: bool = False
    #: IB no longer knows the order (lost in a gateway reset): it is CANCELLED here and never cancelled
    #: through its old order id, which IB may have given to another order.
    lost: bool = False
    #: IB's ``whyHeld`` while the order is held (e.g. ``locate`` for a short sale waiting for shares).
    why_held: str = ""
    #: Informational IB messages about the order (e.g. 10349): they never change its status.
    notes: list[str] = field(default_factory=list)
    #: execId base (before the last ".") -> the execId in effect (a correction replaces the earlier one).
    exec_by_base: dict[str, str] = field(default_factory=dict)
    #: While a modification is sent and not yet acknowledged: the order's terms before it (a
    #: :class:`~copilot_quant.model.modify.Modification`), restored if IB refuses it.
    modifying: Any = field(default=None, repr=False)
    #: The ib_async order's fields before that modification (restored with the terms).
    modifying_ib: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The price and size fields that modification sent (IB's openOrder echoes them when it accepts it).
    modifying_sent: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The traded contract's multiplier (IB's, once the contract is qualified): every fill carries it.
    multiplier: float = 1.0
    #: The IB code that refused the last modification, until its errorEvent (after the status event) is seen.
    modify_refused_code: int = 0

    @property
    def status(self) -> OrderStatus:
        status = self.order.status
        return status if status.__class__ is OrderStatus else OrderStatus(status)  # asked on every event

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
            multiplier=self.multiplier,
        )

    @property
    def may_be_at_ib(self) -> bool:
        """Whether IB may still hold this order: sent, not lost, and not reported finished by IB itself
        (an order made REJECTED/CANCELLED by an error code alone counts; a filled one does not)."""
        if self.ib_order is None or self.lost or self.ib_final:
            return False
        return self.status is not OrderStatus.FILLED


#: The earlier name of :class:`TrackedOrder` (kept for imports written against it).
OrderRecord = TrackedOrder


class OrderTracker:
    """Thread-safe registry of :class:`TrackedOrder`; callers wait on it with :meth:`wait`."""

    __slots__ = (
        "_added",
        "_by_ib_id",
        "_by_perm",
        "_by_ref",
        "_cond",
        "_keep",
        "_maybe_at_ib",
        "_older",
        "_recent",
        "_records",
        "_seen_exec_ids",
    )

    def __init__(self, keep_recent: int | None = RECENT_KEPT) -> None:
        self._keep = _checked_keep(keep_recent)
        self._added = 0  # records added since the older ones were last looked at
        self._records: dict[str, TrackedOrder] = {}
        # The records kept, in the order added: the last ``keep_recent`` in ``_recent``, older ones that may
        # still change in ``_older`` (each added before every record of ``_recent``; see the module docstring).
        # ``_records`` maps an order_id to its newest record only: an order adopted after a restart and one
        # sent by this process can share an id (both count from O1).
        self._recent: deque[TrackedOrder] = deque()
        self._older: list[TrackedOrder] = []
        # The records kept that IB may hold now or later (not :func:`_never_at_ib_again`): those that
        # :meth:`reachable_records` looks at — the risk check asks on every order, the session's orders grow.
        self._maybe_at_ib: list[TrackedOrder] = []
        self._by_ib_id: dict[int, TrackedOrder] = {}
        self._by_perm: dict[int, TrackedOrder] = {}
        self._by_ref: dict[str, TrackedOrder] = {}
        # execId -> the records it was reported for (one, unless the broker reused the id)
        self._seen_exec_ids: dict[str, list[TrackedOrder]] = {}
        self._cond = threading.Condition()

    # ----------------------------------------------------------------- registry
    def add(self, order: Order, order_ref: str = "") -> TrackedOrder:
        record = TrackedOrder(order=order, order_ref=order_ref)
        with self._cond:
            key = str(order.order_id)
            previous = self._records.get(key)
            if previous is not None and previous.order is order:
                self._replace(previous, record)  # the same order again: replace its record
                self._maybe_at_ib = [r for r in self._kept() if not _never_at_ib_again(r)]
            else:
                self._recent.append(record)
                self._maybe_at_ib.append(record)
            self._records[key] = record
            if order_ref:
                self._by_ref[order_ref] = record
            if self._keep is not None:
                self._age(self._keep)
        return record

    @property
    def keep_recent(self) -> int | None:
        """How many of the latest orders are kept whatever their state; ``None`` keeps every order."""
        return self._keep

    @keep_recent.setter
    def keep_recent(self, keep: int | None) -> None:
        with self._cond:
            self._keep = _checked_keep(keep)

    def _kept(self) -> Iterator[TrackedOrder]:  # under _cond
        return chain(self._older, self._recent)

    def _replace(self, previous: TrackedOrder, record: TrackedOrder) -> None:  # under _cond
        for kept in (self._recent, self._older):
            if previous in kept:
                kept[kept.index(previous)] = record
                return
        self._recent.append(record)

    def _age(self, keep: int) -> None:  # under _cond; O(1) per order added, amortized
        """Move the records beyond the last ``keep`` out of ``_recent``: forgotten if finished for good, else
        kept in ``_older``; once per ``keep`` orders, forget the older ones finished for good since."""
        while len(self._recent) > keep:
            record = self._recent.popleft()
            if _finished_for_good(record):
                self._unindex(record)
            else:
                self._older.append(record)
        self._added += 1
        if self._added < keep:
            return
        self._added = 0
        still: list[TrackedOrder] = []
        for record in self._older:
            if _finished_for_good(record):
                self._unindex(record)
            else:
                still.append(record)
        self._older = still
        self._maybe_at_ib = [r for r in self._maybe_at_ib if not _never_at_ib_again(r)]

    def _unindex(self, record: TrackedOrder) -> None:  # under _cond
        key = str(record.order.order_id)
        if self._records.get(key) is record:
            del self._records[key]
        if self._by_ref.get(record.order_ref) is record:
            del self._by_ref[record.order_ref]
        if self._by_ib_id.get(record.ib_order_id) is record:
            del self._by_ib_id[record.ib_order_id]
        if self._by_perm.get(record.perm_id) is record:
            del self._by_perm[record.perm_id]
        for exec_id in record.exec_ids | set(record.exec_by_base.values()):
            owners = self._seen_exec_ids.get(exec_id)
            if owners is None:
                continue
            owners[:] = [o for o in owners if o is not record]
            if not owners:
                del self._seen_exec_ids[exec_id]

    def bind(self, record: TrackedOrder, ib_order_id: int, ib_order: Any) -> TrackedOrder | None:
        """Bind ``record`` to IB's order id; returns the record that held the id before, if it may still
        be at IB (IB reused the id of an order it lost: the caller marks that one lost)."""
        with self._cond:
            record.ib_order_id = ib_order_id
            record.ib_order = ib_order
            record.order.broker_order_id = ib_order_id
            previous = self._by_ib_id.get(ib_order_id)
            self._by_ib_id[ib_order_id] = record
            if previous is None or previous is record or _same_order(previous, record):
                return None
            return previous if previous.may_be_at_ib else None

    def find(self, ib_order_id: int = 0, perm_id: int = 0, order_ref: str = "") -> TrackedOrder | None:
        """The record of an IB report: by ``permId`` first (stable), else by order id (one session only) —
        but never a record whose known ``permId`` differs (a reused order id) — else by ``orderRef``."""
        with self._cond:
            record = self._by_perm.get(perm_id) if perm_id else None
            if record is None and ib_order_id:
                record = self._by_ib_id.get(ib_order_id)
                if record is not None and perm_id and record.perm_id and record.perm_id != perm_id:
                    record = None  # IB gave this id to another order
            if record is None and order_ref:
                record = self._by_ref.get(order_ref) or self._records.get(order_ref)
                if record is not None and perm_id and record.perm_id and record.perm_id != perm_id:
                    record = None
            if record is not None and perm_id and not record.perm_id:
                record.perm_id = perm_id
                self._by_perm[perm_id] = record
            return record

    def reachable_records(self) -> list[TrackedOrder]:
        """Every order IB may still hold (see :attr:`TrackedOrder.may_be_at_ib`): what a kill switch cancels."""
        with self._cond:
            candidates = self._maybe_at_ib
            if any(_never_at_ib_again(r) for r in candidates):
                candidates = self._maybe_at_ib = [r for r in candidates if not _never_at_ib_again(r)]
            return [r for r in candidates if r.may_be_at_ib]

    def mark_lost(self, record: TrackedOrder, reason: str) -> bool:
        """IB no longer knows ``record``'s order: CANCELLED with ``reason``, ``lost``, and unbound from its
        order id so that nothing is ever cancelled through it. Returns False if already lost or filled."""
        with self._cond:
            if record.lost or record.status is OrderStatus.FILLED:
                return False
            record.lost = True
            record.ib_order = None
            if self._by_ib_id.get(record.ib_order_id) is record:
                del self._by_ib_id[record.ib_order_id]
            if not record.is_done:
                record.order.status = OrderStatus.CANCELLED
            record.order.reject_reason = reason
            self._cond.notify_all()
            return True

    def release(self, record: TrackedOrder) -> None:
        """IB no longer holds ``record``'s (finished) order: never cancel it through its old order id."""
        with self._cond:
            record.ib_order = None
            if self._by_ib_id.get(record.ib_order_id) is record:
                del self._by_ib_id[record.ib_order_id]

    def reopen(self, record: TrackedOrder) -> OrderStatus | None:
        """IB executed an order believed finished without a fill (rejected/cancelled by an error code,
        or lost): it is working again. Returns the status it had, or None if it was not finished."""
        with self._cond:
            old = record.status
            if not old.is_done or old is OrderStatus.FILLED:
                return None
            record.order.status = OrderStatus.PARTIALLY_FILLED if record.fills else OrderStatus.SUBMITTED
            record.order.reject_reason = ""
            record.lost = False
            self._cond.notify_all()
            return old

    def get(self, order_id: str) -> TrackedOrder | None:
        with self._cond:
            return self._records.get(order_id)

    def record_for(self, order: Order) -> TrackedOrder | None:
        """The record of this very ``order`` object (ids can repeat: an adopted order, an explicit id)."""
        with self._cond:
            record = self._records.get(str(order.order_id))
            if record is not None and record.order is order:
                return record
            newest_first = chain(reversed(self._recent), reversed(self._older))
            return next((r for r in newest_first if r.order is order), None)

    def records(self) -> list[TrackedOrder]:
        """The records kept, in the order added: the last :attr:`keep_recent` orders, and every older one that
        may still change (all of them with ``keep_recent=None``; see the module docstring)."""
        with self._cond:
            return list(self._kept())

    def open_records(self) -> list[TrackedOrder]:
        with self._cond:
            return [r for r in self._kept() if not r.is_done]

    # ----------------------------------------------------------------- updates
    def set_status(
        self, record: TrackedOrder, status: OrderStatus, ib_status: str = "", reason: str = ""
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

    def add_execution(self, record: TrackedOrder, execution: PendingExecution) -> bool:
        """Note an execution; ``False`` if this ``execId`` was seen before for this order (a duplicate report).

        An ``execId`` seen only for other orders is noted (``True``) and logged as an error: see the module
        docstring.
        """
        with self._cond:
            owners = self._seen_exec_ids.setdefault(execution.exec_id, [])
            if any(_same_order(record, owner) for owner in owners):
                return False
            current = record.exec_by_base.get(exec_id_base(execution.exec_id))
            if current is not None and supersedes(current, execution.exec_id):
                owners.append(record)  # an older version of an execution already corrected: nothing new
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
            record.exec_by_base[exec_id_base(execution.exec_id)] = execution.exec_id
            self._cond.notify_all()
            return True

    def corrected_exec_id(self, record: TrackedOrder, exec_id: str) -> str | None:
        """The execution of ``record`` that ``exec_id`` corrects (same id up to the last ".", lower
        suffix), or None when ``exec_id`` is not a correction of one of its executions."""
        with self._cond:
            current = record.exec_by_base.get(exec_id_base(exec_id))
            return current if current is not None and supersedes(exec_id, current) else None

    def correct(
        self, record: TrackedOrder, execution: PendingExecution, replaced: str
    ) -> ExecutionCorrection | None:
        """Replace execution ``replaced`` of ``record`` with its correction ``execution``.

        Still pending (no fill delivered yet): the pending entry is swapped and None is returned. Already
        a fill: that fill is replaced (its commission kept), the order's totals recomputed, and the
        :class:`ExecutionCorrection` returned for the caller to report.
        """
        with self._cond:
            self._seen_exec_ids.setdefault(execution.exec_id, []).append(record)
            record.exec_by_base[exec_id_base(execution.exec_id)] = execution.exec_id
            if record.pending.pop(replaced, None) is not None:
                record.pending[execution.exec_id] = execution
                self._cond.notify_all()
                return None
            index = next((i for i, f in enumerate(record.fills) if f.fill_id == replaced), None)
            if index is None:
                return None
            old = record.fills[index]
            if execution.shares > 0:
                record.fills[index] = _replace(
                    old, fill_price=execution.price, fill_quantity=execution.shares, fill_id=execution.exec_id
                )
            else:
                del record.fills[index]  # IB corrected the execution away
            record.exec_ids.add(execution.exec_id)
            self._recompute(record)
            self._cond.notify_all()
            return ExecutionCorrection(
                order=record.order,
                replaced_exec_id=replaced,
                exec_id=execution.exec_id,
                old_quantity=old.fill_quantity,
                new_quantity=execution.shares,
                old_price=old.fill_price,
                new_price=execution.price,
                time=execution.time,
            )

    @staticmethod
    def _recompute(record: TrackedOrder) -> None:
        qty = record.filled_quantity
        record.order.filled_quantity = qty
        record.order.avg_fill_price = (
            sum(f.fill_price * f.fill_quantity for f in record.fills) / qty if qty > 0 else 0.0
        )
        if record.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED, OrderStatus.SUBMITTED):
            record.order.status = (
                OrderStatus.FILLED
                if qty >= record.order.quantity - 1e-9
                else (OrderStatus.PARTIALLY_FILLED if qty > 0 else OrderStatus.SUBMITTED)
            )

    def settle(self, record: TrackedOrder, exec_id: str, commission: float) -> Fill | None:
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
                multiplier=record.multiplier,
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

    def record_for_exec(self, exec_id: str) -> TrackedOrder | None:
        with self._cond:
            for record in self._kept():
                if exec_id in record.pending:
                    return record
            return None

    def seen(self, exec_id: str, record: TrackedOrder | None = None) -> bool:
        """Whether ``exec_id`` was reported for ``record``'s order (default: for any order)."""
        with self._cond:
            owners = self._seen_exec_ids.get(exec_id, [])
            if record is None:
                return bool(owners)
            return any(_same_order(record, owner) for owner in owners)

    def other_orders(self, exec_id: str, record: TrackedOrder) -> list[TrackedOrder]:
        """The records of orders other than ``record``'s that ``exec_id`` was also reported for (normally
        none: a non-empty list means the broker reused an execution id)."""
        with self._cond:
            return [o for o in self._seen_exec_ids.get(exec_id, []) if not _same_order(record, o)]

    def wait(self, record: TrackedOrder, timeout: float, *, until_settled: bool = True) -> bool:
        """Block until ``record`` is settled (or merely done); returns whether that happened in time."""
        with self._cond:
            if until_settled:
                return self._cond.wait_for(lambda: record.settled, timeout)
            return self._cond.wait_for(lambda: record.is_done, timeout)


def _checked_keep(keep: int | None) -> int | None:
    if keep is None:
        return None
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ConfigError(f"keep_recent must be a positive number of orders or None (keep all), got {keep!r}")
    return keep


def _finished_for_good(record: TrackedOrder) -> bool:
    """Nothing will change about ``record`` any more: IB will not report on it again, each of its executions
    is a fill (handed to the journal), and no modification awaits IB's answer."""
    return _never_at_ib_again(record) and not record.pending and record.modifying is None


def _never_at_ib_again(record: TrackedOrder) -> bool:
    """IB reported the order finished itself (``ib_final`` is never undone), or it finished without ever being
    sent (no IB order id: refused before ``placeOrder``; only placing binds one, and only a new order)."""
    return record.ib_final or (not record.ib_order_id and record.status.is_done)


def _same_order(a: TrackedOrder, b: TrackedOrder) -> bool:
    """Whether two records track the same order: the same journal ref (an adopted order has a new record
    with its old ref), else, without refs, the same record or ``Order`` object."""
    if a is b:
        return True
    if a.order_ref and b.order_ref:
        return a.order_ref == b.order_ref
    return a.order is b.order


def _describe(record: TrackedOrder) -> str:
    return f"{record.order.order_id} ({record.order_ref})" if record.order_ref else str(record.order.order_id)
