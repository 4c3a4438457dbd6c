"""Compare the journal with what the broker reports after a (re)connect — a pure function, no I/O.

The engine fetches open and completed orders and executions from the broker (``reqOpenOrders``,
``reqCompletedOrders``, ``reqExecutions``), translates them at the edge into :class:`BrokerOrder` and
:class:`BrokerExecution`, and calls :func:`reconcile`. The :class:`ReconcileReport` says what to do:

* ``missing_fills`` — executions of our orders the journal lacks (they happened while we were away):
  record each with ``record_fill`` and deliver ``on_fill`` when it returns True. An execution counts as
  journaled only for the order it was journaled for: an id the broker reused for another order is missing.
* ``unconfirmed_submissions`` — intents the broker does know: the order *was* sent before a crash;
  ``record_submitted`` it and never send it again.
* ``unsent_intents`` — intents the broker does not know: the crash came before sending. The engine
  decides (cancel them in the journal, or send them now); they are never sent twice because the ref is
  the same.
* ``status_changes`` — our active orders whose broker status differs (finished or filled while away).
* ``vanished_orders`` — our working orders the broker no longer lists at all (completed or cancelled
  while away and not in the completed-orders list): ask the broker, or mark them cancelled.
* ``foreign_orders`` / ``foreign_executions`` — placed outside the engine (e.g. by hand in TWS):
  reported, never adopted.
* ``quantity_mismatches`` — an order's quantity differs (modified outside the engine), or the broker's
  filled quantity cannot be explained by the journal's fills plus the missing ones.
* ``position_mismatches`` — a symbol whose broker position differs from the net quantity the journal's
  fills (plus the missing ones) imply: reported, never adopted. Only checked when the broker's positions
  are given. Cash is not compared: deposits, interest and fees never reach the journal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from copilot_quant.errors import JournalError
from copilot_quant.journal.records import FillRecord, JournalOrder
from copilot_quant.journal.refs import is_journal_ref
from copilot_quant.journal.states import JournalOrderState
from copilot_quant.model.orders import OrderSide, OrderStatus

__all__ = [
    "BrokerExecution",
    "BrokerOrder",
    "PositionMismatch",
    "QuantityMismatch",
    "ReconcileReport",
    "StatusChange",
    "reconcile",
]

_QTY_EPS = 1e-9


def _side(value: OrderSide | str) -> OrderSide:
    try:
        return value if isinstance(value, OrderSide) else OrderSide(str(value).strip().lower())
    except ValueError:
        raise JournalError(
            f"unknown side {value!r} in broker data; translate it to 'buy' or 'sell'"
        ) from None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the broker reports it (open or completed). ``order_ref`` is empty for manual orders."""

    order_ref: str | None
    broker_order_id: int | None
    symbol: str
    side: OrderSide | str
    quantity: float
    filled: float
    status: OrderStatus | str
    perm_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", _side(self.side))
        object.__setattr__(self, "symbol", str(self.symbol).strip().upper())
        try:
            object.__setattr__(self, "status", OrderStatus(str(self.status).strip().lower()))
        except ValueError:
            allowed = ", ".join(s.value for s in OrderStatus)
            raise JournalError(
                f"unknown broker order status {self.status!r}; translate it to one of {allowed}"
            ) from None

    @property
    def status_enum(self) -> OrderStatus:
        return OrderStatus(self.status)


@dataclass(frozen=True, slots=True)
class BrokerExecution:
    """One execution as the broker reports it (``reqExecutions`` or a live ``execDetails``)."""

    exec_id: str
    order_ref: str | None
    symbol: str
    side: OrderSide | str
    quantity: float
    price: float
    time: datetime
    broker_order_id: int | None = None
    commission: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", _side(self.side))
        object.__setattr__(self, "symbol", str(self.symbol).strip().upper())
        if not math.isfinite(self.quantity) or self.quantity <= 0:
            raise JournalError(f"execution {self.exec_id} has quantity {self.quantity!r}; it must be > 0")


@dataclass(frozen=True, slots=True)
class StatusChange:
    order_ref: str
    journal_state: JournalOrderState
    broker_status: OrderStatus
    broker_filled: float


