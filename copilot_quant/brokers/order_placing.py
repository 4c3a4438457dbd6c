"""The broker adapter's order placing: :meth:`~OrderPlacing.execute_order`, :meth:`~OrderPlacing.place_orders`
(a bracket in one trip), the buying-power pre-check, refusals, modifications, and adopting orders a
previous run left working.

Part of :class:`~copilot_quant.brokers.live_broker_adapter.LiveBrokerAdapter` (a mixin, so that the guide's
methods stay on the adapter; see its module docstring for what ``execute_order`` returns). Cancelling and the
order reads are in :mod:`copilot_quant.brokers.order_cancels`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ib_async import RequestError, Trade

from copilot_quant.backtest.orders import Fill, Order, OrderStatus, OrderType
from copilot_quant.brokers.broker_callbacks import BrokerCallbacks
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.contracts import ContractBook, round_order_prices
from copilot_quant.brokers.ib_account import IbAccount
from copilot_quant.brokers.ib_contracts import contract_multiplier, instrument_key
from copilot_quant.brokers.ib_mapping import bracket_links, to_ib_order
from copilot_quant.brokers.ib_modify import send_modification
from copilot_quant.brokers.ib_order_events import IbOrderEvents
from copilot_quant.brokers.order_tracking import OrderTracker, TrackedOrder
from copilot_quant.brokers.position_watch import PositionWatch
from copilot_quant.errors import BrokerError
from copilot_quant.journal import TradeJournal
from copilot_quant.model.modify import Modification

__all__ = ["OrderPlacing"]

log = logging.getLogger(
    "copilot_quant.brokers.live_broker_adapter"
)  # the adapter's logger, as before the split


class _Unaffordable(BrokerError):
    """The buying-power pre-check refused an order (it becomes REJECTED with this reason)."""


class OrderPlacing:
    """Placing and modifying orders, for the broker adapter (which sets the attributes below)."""

    _conn: IBConnection
    tracker: OrderTracker
    _callbacks: BrokerCallbacks
    _contracts: ContractBook
    _account: IbAccount
    _positions: PositionWatch
    _events: IbOrderEvents
    allow_short: bool
    precheck_buying_power: bool
    fill_timeout: float
    ack_timeout: float
    position_sync_timeout: float

    if TYPE_CHECKING:  # the adapter's own, which it defines

        def _check_live_confirmed(self) -> None: ...
        def _install_handlers(self) -> None: ...
        def _journal_write(self, write: Callable[[TradeJournal], Any]) -> None: ...
        def _emit_error(self, record: TrackedOrder, message: str) -> None: ...

    def _reject(
        self,
        order: Order,
        reason: str,
        record: TrackedOrder | None = None,
        order_ref: str = "",
        *,
        report: bool = True,
    ) -> None:
        record = record or self.tracker.add(order, order_ref)
        self.tracker.set_status(record, OrderStatus.REJECTED, reason=reason)
        if record.order_ref:
            ref = record.order_ref
            self._journal_write(lambda j: j.record_rejected(ref, reason))
        if not report:
            record.errors.append(reason)
            return
        # One line per rejection: when an engine listens for errors it logs the rejection itself.
        log.log(
            logging.DEBUG if self._callbacks.error else logging.WARNING,
            "order %s %s %g %s rejected: %s",
            order.order_id,
            order.side,
            order.quantity,
            order.symbol,
            reason,
        )
        self._emit_error(record, reason)

    def reject(self, order: Order, reason: str, *, order_ref: str = "", report: bool = True) -> None:
        """Refuse ``order`` without sending it (e.g. a risk limit): REJECTED with ``reason``, journaled.

        ``report=True`` also logs a WARNING and runs the error callbacks. ``report=False`` is for a caller that
        reports the refusal itself (the engine, for orders refused while trading is halted).
        """
        self._reject(order, reason, order_ref=order_ref, report=report)

    # ------------------------------------------------------------------ orders
    def execute_order(
        self,
        order: Order,
        current_price: float,
        timestamp: datetime,
        *,
        order_ref: str = "",
        wait: float | None = None,
    ) -> Fill | None:
        """Send ``order`` to IB and return the real fill so far, or ``None`` (see the module docstring).

        ``order_ref``: the journal's ref for the order (from ``journal.record_intent``), sent as IB's
        ``orderRef`` so that the order is recognised at the broker after a crash or a reconnect.
        ``wait``: seconds to wait for fills instead of ``fill_timeout``/``ack_timeout`` (the engine passes 0
        and waits itself, so that a stop interrupts the wait).
        Unconfirmed live trading raises :class:`~copilot_quant.errors.ConfigError` (nothing is sent).
        """
        self._check_live_confirmed()
        if order.status is not OrderStatus.CREATED:
            raise BrokerError(
                f"order {order.order_id} was already sent (status {order.status}); use order.copy() to resend it"
            )
        if not self._conn.is_connected():
            self._reject(order, "not connected to IB; the order was not sent", order_ref=order_ref)
            return None
        self._install_handlers()
        parent_ib_id = self._working_ib_id(order.parent_id) if order.parent_id else 0
        if order.parent_id and not parent_ib_id:
            self._reject(
                order,
                f"bracket exit of {order.parent_id}: its entry is not working at IB; send a bracket's orders "
                "together (place_orders, or return them from a strategy)",
                order_ref=order_ref,
            )
            return None
        record = self.tracker.add(order, order_ref)
        check_price = float(current_price) if self.precheck_buying_power and not parent_ib_id else math.nan
        try:
            held_before = self._conn.run(
                self._place(record, check_price, parent_ib_id=parent_ib_id), timeout=15
            )
        except _Unaffordable as exc:
            self._reject(order, str(exc), record)
            return None
        except (BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
            self._reject(order, f"could not place the order: {exc}", record)
            return None
        if wait is None:
            wait = self.fill_timeout if order.order_type == OrderType.MARKET else self.ack_timeout
        self.tracker.wait(record, wait, until_settled=True)
        if wait > 0 and record.status is OrderStatus.SUBMITTED and order.order_type == OrderType.MARKET:
            log.info(
                "market order %s still working after %.1fs; later fills go to callbacks", order.order_id, wait
            )
        fill = record.aggregate_fill()
        if fill is not None:
            self._positions.wait_for(
                order.symbol, held_before + fill.signed_quantity, self.position_sync_timeout
            )
        return fill

    def place_orders(self, orders: Sequence[tuple[Order, float, str]]) -> list[bool]:
        """Send several ``(order, current_price, order_ref)`` in one trip to the loop thread, in order, and
        return at once (no wait for fills): ``execute_order(..., wait=0)`` for each, without one
        cross-thread round trip per order. True for each order placed; one refused (buying power, a
        placing error) is REJECTED with the reason, the others still go. Not from the loop thread (see
        :meth:`place_orders_eager`).
        """
        records = self._placing(orders)
        if records is None:
            return [False] * len(orders)
        try:
            outcomes = self._conn.run(self._place_all(records), timeout=15)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            outcomes = self._failed_outcomes(records, exc)
        return self._placed(records, outcomes)

    def place_orders_eager(
        self, orders: Sequence[tuple[Order, float, str]], then: Callable[[list[bool]], Any]
    ) -> bool:
        """:meth:`place_orders` from the IB loop thread itself, where nothing may wait: the orders are
        placed at once (``placeOrder`` is on the wire when this returns) unless a step has to wait for IB
        (the first order of a contract not qualified yet), and then go on placing on the loop in order.
        ``then(placed)`` runs (on the loop thread) with what :meth:`place_orders` would return, as soon as
        it is known; True if that was before this returned."""
        records = self._placing(orders)
        if records is None:
            then([False] * len(orders))
            return True

        def finish(outcome: Callable[[], list[BaseException | None]]) -> None:
            try:
                outcomes = outcome()
            except (BrokerError, TimeoutError, ConnectionError) as exc:
                outcomes = self._failed_outcomes(records, exc)
            then(self._placed(records, outcomes))

        # the task, if placing has to wait, ends on the loop thread: so does finish
        return self._conn.runtime.drive_eager(self._place_all(records), finish)

    def prepare_contracts(self, symbols: Sequence[str], timeout: float = 30.0) -> None:
        """Look up (qualify) the contracts and price rules of ``symbols`` now, so that the first order for
        each is placed without a round trip to IB — at once even from the loop thread
        (:meth:`place_orders_eager`). A symbol IB does not know is left for its first order to report."""

        async def prepare() -> None:
            for symbol in symbols:
                try:
                    await self._contracts.price_rule(await self._contracts.contract(symbol))
                except (BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
                    log.debug("no contract for %s yet: %s", symbol, exc)

        self._conn.run(prepare(), timeout=timeout)

    def _placing(self, orders: Sequence[tuple[Order, float, str]]) -> list[tuple[TrackedOrder, float]] | None:
        """Check ``orders`` and track them; None (each REJECTED) when not connected."""
        self._check_live_confirmed()
        if len({id(order) for order, _, _ in orders}) != len(orders):
            raise BrokerError("place_orders() got the same order twice; send each Order object once")
        for order, _, _ in orders:
            if order.status is not OrderStatus.CREATED:
                raise BrokerError(
                    f"order {order.order_id} was already sent (status {order.status}); "
                    "use order.copy() to resend it"
                )
        if not self._conn.is_connected():
            for order, _, ref in orders:
                self._reject(order, "not connected to IB; the order was not sent", order_ref=ref)
            return None
        self._install_handlers()
        return [(self.tracker.add(order, ref), price) for order, price, ref in orders]

    async def _place_all(self, records: list[tuple[TrackedOrder, float]]) -> list[BaseException | None]:
        """Place each tracked order in turn on the loop (a bracket's exits after their entry)."""
        links = bracket_links([record.order for record, _ in records])
        outcomes: list[BaseException | None] = []
        placed: dict[str, int] = {}  # a bracket entry's order id -> its IB order id
        for (record, price), (parent, transmit) in zip(records, links, strict=True):
            check_price = float(price) if self.precheck_buying_power and parent is None else math.nan
            try:
                parent_ib_id = 0
                if parent is not None:  # an exit: its entry went out before it (untransmitted if just now)
                    parent_ib_id = placed.get(parent) or self._working_ib_id(parent)
                    if not parent_ib_id:
                        raise BrokerError(f"its bracket entry {parent} was not placed")
                await self._place(record, check_price, parent_ib_id=parent_ib_id, transmit=transmit)
                placed[str(record.order.order_id)] = record.ib_order_id
                outcomes.append(None)
            except (_Unaffordable, BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
                outcomes.append(exc)
        return outcomes

    @staticmethod
    def _failed_outcomes(
        records: list[tuple[TrackedOrder, float]], exc: BaseException
    ) -> list[BaseException | None]:
        # Those placed before the failure went out (their status says so); the rest did not.
        return [exc if r.status is OrderStatus.CREATED else None for r, _ in records]

    def _placed(
        self, records: list[tuple[TrackedOrder, float]], outcomes: list[BaseException | None]
    ) -> list[bool]:
        """Reject the orders that were not placed, with the reason; True for each one placed."""
        placed = []
        for (record, _), outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, _Unaffordable):
                self._reject(record.order, str(outcome), record)
            elif outcome is not None:
                self._reject(record.order, f"could not place the order: {outcome}", record)
            placed.append(outcome is None)
        return placed

    def _working_ib_id(self, order_id: str) -> int:
        """IB's order id of our order ``order_id`` sent earlier and not finished at IB (0: none)."""
        record = self.tracker.get(order_id)
        if record is None or record.lost or (record.is_done and not record.may_be_at_ib):
            return 0
        return record.ib_order_id

    async def _place(
        self, record: TrackedOrder, check_price: float, *, parent_ib_id: int = 0, transmit: bool = True
    ) -> float:
        """Check buying power (at a finite ``check_price``) and place the order, in one trip to the loop;
        a placed order reserves what the check counted for it (:mod:`copilot_quant.brokers.buying_power`).

        ``parent_ib_id``/``transmit``: IB's attached-order fields for a bracket (the entry goes with
        ``transmit=False``, its exits name it as ``parentId``; the last exit transmits the group).
        Returns the IB position held just before, so that the caller can wait for IB's update.
        """
        contract = await self._contracts.contract(record.order.symbol)
        routed = instrument_key(contract)
        if contract.secType == "FUT" and routed != record.order.symbol:
            # a continuous future (MES) trades its contract of the day, as in a backtest: the order, its
            # fills and the position are that contract's; routed_from keeps what the strategy wrote
            record.order.routed_from, record.order.symbol = record.order.symbol, routed
        record.multiplier = contract_multiplier(contract)  # its fills' notional is in money, not points
        ib = self._conn.ib
        reserve = 0.0
        if math.isfinite(check_price) and check_price > 0:
            refusal, reserve = await self._account.check_async(
                record.order, check_price, allow_short=self.allow_short
            )
            if refusal is not None:
                raise _Unaffordable(refusal)
        held_before = self._account.read_position(record.order.symbol)
        ib_order = to_ib_order(record.order, self._conn.account)
        for note in round_order_prices(ib_order, await self._contracts.price_rule(contract)):
            record.notes.append(note)
            log.info("order %s: %s", record.order.order_id, note)
        if record.order_ref:
            ib_order.orderRef = record.order_ref
        ib_order.parentId = parent_ib_id
        ib_order.transmit = transmit
        trade: Trade = ib.placeOrder(contract, ib_order)
        self._account.commitments.reserve(record, reserve)  # until IB's account values include it
        # The message is on the wire: a later modification of this order (same id) must transmit at once.
        trade.order.transmit = True
        displaced = self.tracker.bind(record, trade.order.orderId, trade.order)
        if displaced is not None:
            self._events.mark_lost(
                displaced,
                f"IB gave its order id {trade.order.orderId} to a new order: IB no longer knows it "
                "(lost in a gateway reset)",
            )
        self.tracker.set_status(record, OrderStatus.SUBMITTED)
        if record.order_ref:
            ref, order_id, perm = record.order_ref, trade.order.orderId, trade.order.permId or None
            self._journal_write(lambda j: j.record_submitted(ref, order_id, perm))
        return held_before

    def adopt(self, order: Order, order_ref: str, ib_order_id: int, perm_id: int = 0) -> TrackedOrder:
        """Track a working order sent by an earlier run (found at the broker by ``order_ref``).

        Its later status reports and executions are then handled like those of orders sent now; it is
        never sent again. Executions it already had are the journal's business (reconciliation).
        """
        self._install_handlers()
        record = self.tracker.find(ib_order_id, perm_id, order_ref)
        if record is not None:
            return record
        record = self.tracker.add(order, order_ref)

        def bind() -> None:
            trade = next(
                (t for t in self._conn.ib.trades() if t.order.orderId == ib_order_id and ib_order_id), None
            )
            if trade is not None:
                record.multiplier = contract_multiplier(trade.contract)
            self.tracker.bind(record, ib_order_id, trade.order if trade is not None else None)
            if perm_id:
                self.tracker.find(ib_order_id, perm_id)

        self._conn.call(bind)
        return record

    def modify_order(self, order: Order, modification: Modification) -> bool:
        """Send ``order``'s new terms to IB — ``placeOrder`` with its own orderId (IB's modify); True if sent.

        The order has the new terms from then on; IB acknowledges them, or refuses them (104: it filled
        meanwhile), and then the order's earlier terms come back and the error callbacks hear of it. False,
        with the order unchanged, when it was never sent, is lost, finished, or the connection is down.
        """
        record = self.tracker.record_for(order)
        if record is None or record.ib_order is None or record.lost or record.is_done:
            return False
        if not self._conn.is_connected():
            return False
        try:
            sent = send_modification(self._conn.ib, self._contracts, record, modification, self._conn.account)
            runtime = self._conn.runtime
            if runtime.on_loop_thread():  # a strategy's on_data run inline on the loop: nothing may wait
                done = runtime.run_eager(sent)
                return bool(done.result()) if done.done() else True  # else it goes on being sent, in order
            return bool(self._conn.run(sent, timeout=15))
        except (BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
            log.warning("the modification of order %s could not be sent: %s", order.order_id, exc)
            return False

    def modification_answered(self, order: Order) -> bool:
        """Whether IB has answered ``order``'s last modification (acknowledged or refused it)."""
        record = self.tracker.record_for(order)
        return record is None or record.modifying is None or record.is_done
