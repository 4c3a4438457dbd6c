"""Fills from IB to the books and to the strategy that placed the order — and to no one else.

Every fill is applied to the account's ledger (see :mod:`~copilot_quant.live.account_view`), then to the
book of the strategy that owns the order and to that strategy's ``on_fill``. Ownership is the order's tag:
the strategy slot that submitted this very order object, else the strategy the journal recorded for the
order's ``orderRef`` (an order from an earlier run, or a fill reconciliation found after a restart). A
fill of an order no strategy of this run placed (the kill switch's flattening, a strategy not running
now) reaches the account's ledger only; executions no strategy placed at all (a trade in TWS) never
arrive here — reconciliation reports them as external.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.events import ErrorLog
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.orders import Fill

__all__ = ["FillDispatcher"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Delivery:
    fill: Fill
    order_ref: str | None
    #: False for fills already in the books they were opened from (found by reconciliation at start).
    book: bool


class FillDispatcher:
    """Hands fills from IB's loop thread to the worker, which books and delivers them (:meth:`drain`)."""

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
        self._queue: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        #: Every real fill received while running, in order.
        self.fills: list[Fill] = []
        #: Whether the books are open: fills found before that are already in what they open from.
        self.booking = False

    def live(self, fill: Fill) -> None:  # IB loop thread: hand over, never block
        self._queue.put(_Delivery(fill, None, self.booking))
        self._wake.set()

    def recovered(self, fill: Fill, order_ref: str) -> None:
        """A fill reconciliation found (it happened while the engine was away or disconnected)."""
        self._queue.put(_Delivery(fill, order_ref or None, self.booking))
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
            fill = item.fill
            self.fills.append(fill)
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

    def owner(self, fill: Fill, order_ref: str | None) -> StrategySlot | None:
        """The slot whose strategy placed the order of ``fill`` (see the module docstring)."""
        slots = self._slots()
        for slot in slots:
            if slot.owns(fill.order):
                return slot
        name = self._strategy_of(fill, order_ref)
        found = next((s for s in slots if name is not None and s.name == name), None)
        if found is not None and not found.owns(fill.order) and not fill.order.status.is_done:
            found.add(fill.order)  # an order of its earlier run: open_orders() lists it now
        return found

    def _strategy_of(self, fill: Fill, order_ref: str | None) -> str | None:
        ref = order_ref
        if not ref:
            record = self._broker.tracker.record_for(fill.order)
            ref = record.order_ref if record is not None else None
        journal = self._journal()
        if not ref or journal is None or journal.closed:
            return None
        try:
            return journal.order(ref).strategy if journal.has_order(ref) else None
        except JournalError as exc:
            log.warning("cannot read order %s from the journal to attribute its fill: %s", ref, exc)
            return None