@dataclass(frozen=True, slots=True)
class QuantityMismatch:
    order_ref: str
    what: str  # 'quantity' (order size) or 'filled'
    journal: float
    broker: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class PositionMismatch:
    """A symbol whose broker position is not what the journal's fills add up to (signed: long > 0)."""

    symbol: str
    journal_qty: float
    broker_qty: float


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    missing_fills: tuple[BrokerExecution, ...] = ()
    unconfirmed_submissions: tuple[tuple[JournalOrder, BrokerOrder], ...] = ()
    unsent_intents: tuple[JournalOrder, ...] = ()
    status_changes: tuple[StatusChange, ...] = ()
    vanished_orders: tuple[JournalOrder, ...] = ()
    foreign_orders: tuple[BrokerOrder, ...] = ()
    foreign_executions: tuple[BrokerExecution, ...] = ()
    quantity_mismatches: tuple[QuantityMismatch, ...] = field(default=())
    position_mismatches: tuple[PositionMismatch, ...] = ()

    @property
    def is_clean(self) -> bool:
        """Nothing to do and nothing to report."""
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def summary(self) -> list[str]:
        """One human-readable line per finding (empty when clean); log them and journal them as events."""
        lines = [
            f"missing fill {e.exec_id}: {e.side} {e.quantity:g} {e.symbol} @ {e.price:g} for {e.order_ref}"
            for e in self.missing_fills
        ]
        lines += [
            f"order {o.order_ref} reached the broker as {b.broker_order_id} before the crash; not resending"
            for o, b in self.unconfirmed_submissions
        ]
        lines += [f"order {o.order_ref} was journaled but never sent" for o in self.unsent_intents]
        lines += [
            f"order {c.order_ref} is {c.broker_status} at the broker (journal: {c.journal_state}, "
            f"filled {c.broker_filled:g})"
            for c in self.status_changes
        ]
        lines += [f"order {o.order_ref} is no longer known to the broker" for o in self.vanished_orders]
        lines += [
            f"order placed outside the engine: {o.side} {o.quantity:g} {o.symbol} (broker id "
            f"{o.broker_order_id}, ref {o.order_ref!r}, {o.status}) — reported, not adopted"
            for o in self.foreign_orders
        ]
        lines += [
            f"execution outside the engine: {e.exec_id} {e.side} {e.quantity:g} {e.symbol} @ {e.price:g}"
            for e in self.foreign_executions
        ]
        lines += [
            f"order {m.order_ref} {m.what} mismatch: journal {m.journal:g}, broker {m.broker:g}"
            + (f" ({m.note})" if m.note else "")
            for m in self.quantity_mismatches
        ]
        lines += [
            f"position mismatch {p.symbol}: journal {p.journal_qty:g}, broker {p.broker_qty:g} "
            "— reported, not adopted"
            for p in self.position_mismatches
        ]
        return lines


