"""Fills from IB to the books and to the strategy that placed the order — and to no one else.

Every fill is applied to the account's ledger (see :mod:`~copilot_quant.live.account_view`), then to the
book of the strategy that owns the order and to that strategy's ``on_fill``. Ownership is the order's tag:
the strategy slot that submitted this very order object, else the strategy the journal recorded for the
order's ``orderRef`` (an order from an earlier run, or a fill reconciliation found after a restart). A
fill of an order no strategy of this run placed (the kill switch's flattening, a strategy not running
now) reaches the account's ledger only; executions no strategy placed at all (a trade in TWS) never
arrive here — reconciliation reports them as external.

An execution correction (IB replaced an execution already delivered as a fill, docs/ib-behaviours.md
row 4) is never a second fill: the ledger and the owner's book replace the old execution's quantity and
price with the new ones, and the strategy is told through its optional ``on_correction(correction)``
hook (an :class:`~copilot_quant.brokers.exec_corrections.ExecutionCorrection`; ``on_fill`` never sees
it). A strategy without the hook stays correct as long as it reads ``self.positions`` / ``self.cash``
(which already include the correction) rather than counting fills itself.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.events import ErrorLog, RecentList
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.orders import Fill, Order, OrderSide

__all__ = ["FILLS_KEPT", "FillDispatcher"]

log = logging.getLogger(__name__)

#: How many of the latest fills :attr:`FillDispatcher.fills` (the engine's ``fills``) keeps: a session of many
#: fills must not grow the engine's memory; the journal keeps them all (:attr:`FillDispatcher.count` counts them).
FILLS_KEPT = 10_000


class _Delivery(NamedTuple):  # a tuple: made for every fill, on the loop thread before the bar's handler
    fill: Fill
    order_ref: str | None
    #: False for fills already in the books they were opened from (found by reconciliation at start).
    book: bool


def correct_book(book: StrategyBook, correction: ExecutionCorrection) -> None:
    """Replace the corrected execution in ``book``: its old trade undone, the new one booked (a correction
    is not a fill: the book's fill count stays)."""
    sign = OrderSide(correction.order.side).sign
    count = book.fill_count
    if correction.old_quantity:
        book.apply(correction.symbol, -sign * correction.old_quantity, correction.old_price)
    if correction.new_quantity:
        book.apply(correction.symbol, sign * correction.new_quantity, correction.new_price)
    book.fill_count = count


class FillDispatcher:
    """Hands fills from the broker adapter's threads to the worker, which books and delivers them
    (:meth:`drain`)."""

    def __init__(
        self,
        *,
        broker: LiveBrokerAdapter,
        journal: Callable[[], TradeJournal | None],
        account: AccountState,
        errors: ErrorLog,
        wake: threading.Event,
        slots: Callable[[], Sequence[StrategySlot]],
    ) -> None:
        self._broker = broker
        self._journal = journal
        self._account = account
        self._errors = errors
        self._wake = wake
        self._slots = slots
        self._queue: queue.SimpleQueue[_Delivery | ExecutionCorrection] = queue.SimpleQueue()
        #: The last :data:`FILLS_KEPT` real fills received while running, in order (``fills.maxlen`` sets how
        #: many: a parity run compares all of its fills).
        self.fills: RecentList[Fill] = RecentList(FILLS_KEPT)
        #: How many real fills were received while running.
        self.count = 0
        #: Whether the books are open: fills found before that are already in what they open from.
        self.booking = False
        #: Called when a live fill is queued: wakes the worker (the engine's inline dispatch, when on, has
        #: it delivered on the IB loop thread instead: :mod:`copilot_quant.live.inline`).
        self.notify: Callable[[], None] = wake.set
        #: Whether the stop has begun closing the journal: live fills are no longer queued for the worker
        #: (the strategies are stopped) but held (:meth:`hold_late`), then said to be left to reconciliation.
        self._closing = False
        self._late: list[Fill] | None = None
        self._late_lock = threading.Lock()
        #: Execution ids of the fills :meth:`left_for_reconciliation` (insertion-ordered, bounded).
        self._unjournaled: dict[str, None] = {}

    def live(self, fill: Fill) -> None:  # journal writer (or IB loop) thread: hand over, never block
        if self._closing and self._after_close(fill):
            return
        self._queue.put(_Delivery(fill, None, self.booking))
        self.notify()

    # ------------------------------------------------------------------ fills while the journal closes
    def hold_late(self) -> None:
        """The stop is about to close the journal: hold the fills that arrive from now on (:meth:`take_late`)
        instead of queueing them for strategies that have stopped."""
        with self._late_lock:
            self._late = []
            self._closing = True

    def take_late(self) -> list[Fill]:
        """The fills held since :meth:`hold_late`; every later one is logged as left to the next start's
        reconciliation (:meth:`left_for_reconciliation`) until :meth:`reopen`."""
        with self._late_lock:
            late, self._late = self._late or [], None
            return late

    def take_unjournaled(self, exec_id: str) -> bool:
        """Whether execution ``exec_id`` arrived once the journal had closed (forgotten from now on): the
        adapter has seen it, so reconciliation records and delivers it itself."""
        with self._late_lock:
            if exec_id not in self._unjournaled:
                return False
            del self._unjournaled[exec_id]
            return True

    def reopen(self) -> None:
        """A journal is open again (start): fills are queued for the worker again."""
        with self._late_lock:
            self._late = None
            self._closing = False

    def _after_close(self, fill: Fill) -> bool:
        """Hold ``fill`` or say it is left to reconciliation; False if the journal was reopened meanwhile."""
        with self._late_lock:
            if not self._closing:
                return False
            if self._late is not None:
                self._late.append(fill)
                return True
        self.left_for_reconciliation(fill)
        return True

    def left_for_reconciliation(self, fill: Fill) -> None:
        """Say that ``fill`` came once the journal closed: nothing records it now, the next start will (this
        engine's too: :meth:`take_unjournaled`)."""
        if fill.fill_id:
            with self._late_lock:
                self._unjournaled[fill.fill_id] = None
                while len(self._unjournaled) > FILLS_KEPT:  # a stopped engine left connected for months
                    del self._unjournaled[next(iter(self._unjournaled))]
        log.warning(
            "fill %s (%s %g %s @ %g) arrived after the engine stopped and its journal closed: not journaled "
            "now; the next start's reconciliation records it from IB's executions and passes it to on_fill",
            fill.fill_id,
            fill.side,
            fill.fill_quantity,
            fill.symbol,
            fill.fill_price,
        )

    def recovered(self, fill: Fill, order_ref: str) -> None:
        """A fill reconciliation found (it happened while the engine was away or disconnected)."""
        self._queue.put(_Delivery(fill, order_ref or None, self.booking))
        self._wake.set()

    def corrected(self, correction: ExecutionCorrection) -> None:  # IB loop thread: hand over
        """IB corrected an execution already delivered: booked and told to its strategy by :meth:`drain`."""
        self._queue.put(correction)
        self._wake.set()

    def drain(self) -> int:
        """Book the queued fills and deliver each to its strategy's ``on_fill`` (worker thread)."""
        count = 0
        ledger = self._account.ledger
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return count
            count += 1
            if isinstance(item, ExecutionCorrection):
                self._correct(item)
                continue
            fill = item.fill
            self.fills.append(fill)
            self.count += 1
            if item.book and ledger is not None:
                ledger.apply(fill)
            slot = self.owner(fill, item.order_ref)
            if slot is None:
                log.info(
                    "fill %s (%s %g %s) is of an order no strategy of this run placed: booked to the account",
                    fill.fill_id,
                    fill.side,
                    fill.fill_quantity,
                    fill.symbol,
                )
                continue
            if item.book:
                slot.book.apply_fill(fill)
            try:
                slot.strategy.on_fill(fill)
            except Exception as exc:
                message = f"{type(exc).__name__} in on_fill: {exc}"
                self._errors.strategy_failed(slot.name, exc, message, "in on_fill")

    def _correct(self, correction: ExecutionCorrection) -> None:
        """Book a correction in the ledger and its owner's book, then call the owner's ``on_correction``."""
        sign = OrderSide(correction.order.side).sign
        ledger = self._account.ledger
        if ledger is not None and self.booking:
            old = (correction.old_quantity, correction.old_price)
            ledger.correct(correction.symbol, sign, old, (correction.new_quantity, correction.new_price))
        slot = self._owner_of(correction.order, None)
        if slot is None:
            return
        if self.booking:
            correct_book(slot.book, correction)
        hook = getattr(slot.strategy, "on_correction", None)
        if hook is None:
            return
        try:
            hook(correction)
        except Exception as exc:
            message = f"{type(exc).__name__} in on_correction: {exc}"
            self._errors.strategy_failed(slot.name, exc, message, "in on_correction")

    def owner(self, fill: Fill, order_ref: str | None) -> StrategySlot | None:
        """The slot whose strategy placed the order of ``fill`` (see the module docstring)."""
        return self._owner_of(fill.order, order_ref)

    def _owner_of(self, order: Order, order_ref: str | None) -> StrategySlot | None:
        slots = self._slots()
        for slot in slots:
            if slot.owns(order):
                return slot
        name = self._strategy_of(order, order_ref)
        found = next((s for s in slots if name is not None and s.name == name), None)
        if found is not None and not found.owns(order) and not order.status.is_done:
            found.add(order)  # an order of its earlier run: open_orders() lists it now
        return found

    def _strategy_of(self, order: Order, order_ref: str | None) -> str | None:
        ref = order_ref
        if not ref:
            record = self._broker.tracker.record_for(order)
            ref = record.order_ref if record is not None else None
        journal = self._journal()
        if not ref or journal is None or journal.closed:
            return None
        try:
            return journal.order(ref).strategy if journal.has_order(ref) else None
        except JournalError as exc:
            log.warning("cannot read order %s from the journal to attribute its fill: %s", ref, exc)
            return None
