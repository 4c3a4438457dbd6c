"""What a stop does with the orders and positions at IB.

By default nothing: positions stay open and working orders stay at IB (GTC ones for days), and the stop
says which orders are still working (:func:`leave_orders`). ``cancel_on_stop`` cancels them.

``flatten_on_stop`` (:func:`flatten_strategies`): each strategy cancels its own working orders and closes
its own positions.

Only what the strategy's book holds is closed (its fills, and those the journal says it left), with
market orders tagged with its name — never the account's other positions. The orders skip the risk check
(they are the way out, not a new risk) but are journaled like any other before they are sent. If the
market is closed they wait at IB for the open; the stop says which orders are still working.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import CopilotQuantError, JournalError
from copilot_quant.journal import EventKind, TradeJournal
from copilot_quant.live.events import ErrorLog
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.orders import Order, OrderSide, OrderStatus, OrderType

__all__ = ["flatten_strategies", "journal_stop", "leave_orders", "run_stop_hooks"]

log = logging.getLogger(__name__)

_REASON = "engine stopped (flatten_on_stop)"


def flatten_strategies(
    slots: Sequence[StrategySlot],
    broker: LiveBrokerAdapter,
    journal: TradeJournal | None,
    wait_s: float,
    stopping: Callable[[], bool] = lambda: False,
    *,
    blocked: Callable[[str | None, str], str | None] = lambda strategy, symbol: None,
) -> list[Order]:
    """Cancel each strategy's working orders, send its closing orders, wait up to ``wait_s`` for their fills;
    returns the closing orders sent. A symbol whose books disagree with IB (``blocked``) is not closed:
    the book's position may not be at IB, and selling it would open the opposite one."""
    sent: list[Order] = []
    now = datetime.now(UTC)
    for slot in slots:
        for order in slot.open_orders():
            if slot.is_held(order):
                slot.cancel(order, broker)  # never sent: it simply is not
            else:
                broker.cancel_order(order, reason=_REASON)
        for symbol, position in slot.book.positions().items():
            why = blocked(None, symbol)
            if why is not None:
                log.warning("%s: its %g %s not closed on stop: %s", slot.name, position.quantity, symbol, why)
                continue
            order = _closing_order(symbol, position.quantity)
            ref = ""
            if journal is not None and not journal.closed:
                try:
                    ref = journal.record_intent(order, slot.name)
                except JournalError as exc:
                    log.error("flattening %s of %s without a journal entry: %s", symbol, slot.name, exc)
            slot.add(order)
            try:
                broker.execute_order(order, math.nan, now, order_ref=ref, wait=0.0)
            except CopilotQuantError as exc:
                log.error("could not send the order closing %s's %s position: %s", slot.name, symbol, exc)
                continue
            log.info(
                "%s: closing its %g %s on stop (order %s)",
                slot.name,
                position.quantity,
                symbol,
                order.order_id,
            )
            sent.append(order)
    deadline = time.monotonic() + wait_s
    for order in sent:
        while order.status is not OrderStatus.REJECTED and not stopping():
            left = deadline - time.monotonic()
            if left <= 0 or broker.wait_for_fills(order, min(left, 0.05)):
                break
    return sent


def _closing_order(symbol: str, held: float) -> Order:
    return Order(
        symbol=symbol,
        quantity=abs(held),
        order_type=OrderType.MARKET,
        side=OrderSide.SELL if held > 0 else OrderSide.BUY,
        allow_fractional=not float(held).is_integer(),
        tag="flatten_on_stop",
    )


def leave_orders(broker: LiveBrokerAdapter, cancel: bool) -> str:
    """Cancel the working orders if ``cancel``; else say which ones stay working at IB (they can still fill)."""
    working = broker.get_open_orders()
    if cancel and working:
        for order in working:
            broker.cancel_order(order, reason="engine stopped (cancel_on_stop=True)")
        return f"; cancel sent for {len(working)} working order(s)"
    if not working:
        return ""
    listed = ", ".join(
        f"{o.order_id} {o.side} {o.remaining_quantity:g} {o.symbol} {o.order_type} ({o.time_in_force})"
        for o in working
    )
    return (
        f"; {len(working)} order(s) still working at IB and may fill without the engine: {listed} — "
        "cancel them in TWS, or run with cancel_on_stop/--flatten-on-stop"
    )


def run_stop_hooks(slots: Sequence[StrategySlot], errors: ErrorLog) -> None:
    """Each strategy's ``on_stop`` then ``finalize``, once; one that raises is recorded and the rest still run."""
    for slot in slots:
        for hook in (slot.strategy.on_stop, slot.strategy.finalize):
            try:
                hook()
            except Exception as exc:
                message = f"{type(exc).__name__} in {hook.__name__}: {exc}"
                errors.strategy_failed(slot.name, exc, message, f"in {hook.__name__}")


def journal_stop(journal: TradeJournal, detail: str) -> None:
    """Journal the stop; a journal failure now must not engage the kill switch (it would cancel orders)."""
    try:
        journal.record_event(EventKind.STOP, detail)
    except JournalError as exc:
        log.error("could not journal the stop: %s", exc)
