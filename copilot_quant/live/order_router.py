"""The order router: the one way a strategy's order reaches IB.

In order: market hours (hold or reject while the session is closed), the risk check, the journal's intent
(durable *before* anything is sent, so nothing is lost and nothing is sent twice), then the broker. An
order refused anywhere on that path is recorded as rejected with its reason, never dropped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import pandas as pd

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours, is_market_open
from copilot_quant.errors import CopilotQuantError, JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.events import ErrorLog
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.orders import Order, OrderStatus, OrderType
from copilot_quant.risk import RiskManager

__all__ = ["OrderRouter"]

log = logging.getLogger(__name__)

#: How long one slice of the wait for an order's fills lasts: the longest a stop waits for it.
_WAIT_SLICE_S = 0.05


class OrderRouter:
    """Market hours → risk → journal intent → broker, for every strategy's orders (worker thread)."""

    def __init__(
        self,
        *,
        broker: LiveBrokerAdapter,
        feed: LiveDataFeedAdapter,
        risk: RiskManager,
        safety: Safety,
        clock: BarClock,
        account: AccountState,
        errors: ErrorLog,
        journal: Callable[[], TradeJournal | None],
        outside_hours: OutsideHours,
        reconciled: Callable[[], bool],
        stopping: threading.Event,
    ) -> None:
        self._broker = broker
        self._feed = feed
        self._risk = risk
        self._safety = safety
        self._clock = clock
        self._account = account
        self._errors = errors
        self._journal = journal
        self.outside_hours = outside_hours
        self._reconciled = reconciled
        self._stopping = stopping
        #: The run's symbols: an order for any other is refused, as in a backtest.
        self.symbols: frozenset[str] = frozenset()

    def submit(self, slot: StrategySlot, order: Order, stamp: pd.Timestamp) -> None:
        """Route one of ``slot``'s orders (see the module docstring)."""
        if order.symbol not in self.symbols:
            self._refuse_unsubscribed(slot, order)
            return
        if self.outside_hours is not OutsideHours.ALLOW and not is_market_open(self._clock.now(fresh=True)):
            if self.outside_hours is OutsideHours.HOLD:
                log.info("market closed: holding order %s until the session opens", order.order_id)
                slot.held.append(order)
                return
            order.status = OrderStatus.REJECTED
            order.reject_reason = "market closed (outside_hours='reject')"
            self._errors.record(f"order {order.order_id} {order.symbol} rejected: market closed", "order")
            return
        price = self._feed.get_latest_price(order.symbol) or float("nan")
        journal = self._journal()
        if journal is None:
            raise JournalError("the engine has no open journal; start() opens it before trading")
        account = self._account
        decision = self._risk.check(
            order,
            price if math.isfinite(price) else None,
            account.positions,
            account.known_value,
            account.day_start_equity,
            open_orders=self._broker.orders_ib_may_hold(),  # also those an IB error code alone "rejected"
            expect_data=self._safety.expect_data(),
            daily_pnl=account.daily_pnl,
        )
        try:
            ref = journal.record_intent(order, slot.name)  # before anything is sent: nothing is lost
        except JournalError as exc:
            order.status = OrderStatus.REJECTED
            order.reject_reason = f"journal write failed, trading halted: {exc}"
            self._safety.on_journal_failure(exc)
            return
        halt = self._safety.refusal(decision)
        if halt is None and not self._reconciled():
            halt = "not sent: the journal and IB are not reconciled yet (retrying)"
        if halt is not None:
            # Not an error: the halt itself was reported once, loudly; the journal keeps the refused order.
            self._risk.release_reservation(order)
            self._broker.reject(order, halt, order_ref=ref, report=False)
            log.warning(
                "order %s %s %g %s not sent, %s (journaled as rejected)",
                order.order_id,
                order.side,
                order.quantity,
                order.symbol,
                halt,
            )
            return
        if not decision.ok:
            self._broker.reject(order, f"risk check: {decision.reason}", order_ref=ref)
            return
        try:
            # wait=0: the broker returns once the order is placed; the wait for its fills is ours, so
            # that stop() interrupts it
            self._broker.execute_order(order, price, stamp.to_pydatetime(), order_ref=ref, wait=0.0)
        except CopilotQuantError as exc:
            self._risk.release_reservation(order)  # never sent: its order-rate slot is free again
            self._errors.record(f"order {order.order_id} {order.symbol}: {exc}", "order")
            return
        self._await_fills(order)  # IB may reject it meanwhile: then it keeps no order-rate slot
        if order.status is not OrderStatus.REJECTED:
            self._risk.record_submitted(order)

    def _refuse_unsubscribed(self, slot: StrategySlot, order: Order) -> None:
        """An order for a symbol this run has no data for: REJECTED with the reason, journaled, never sent —
        as the backtest refuses it (a strategy must trade the symbols it is run on)."""
        listed = ", ".join(sorted(self.symbols))
        reason = (
            f"no price data for {order.symbol} in this live run (symbols: {listed}); "
            "add it to start(symbols=[...]) (--symbols on the command line)"
        )
        ref = ""
        journal = self._journal()
        if journal is not None:
            try:
                ref = journal.record_intent(order, slot.name)
            except JournalError as exc:
                self._safety.on_journal_failure(exc)
        self._broker.reject(order, reason, order_ref=ref)

    def _await_fills(self, order: Order) -> None:
        """Wait as the broker would (``fill_timeout`` for a market order, ``ack_timeout`` otherwise) for the
        order's fills, in short slices, so that a stop is never kept waiting."""
        broker = self._broker
        wait = broker.fill_timeout if order.order_type is OrderType.MARKET else broker.ack_timeout
        if wait <= 0 or broker.tracker.record_for(order) is None:
            return
        deadline = time.monotonic() + wait
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or broker.wait_for_fills(order, min(left, _WAIT_SLICE_S)):
                return

    def release_held(self, slot: StrategySlot, now: pd.Timestamp) -> None:
        """Send ``slot``'s held orders once the session is open."""
        if slot.held and is_market_open(now):
            held, slot.held = slot.held, []
            for order in held:
                self.submit(slot, order, now)
