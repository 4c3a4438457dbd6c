"""The order router: the one way a strategy's order reaches IB.

In order: market hours (hold or reject while the session is closed), the risk check, the journal's intent
(durable *before* anything is sent, so nothing is lost and nothing is sent twice), then the broker. An
order refused anywhere on that path is recorded as rejected with its reason, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.market_hours import OutsideHours, is_market_open
from copilot_quant.errors import CopilotQuantError, JournalError, StrategyError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.bar_clock import BarClock
from copilot_quant.live.events import ErrorLog
from copilot_quant.live.safety import Safety
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.model.modify import Modification, ModifyOutcome, check_modification, modify_refusal
from copilot_quant.model.orders import Order, OrderStatus, OrderType
from copilot_quant.risk import RiskDecision, RiskManager

__all__ = ["OrderRouter"]

log = logging.getLogger(__name__)

#: How long one slice of the wait for an order's fills lasts: the longest a stop waits for it.
_WAIT_SLICE_S = 0.05


@dataclass(slots=True)
class _Routed:
    """An order that passed the symbol and market-hours checks, with its risk decision and journal ref."""

    slot: StrategySlot
    order: Order
    price: float
    decision: RiskDecision
    ref: str = ""
    #: For a bracket exit: its entry, routed just before it in the same bar (the group shares one decision).
    entry: _Routed | None = None


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
        blocked: Callable[[str | None, str], str | None] = lambda strategy, symbol: None,
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
        #: Why an order of (strategy, symbol) may not go out: IB's position disagrees with the books.
        self._blocked = blocked
        self._stopping = stopping
        #: The run's symbols: an order for any other is refused, as in a backtest.
        self.symbols: frozenset[str] = frozenset()

    def submit(self, slot: StrategySlot, order: Order) -> None:
        """Route one of ``slot``'s orders (see the module docstring)."""
        self.submit_all([(slot, order)])

    def submit_all(self, items: Sequence[tuple[StrategySlot, Order]], *, inline: bool = False) -> None:
        """Route the orders one bar produced, every strategy's, in order (see the module docstring).

        Each passes market hours and the risk check (which counts the earlier orders of the same bar as
        working), then one journal transaction records all their intents — one disk sync, however many
        strategies — before the first is sent; then they are sent, and only then waited for.

        ``inline``: the caller is the IB loop thread (:mod:`~copilot_quant.live.inline`), where nothing may
        wait: the orders are placed at once and not waited for there (their fills reach the strategies before
        the next bar all the same: IB's messages are handled in order on that thread); each counts for the
        order-rate limit, as on the worker, once done or its wait is over, unless IB rejected it.
        """
        routed: list[_Routed] = []
        for slot, order in items:
            checked = self._check(slot, order, routed, items)
            if checked is not None:
                routed.append(checked)
        if not routed or not self._record_intents(routed):
            return
        fresh = self._fresh([r for r in routed if self._may_send(r)])
        if not fresh:
            return
        halted_before = self._safety.kill_switch.is_engaged
        if inline:
            self._send_eager(fresh, halted_before)
            return
        sent = self._send(fresh)
        if not halted_before:
            self._cancel_if_killed_meanwhile(sent)
        for r in sent:
            if r.entry is not None:
                continue  # a bracket exit: it cannot fill before its entry, and the group is one order
            self._await_fills(r.order)  # IB may reject it meanwhile: then it keeps no order-rate slot
            if r.order.status is not OrderStatus.REJECTED:
                self._risk.record_submitted(r.order)

    def _check(
        self,
        slot: StrategySlot,
        order: Order,
        earlier: list[_Routed],
        items: Sequence[tuple[StrategySlot, Order]] = (),
    ) -> _Routed | None:
        """Symbol, market hours and the risk check; None when the order stops here (held or refused)."""
        if order.symbol not in self.symbols:
            self._refuse_unsubscribed(slot, order)
            return None
        if self.outside_hours is not OutsideHours.ALLOW and not is_market_open(self._clock.now(fresh=True)):
            if self.outside_hours is OutsideHours.HOLD:
                log.info("market closed: holding order %s until the session opens", order.order_id)
                slot.held.append(order)
                return None
            order.status = OrderStatus.REJECTED
            order.reject_reason = "market closed (outside_hours='reject')"
            self._errors.record(f"order {order.order_id} {order.symbol} rejected: market closed", "order")
            return None
        if self._journal() is None:
            raise JournalError("the engine has no open journal; start() opens it before trading")
        price = self._feed.get_latest_price(order.symbol) or float("nan")
        if order.parent_id:
            entry = next((r for r in earlier if r.slot is slot and r.order.order_id == order.parent_id), None)
            if entry is not None:  # the bracket was checked as one unit with its entry (its worst case)
                return _Routed(slot, order, price, entry.decision, entry=entry)
        exits = [o for s, o in items if s is slot and o.parent_id and o.parent_id == order.order_id]
        account = self._account
        working = self._broker.orders_ib_may_hold()  # also those an IB error code alone "rejected"
        working += [r.order for r in earlier if r.decision.ok]  # not sent yet, but about to be
        decision = self._risk.check(
            order,
            price if math.isfinite(price) else None,
            account.positions,
            account.known_value,
            account.day_start_equity,
            open_orders=working,
            expect_data=self._safety.expect_data(),
            daily_pnl=account.daily_pnl,
            exits=exits,
        )
        return _Routed(slot, order, price, decision)

    def _record_intents(self, routed: list[_Routed]) -> bool:
        """Journal every routed order's intent, durably, in one transaction (nothing is lost); False if the
        journal failed (then none is sent, all are rejected and trading halts)."""
        journal = self._journal()
        try:
            if journal is None:
                raise JournalError("the engine has no open journal; start() opens it before trading")
            refs = journal.record_intents([(r.order, r.slot.name) for r in routed])
            for r, ref in zip(routed, refs, strict=True):
                r.ref = ref
        except JournalError as exc:
            for r in routed:
                r.order.status = OrderStatus.REJECTED
                r.order.reject_reason = f"journal write failed, trading halted: {exc}"
            self._safety.on_journal_failure(exc)
            return False
        return True

    def _may_send(self, r: _Routed) -> bool:
        """Whether a journaled order may go out: False (and REJECTED, journaled) while trading is halted,
        the books are not reconciled, or when the risk check refused it."""
        order, ref, decision = r.order, r.ref, r.decision
        halt = self._safety.refusal(decision)
        if halt is None and not self._reconciled():
            halt = "not sent: the journal and IB are not reconciled yet (retrying)"
        if halt is None:
            halt = self._blocked(r.slot.name, order.symbol)
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
            return False
        if not decision.ok:
            self._broker.reject(order, f"risk check: {decision.reason}", order_ref=ref)
            return False
        return True

    def _cancel_if_killed_meanwhile(self, sent: list[_Routed]) -> None:
        """A kill from another thread (a failed journal write on the writer thread, the console, a signal)
        cancels what IB may hold at once; an order that passed the halt check before it engaged but was not
        yet placed escaped that cancel. Cancel those here, as the kill switch would have."""
        engagement = self._safety.kill_switch.engagement
        if engagement is None:
            return
        for r in sent:
            record = self._broker.tracker.record_for(r.order)
            if record is not None and not record.cancel_requested:
                log.warning("order %s was sent as the kill switch engaged; cancelling it", r.order.order_id)
                self._broker.cancel_order(r.order, reason=f"kill switch: {engagement.reason}")

    def _fresh(self, routed: list[_Routed]) -> list[_Routed]:
        """The orders that may go out: an order object returned again (or twice) is refused alone, the bar's
        other orders still go."""
        fresh: list[_Routed] = []
        seen: set[int] = set()
        for r in routed:
            if r.order.status is OrderStatus.CREATED and id(r.order) not in seen:
                seen.add(id(r.order))
                fresh.append(r)
                continue
            if r.order.status is not OrderStatus.CREATED:  # a twin in this bar keeps the slot it shares
                self._risk.release_reservation(r.order)
            self._errors.record(
                f"order {r.order.order_id} {r.order.symbol}: already sent; return order.copy() to send it again",
                "order",
            )
        return fresh

    def _send(self, routed: list[_Routed]) -> list[_Routed]:
        """Send the orders in one trip to IB's loop thread; returns those placed. The broker returns once
        they are placed: the wait for their fills is ours, so that stop() interrupts it."""
        try:
            placed = self._broker.place_orders([(r.order, r.price, r.ref) for r in routed])
        except CopilotQuantError as exc:
            placed = self._unsent(routed, exc)
        return self._sent(routed, placed)

    def _send_eager(self, routed: list[_Routed], halted_before: bool) -> None:
        """Send the orders from the IB loop thread itself, at once (see :meth:`submit_all`). A kill from
        another thread reads the orders to cancel there and then, so it can miss these as they are placed:
        they are cancelled here once placed, as on the worker (:meth:`_cancel_if_killed_meanwhile`)."""

        def placed(outcome: list[bool]) -> None:
            placed_routed = self._sent(routed, outcome)
            if not halted_before:
                self._cancel_if_killed_meanwhile(placed_routed)
            sent = [r.order for r in placed_routed if r.entry is None]
            if sent:
                self._broker.connection.runtime.start_task(
                    self._confirm_when_answered(sent), "order-rate slots"
                )

        try:
            self._broker.place_orders_eager([(r.order, r.price, r.ref) for r in routed], placed)
        except CopilotQuantError as exc:
            placed(self._unsent(routed, exc))

    async def _confirm_when_answered(self, orders: list[Order]) -> None:
        """The inline counterpart of :meth:`_await_fills` (on the loop, without blocking it): once each order
        is done or its wait (``fill_timeout`` for a market order, ``ack_timeout`` otherwise) is over, the ones
        IB did not reject count for the order-rate limit (a rejected one gives its slot back)."""
        broker = self._broker
        loop = asyncio.get_running_loop()
        deadlines = {
            id(o): loop.time()
            + (broker.fill_timeout if o.order_type is OrderType.MARKET else broker.ack_timeout)
            for o in orders
        }
        waiting = list(orders)
        while waiting and not self._stopping.is_set():
            now = loop.time()
            for order in [o for o in waiting if o.status.is_done or now >= deadlines[id(o)]]:
                waiting.remove(order)
                self._count_sent(order)
            if waiting:
                await asyncio.sleep(_WAIT_SLICE_S / 5)
        for order in waiting:
            self._count_sent(order)

    def _count_sent(self, order: Order) -> None:
        if order.status is not OrderStatus.REJECTED:
            self._risk.record_submitted(order)

    def _unsent(self, routed: list[_Routed], exc: CopilotQuantError) -> list[bool]:
        for r in routed:
            self._errors.record(f"order {r.order.order_id} {r.order.symbol}: {exc}", "order")
        return [False] * len(routed)

    def _sent(self, routed: list[_Routed], placed: list[bool]) -> list[_Routed]:
        for r, ok in zip(routed, placed, strict=True):
            if not ok:
                self._risk.release_reservation(r.order)  # never sent: its order-rate slot is free again
        return [r for r, ok in zip(routed, placed, strict=True) if ok]

    def modify(self, slot: StrategySlot, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
        """``strategy.modify(order, **changes)`` live: checked like a new order (halt, reconciliation, the
        risk limits on the new terms), journaled as an event of the same order, then sent to IB with the
        order's own id (see :meth:`Strategy.modify`)."""
        target = slot.find(order)
        if target is None:
            order_id = order.order_id if isinstance(order, Order) else order
            raise StrategyError(
                f"{slot.name}.modify({order_id!r}): unknown order; this strategy submitted no order with this "
                "id in this run, and none from an earlier run is still working at IB"
            )
        modification = check_modification(target, changes)
        if slot.is_held(target):  # never sent: it is sent with its new terms when the session opens
            modification.apply_to(target)
            return ModifyOutcome.APPLIED
        refusal = modify_refusal(target, modification, cancel_requested=id(target) in slot.cancel_requested)
        if refusal is None:
            refusal = self._modify_refusal(target, modification)
        if refusal is not None:
            log.info("%s.modify(%r) not sent: %s", slot.name, target.order_id, refusal.value)
            return refusal
        return self._send_modification(slot, target, modification)

    def _modify_refusal(self, order: Order, modification: Modification) -> ModifyOutcome | None:
        """NOT_SENT while trading is halted or unreconciled, or when a risk limit refuses the new terms."""
        remaining = modification.quantity - order.filled_quantity
        if remaining <= 1e-9:
            return None  # lowered to what filled: it completes the order, which no limit refuses
        terms = order.copy(
            order_id=order.order_id,
            quantity=remaining,
            limit_price=modification.limit_price,
            stop_price=modification.stop_price,
            time_in_force=modification.time_in_force,
            good_till=modification.good_till,
        )
        price = self._feed.get_latest_price(order.symbol) or float("nan")
        account = self._account
        decision = self._risk.check(
            terms,
            price if math.isfinite(price) else None,
            account.positions,
            account.known_value,
            account.day_start_equity,
            open_orders=[o for o in self._broker.orders_ib_may_hold() if o is not order],
            expect_data=self._safety.expect_data(),
            reserve=False,
            daily_pnl=account.daily_pnl,
        )
        why = self._safety.refusal(decision)
        if why is None and not self._reconciled():
            why = "the journal and IB are not reconciled yet"
        if why is None:
            why = self._blocked(None, order.symbol)
        if why is None and not decision.ok:
            why = f"risk check: {decision.reason}"
        if why is None:
            return None
        log.warning("the modification of order %s was not sent: %s", order.order_id, why)
        return ModifyOutcome.NOT_SENT

    def _send_modification(
        self, slot: StrategySlot, order: Order, modification: Modification
    ) -> ModifyOutcome:
        """Journal the new terms (durable before they are sent), then send them; NOT_SENT (journal restored)
        if they cannot be sent."""
        record = self._broker.tracker.record_for(order)
        ref = record.order_ref if record is not None else ""
        journal = self._journal()
        previous = Modification.of(order)
        change = modification.describe(order)
        try:
            if journal is not None and ref:
                journal.record_modified(ref, _with_terms(order, modification), f"modify requested ({change})")
        except JournalError as exc:
            self._safety.on_journal_failure(exc)
            return ModifyOutcome.NOT_SENT
        if self._broker.modify_order(order, modification):
            log.info("%s modified order %s: %s (sent to IB)", slot.name, order.order_id, change)
            self._await_answer(order)
            return ModifyOutcome.SENT
        if journal is not None and ref:
            try:
                journal.record_modified(ref, _with_terms(order, previous), "modification not sent")
            except JournalError as exc:
                self._safety.on_journal_failure(exc)
        log.warning("the modification of order %s could not be sent to IB", order.order_id)
        return ModifyOutcome.NOT_SENT

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

    def _await_answer(self, order: Order) -> None:
        """Wait (``ack_timeout``, in short slices) for IB to acknowledge or refuse a modification, as for a
        new order's acknowledgement: the next bar's prices then meet the terms IB holds."""
        broker = self._broker
        if broker.connection.runtime.on_loop_thread():
            return  # inline on the loop, IB's answer cannot come while we wait: it comes before the next bar
        deadline = time.monotonic() + broker.ack_timeout
        while not broker.modification_answered(order) and not self._stopping.is_set():
            if time.monotonic() >= deadline:
                return
            time.sleep(0.002)

    def release_held(self, slot: StrategySlot, now: pd.Timestamp) -> None:
        """Send ``slot``'s held orders once the session is open."""
        if slot.held and is_market_open(now):
            held, slot.held = slot.held, []
            self.submit_all([(slot, order) for order in held])


def _with_terms(order: Order, terms: Modification) -> Order:
    """A copy of ``order`` with ``terms`` (what the journal records; the order itself changes when sent)."""
    return order.copy(
        order_id=order.order_id,
        quantity=terms.quantity,
        limit_price=terms.limit_price,
        stop_price=terms.stop_price,
        time_in_force=terms.time_in_force,
        good_till=terms.good_till,
    )