def reconcile(
    journal_open_orders: Iterable[JournalOrder],
    broker_orders: Iterable[BrokerOrder],
    broker_executions: Iterable[BrokerExecution],
    journal_fills: Iterable[FillRecord],
    account: str | None = None,
    *,
    broker_positions: Mapping[str, float] | None = None,
) -> ReconcileReport:
    """Compare the journal's active orders and fills with the broker's orders and executions.

    ``journal_open_orders``: the journal's active orders (``journal.orders('active')``, intents included).
    ``broker_orders``: the broker's open orders, plus its completed orders when available.
    ``broker_executions``: the broker's executions (of the day, or since the last known fill).
    ``journal_fills``: the journal's fills (at least those the executions could repeat).
    ``account``: when given, only refs issued by that account's journal count as ours.
    ``broker_positions``: when given, ``{symbol: signed quantity}`` at the broker; compared exactly with
    the net quantity of the journal's fills plus the missing ones (all of ``journal_fills`` count).
    """
    open_orders = list(journal_open_orders)
    journal_refs = {o.order_ref for o in open_orders}
    by_broker_id = {o.broker_order_id: o.order_ref for o in open_orders if o.broker_order_id is not None}
    fills = list(journal_fills)
    # An execution is known by its id *and* its order: an id the broker reuses for another order is
    # still a missing fill of that order (the journal records it with an alert), never silently known.
    known_execs = {(f.exec_id, f.order_ref) for f in fills}
    known_ids = {f.exec_id for f in fills}
    journal_fill_qty: dict[str, float] = {}
    for f in fills:
        if f.order_ref:
            journal_fill_qty[f.order_ref] = journal_fill_qty.get(f.order_ref, 0.0) + f.quantity

    def ours(ref: str | None, broker_id: int | None) -> str | None:
        if ref and (ref in journal_refs or is_journal_ref(ref, account)):
            return ref
        if broker_id is not None and broker_id in by_broker_id:
            return by_broker_id[broker_id]
        return None

    missing: dict[tuple[str, str], BrokerExecution] = {}
    foreign_execs: dict[str, BrokerExecution] = {}
    missing_qty: dict[str, float] = {}
    for reported in broker_executions:
        ref = ours(reported.order_ref, reported.broker_order_id)
        if ref is None:
            if reported.exec_id not in known_ids:  # one the journal holds is ours, whatever IB says now
                foreign_execs.setdefault(reported.exec_id, reported)
            continue
        if (reported.exec_id, ref) in known_execs or (reported.exec_id, ref) in missing:
            continue
        # Matched by broker order id only: carry our ref, so that the fill is journaled against its order.
        execution = reported if ref == reported.order_ref else replace(reported, order_ref=ref)
        missing[(execution.exec_id, ref)] = execution
        missing_qty[ref] = missing_qty.get(ref, 0.0) + execution.quantity

    broker_by_ref: dict[str, BrokerOrder] = {}
    foreign_orders: list[BrokerOrder] = []
    for order in broker_orders:
        ref = ours(order.order_ref, order.broker_order_id)
        if ref is None:
            foreign_orders.append(order)
            continue
        previous = broker_by_ref.get(ref)
        # The same order can be listed as open and as completed; the finished report is the later one.
        if previous is None or order.status_enum.is_done:
            broker_by_ref[ref] = order

    unconfirmed: list[tuple[JournalOrder, BrokerOrder]] = []
    unsent: list[JournalOrder] = []
    changes: list[StatusChange] = []
    vanished: list[JournalOrder] = []
    mismatches: list[QuantityMismatch] = []
    for record in open_orders:
        broker = broker_by_ref.get(record.order_ref)
        if broker is None:
            if record.state is JournalOrderState.INTENT:
                if record.order_ref in missing_qty:  # it filled, so it was sent
                    continue
                unsent.append(record)
            elif record.state.is_working:
                vanished.append(record)
            continue
        if record.state is JournalOrderState.INTENT:
            unconfirmed.append((record, broker))
        if abs(broker.quantity - record.quantity) > _QTY_EPS:
            mismatches.append(
                QuantityMismatch(
                    record.order_ref,
                    "quantity",
                    record.quantity,
                    broker.quantity,
                    "modified outside the engine",
                )
            )
        accounted = max(record.filled, journal_fill_qty.get(record.order_ref, 0.0))
        accounted += missing_qty.get(record.order_ref, 0.0)
        if abs(broker.filled - accounted) > _QTY_EPS:
            note = (
                "executions missing: fetch them (reqExecutions) before trading on"
                if broker.filled > accounted
                else "the journal holds more fills than the broker reports"
            )
            mismatches.append(QuantityMismatch(record.order_ref, "filled", accounted, broker.filled, note))
        expected = JournalOrderState.from_order_status(broker.status_enum)
        if expected is not record.state and not (
            record.state is JournalOrderState.INTENT and expected is JournalOrderState.SUBMITTED
        ):
            changes.append(StatusChange(record.order_ref, record.state, broker.status_enum, broker.filled))

    return ReconcileReport(
        missing_fills=tuple(sorted(missing.values(), key=lambda e: (e.time, e.exec_id))),
        unconfirmed_submissions=tuple(unconfirmed),
        unsent_intents=tuple(unsent),
        status_changes=tuple(changes),
        vanished_orders=tuple(vanished),
        foreign_orders=tuple(foreign_orders),
        foreign_executions=tuple(sorted(foreign_execs.values(), key=lambda e: (e.time, e.exec_id))),
        quantity_mismatches=tuple(mismatches),
        position_mismatches=_position_mismatches(fills, missing.values(), broker_positions),
    )


def _position_mismatches(
    fills: Iterable[FillRecord],
    missing: Iterable[BrokerExecution],
    broker_positions: Mapping[str, float] | None,
) -> tuple[PositionMismatch, ...]:
    if broker_positions is None:
        return ()
    implied: dict[str, float] = {}
    for symbol, side, quantity in [
        *((f.symbol, f.side, f.quantity) for f in fills),
        *((e.symbol, e.side, e.quantity) for e in missing),
    ]:
        key = str(symbol).strip().upper()
        implied[key] = implied.get(key, 0.0) + quantity * _side(side).sign
    broker: dict[str, float] = {}
    for symbol, quantity in broker_positions.items():
        if not math.isfinite(quantity):
            raise JournalError(f"broker position of {symbol!r} is {quantity!r}; it must be a finite number")
        key = str(symbol).strip().upper()
        broker[key] = broker.get(key, 0.0) + float(quantity)
    return tuple(
        PositionMismatch(symbol, implied.get(symbol, 0.0), broker.get(symbol, 0.0))
        for symbol in sorted(implied.keys() | broker.keys())
        if abs(implied.get(symbol, 0.0) - broker.get(symbol, 0.0)) > _QTY_EPS
    )
