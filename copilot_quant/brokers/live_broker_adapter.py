"""``LiveBrokerAdapter``: orders through IB behind the backtest's :class:`IBroker` port, with real fills.

What :meth:`LiveBrokerAdapter.execute_order` returns
----------------------------------------------------
The order is placed with IB, then the call waits a bounded time — ``fill_timeout`` seconds for market
orders, ``ack_timeout`` for limit and stop orders (which usually rest) — for IB's executions and their
commission reports. It returns:

* a :class:`Fill` built from the **real executions** so far (total filled quantity, volume-weighted
  average price, IB's commission); a partial fill is returned as such (``fill.fill_quantity <
  order.quantity``, ``order.status == PARTIALLY_FILLED``);
* ``None`` when nothing executed by then: the order was rejected — by IB, or before sending when the
  buying-power pre-check or the connection failed — (``order.status == REJECTED`` with
  ``order.reject_reason``; error callbacks ran), or it is still working (``SUBMITTED``).

An order that is still working keeps being tracked: each later execution becomes one :class:`Fill`
delivered to every callback registered with :meth:`register_fill_callback`. Every execution reaches the
fill callbacks exactly once (deduplicated by IB ``execId``, also across reconnects) — including the ones
already summed into ``execute_order``'s return value, so a caller that uses both must not count twice
(the engine uses the callbacks only).

Threading contract: public methods are synchronous and may be called from any thread except the IB
loop thread; ib_async runs on the connection's loop thread (see :mod:`copilot_quant.brokers.runtime`).
Fill and error callbacks run **on that loop thread**: keep them short and never block in them (hand work
to your own thread or queue, as the engine does). Callbacks are kept by the adapter, not by ib_async, so
they survive reconnects, and IB event handlers are installed once per connection (no duplicates).

Live trading: ``paper_trading=False`` trades real money and must be confirmed, as for the engine and the
CLI: pass ``confirm_live=True`` (or set ``COPILOT_QUANT_CONFIRM_LIVE=yes``). Unconfirmed, :meth:`connect` and
:meth:`execute_order` raise :class:`~copilot_quant.errors.ConfigError` before anything reaches IB.

Short selling policy (:meth:`check_buying_power`): a sell that reduces or closes a long position is always
affordable; the part of a sell that would open or increase a short needs buying power for its notional
plus commission (IB margins shorts similarly). ``allow_short=False`` refuses such sells instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ib_async import IB, RequestError, Trade

from copilot_quant.backtest.costs import PercentCommission, PercentSlippage
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.backtest.orders import Fill, Order, OrderStatus, OrderType
from copilot_quant.brokers.broker_account import BrokerAccountReads
from copilot_quant.brokers.broker_callbacks import (
    BrokerCallbacks,
    CorrectionCallback,
    ErrorCallback,
    FillCallback,
    JournalFailureCallback,
)
from copilot_quant.brokers.config import check_live_confirmed, resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.contracts import ContractBook, round_order_prices
from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.exec_reports import EXEC_CORRECTED, journal_correction, reused_exec_id_message
from copilot_quant.brokers.fill_gate import FillGate
from copilot_quant.brokers.ib_account import IbAccount
from copilot_quant.brokers.ib_contracts import instrument_key
from copilot_quant.brokers.ib_mapping import bracket_links, to_ib_order
from copilot_quant.brokers.ib_modify import send_modification
from copilot_quant.brokers.ib_order_events import IbOrderEvents
from copilot_quant.brokers.order_tracking import OrderTracker, PendingExecution, TrackedOrder
from copilot_quant.brokers.position_watch import PositionWatch
from copilot_quant.errors import BrokerError, JournalError, NotConnectedError
from copilot_quant.journal import BrokerExecution, TradeJournal
from copilot_quant.journal.writer import JournalWriter
from copilot_quant.model.modify import Modification

# EXEC_CORRECTED and the callback types are re-exported: they were defined here
__all__ = [
    "EXEC_CORRECTED",
    "CorrectionCallback",
    "ErrorCallback",
    "FillCallback",
    "JournalFailureCallback",
    "LiveBrokerAdapter",
]

log = logging.getLogger(__name__)


class _Unaffordable(BrokerError):
    """The buying-power pre-check refused an order (it becomes REJECTED with this reason)."""


class LiveBrokerAdapter(BrokerAccountReads, IBroker):
    """IB order execution as an :class:`IBroker` (see the module docstring for the exact contract).

    Args:
        paper_trading, host, port, client_id, use_gateway: as for the data adapter (see
            :mod:`copilot_quant.brokers.config`); a standalone broker adapter connects as ``client_id``.
        commission_rate: rate of the commission *model* (``calculate_commission``, buying-power checks,
            and the estimate used only if IB never reports a commission). Real fills carry IB's commission.
        slippage_rate: rate of the slippage model (``calculate_slippage``).
        enable_position_tracking: also keep a local position book from fills, served by
            ``get_positions`` while the connection is down (IB's positions are used whenever connected).
        connection: share an :class:`IBConnection` (the engine does); it is then not closed here.
        fill_timeout / ack_timeout: seconds ``execute_order`` waits for market / limit-and-stop orders.
        commission_timeout: seconds to wait for IB's commission report before estimating it.
        allow_short: whether sells may open or increase a short position.
        precheck_buying_power: refuse (REJECTED, error callbacks) an order that :meth:`check_buying_power`
            finds unaffordable at ``current_price`` before sending it to IB.
        position_sync_timeout: seconds ``execute_order`` waits for IB's position update after a fill.
        confirm_live: required (or ``COPILOT_QUANT_CONFIRM_LIVE=yes``) to trade with
            ``paper_trading=False``; without it ``connect`` and ``execute_order`` raise ``ConfigError``.
    """

    def __init__(  # noqa: PLR0917 - the guide's positional signature
        self,
        paper_trading: bool = True,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        use_gateway: bool = False,
        commission_rate: float = 0.001,
        slippage_rate: float = 0.0005,
        enable_position_tracking: bool = True,
        *,
        connection: IBConnection | None = None,
        fill_timeout: float = 10.0,
        ack_timeout: float = 2.0,
        commission_timeout: float = 3.0,
        allow_short: bool = True,
        auto_reconnect: bool = True,
        position_sync_timeout: float = 2.0,
        precheck_buying_power: bool = True,
        confirm_live: bool = False,
    ) -> None:
        if connection is None:
            settings = resolve_connection(paper_trading, host, port, client_id, use_gateway)
            connection = IBConnection(settings, auto_reconnect=auto_reconnect, name="copilot-quant-broker")
            self._owns_connection = True
        else:
            self._owns_connection = False
        self._conn = connection
        self.paper_trading = paper_trading
        self.confirm_live = bool(confirm_live)
        self.commission_model = PercentCommission(commission_rate)
        self.slippage_model = PercentSlippage(slippage_rate)
        self.fill_timeout = float(fill_timeout)
        self.ack_timeout = float(ack_timeout)
        self.commission_timeout = float(commission_timeout)
        self.allow_short = allow_short
        self.position_sync_timeout = float(position_sync_timeout)
        self.precheck_buying_power = precheck_buying_power
        self.tracker = OrderTracker()
        self._callbacks = BrokerCallbacks()
        self._contracts = ContractBook(self._conn)
        self._account = IbAccount(self._conn, self.calculate_commission)
        #: Expected IB positions after the fills delivered, and the local fill book (position_watch.py).
        self._positions = PositionWatch(self._account, track_local=enable_position_tracking)
        self._handlers_on: IB | None = None  # the IB object our handlers are on
        #: The durable journal (set by the engine). With one, every order carries its journal ref as IB
        #: ``orderRef``, every status/fill/commission/error is journaled, and a fill reaches the callbacks
        #: only if the journal did not hold its ``execId`` yet (exactly once across restarts).
        self._journal: TradeJournal | None = None
        #: Runs the journal writes of broker events off the IB loop thread (see copilot_quant.journal.writer).
        self._writer = JournalWriter(self._journal_failed)
        #: IB's order events applied to the tracker (see ib_order_events.py).
        self._events = IbOrderEvents(self.tracker, self._conn, self)
        self._conn.restored += self._events.on_restored
        #: Journal-gated, exactly-once delivery to the fill callbacks (see fill_gate.py).
        self._gate = FillGate(
            lambda: self._conn.runtime,
            self._writer,
            book=self._note_fill,
            emit=self._emit_fill,
            journal_failed=self._journal_failed,
        )

    # ------------------------------------------------------------------ connection
    @property
    def connection(self) -> IBConnection:
        return self._conn

    @property
    def account(self) -> str | None:
        """The IB account orders go to (``IB_PAPER_ACCOUNT`` when set, else the managed account)."""
        return self._conn.account

    def connect(self, timeout: float = 30) -> bool:
        """Connect to TWS/Gateway (no-op when connected). ``False`` if it cannot be reached.

        Raises :class:`~copilot_quant.errors.ConfigError`, before touching the socket, for unconfirmed live
        trading (see the module docstring), and after the handshake for a paper/live account mismatch.
        """
        self._check_live_confirmed()
        ok = self._conn.connect(timeout)
        if ok:
            self._install_handlers()
        return ok

    @property
    def trades_live(self) -> bool:
        """Whether orders go to a real-money account: ``paper_trading=False`` here or on the connection."""
        return not (self.paper_trading and self._conn.settings.paper_trading)

    def _check_live_confirmed(self) -> None:
        check_live_confirmed(
            not self.trades_live, self.confirm_live, "LiveBrokerAdapter(paper_trading=False)"
        )

    def _install_handlers(self) -> None:
        current = self._conn._ib
        if current is not None and self._handlers_on is current:
            return

        def install() -> None:
            ib = self._conn.ib
            if self._handlers_on is ib:
                return  # once per IB object: reconnects reuse it, so handlers are never doubled
            ib.orderStatusEvent += self._events.on_order_status
            ib.execDetailsEvent += self._events.on_exec_details
            ib.commissionReportEvent += self._events.on_commission
            ib.errorEvent += self._events.on_error
            self._handlers_on = ib

        self._conn.call(install)

    def disconnect(self) -> None:
        """Finish the pending journal writes; close the socket if this adapter owns it (working orders stay
        working at IB)."""
        self._writer.close()
        if self._owns_connection:
            self._conn.disconnect()
            self._handlers_on = None

    def is_connected(self) -> bool:
        return self._conn.is_connected()

    def __enter__(self) -> LiveBrokerAdapter:
        if not self.connect():
            raise NotConnectedError(f"could not connect to {self._conn.settings.describe()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ callbacks
    @property
    def journal(self) -> TradeJournal | None:
        """The trade journal broker events are recorded in (the engine attaches its own), or ``None``."""
        return self._journal

    @journal.setter
    def journal(self, journal: TradeJournal | None) -> None:
        if journal is not None and not journal.closed:
            journal.preload_fill_ids()  # here, so the IB loop thread never reads the disk for them
        self._journal = journal

    def register_fill_callback(self, callback: FillCallback) -> None:
        """``callback(fill)`` once per real execution (runs on the IB loop thread; must not block)."""
        self._callbacks.fill.append(callback)

    def register_error_callback(self, callback: ErrorCallback) -> None:
        """``callback(order_record, error_msg)`` on every rejection or order error (IB loop thread)."""
        self._callbacks.error.append(callback)

    def register_correction_callback(self, callback: CorrectionCallback) -> None:
        """``callback(correction)`` when IB corrects an execution already delivered as a fill (IB loop
        thread). The fill callbacks never see a correction: this is the only report of the signed
        difference (:class:`~copilot_quant.brokers.exec_corrections.ExecutionCorrection`)."""
        self._callbacks.correction.append(callback)

    def register_journal_failure_callback(self, callback: JournalFailureCallback) -> None:
        """``callback(error)`` when a journal write fails (IB loop or journal writer thread): the engine halts
        trading."""
        self._callbacks.journal_failure.append(callback)

    def _journal_failed(self, error: JournalError) -> None:
        self._callbacks.journal_failed(error)

    def _journal_write(self, write: Callable[[TradeJournal], Any]) -> None:
        """Journal one broker event on the writer thread (in order); a failure is reported (trading halts),
        never raised into ib_async. From any thread but the IB loop, waits until it is written."""
        journal = self.journal
        if journal is None:
            return
        self._writer.submit(journal, write)
        if not self._conn.runtime.in_loop_thread():
            self._writer.flush()

    def flush_journal(self, timeout: float = 10.0) -> bool:
        """Wait until every broker event handed to the journal so far is written; False on timeout."""
        return self._writer.flush(timeout)

    def _note_fill(self, fill: Fill) -> None:
        """Book ``fill`` into the expected and local positions (loop thread, as IB reports it)."""
        self._positions.note_fill(fill, on_loop=self._handlers_on is not None)

    def _emit_fill(self, fill: Fill) -> None:
        self._callbacks.fill_arrived(fill)

    def _emit_error(self, record: TrackedOrder, message: str) -> None:
        record.errors.append(message)
        self._callbacks.order_error(record, message)

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
        placing error) is REJECTED with the reason, the others still go.
        """
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
            return [False] * len(orders)
        self._install_handlers()
        records = [(self.tracker.add(order, ref), price) for order, price, ref in orders]
        links = bracket_links([order for order, _, _ in orders])

        async def place_all() -> list[BaseException | None]:
            outcomes: list[BaseException | None] = []
            placed: dict[str, int] = {}  # a bracket entry's order id -> its IB order id
            for (record, price), (parent, transmit) in zip(records, links, strict=True):
                check_price = float(price) if self.precheck_buying_power and parent is None else math.nan
                try:
                    parent_ib_id = 0
                    if (
                        parent is not None
                    ):  # an exit: its entry went out before it (untransmitted if just now)
                        parent_ib_id = placed.get(parent) or self._working_ib_id(parent)
                        if not parent_ib_id:
                            raise BrokerError(f"its bracket entry {parent} was not placed")
                    await self._place(record, check_price, parent_ib_id=parent_ib_id, transmit=transmit)
                    placed[str(record.order.order_id)] = record.ib_order_id
                    outcomes.append(None)
                except (_Unaffordable, BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
                    outcomes.append(exc)
            return outcomes

        try:
            outcomes = self._conn.run(place_all(), timeout=15)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            # Those placed before the failure went out (their status says so); the rest did not.
            outcomes = [exc if r.status is OrderStatus.CREATED else None for r, _ in records]
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
        """Check buying power (at a finite ``check_price``) and place the order, in one trip to the loop.

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
        ib = self._conn.ib
        if math.isfinite(check_price) and check_price > 0:
            refusal = await self._account.refusal_async(
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
            ib_order = next(
                (t.order for t in self._conn.ib.trades() if t.order.orderId == ib_order_id and ib_order_id),
                None,
            )
            self.tracker.bind(record, ib_order_id, ib_order)
            if perm_id:
                self.tracker.find(ib_order_id, perm_id)

        self._conn.call(bind)
        return record

    def cancel_order(self, order: Order | str, *, reason: str = "") -> bool:
        """Ask IB to cancel a working order; ``True`` if the request was sent. The outcome arrives as status.

        ``reason`` becomes the order's ``reject_reason`` (and the journal's) once IB confirms the cancel.
        If IB executed the order before the request reached it, IB refuses the cancel (reported as an
        error, journaled) and the order ends ``FILLED`` as its executions say, not cancelled.
        """
        order_id = order if isinstance(order, str) else str(order.order_id)
        # ids can repeat (an adopted order, an explicit id): an Order object cancels that very order
        record = self.tracker.get(order_id) if isinstance(order, str) else self.tracker.record_for(order)
        if record is None or record.ib_order is None or record.lost:
            return False  # never sent, or lost: its old order id may now be another order's
        if record.is_done and not record.may_be_at_ib:
            return False  # finished, and IB said so itself
        if self.tracker.find(ib_order_id=record.ib_order_id) is not record:
            # IB gave this order id to another order (a gateway reset): cancelling would hit that one
            self._events.mark_lost(record, f"IB reuses its order id {record.ib_order_id} for another order")
            return False
        record.cancel_requested = True
        if reason:
            record.cancel_reason = reason
        try:
            self._conn.call(self._conn.ib.cancelOrder, record.ib_order)
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.warning("cancel of %s failed: %s", order_id, exc)
            return False
        return True

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
            return bool(self._conn.run(sent, timeout=15))
        except (BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
            log.warning("the modification of order %s could not be sent: %s", order.order_id, exc)
            return False

    def modification_answered(self, order: Order) -> bool:
        """Whether IB has answered ``order``'s last modification (acknowledged or refused it)."""
        record = self.tracker.record_for(order)
        return record is None or record.modifying is None or record.is_done

    def get_open_orders(self) -> list[Order]:
        """Orders sent through this adapter that can still fill."""
        return [r.order for r in self.tracker.open_records()]

    def orders_ib_may_hold(self) -> list[Order]:
        """Every order IB may still hold: the open ones, and those made REJECTED/CANCELLED by an IB error
        code alone (IB did not report them finished itself; such an order can still fill)."""
        return [r.order for r in self.tracker.reachable_records()]

    def cancel_all_orders(self, reason: str = "") -> int:
        """Ask IB to cancel every order it may still hold (:meth:`orders_ib_may_hold`): what a kill switch
        must do. Returns how many cancel requests were sent."""
        sent = 0
        records = self.tracker.reachable_records()
        # A bracket goes whole: cancelling an entry that filled nothing cancels its exits at IB with it.
        unfilled_entries = {str(r.order.order_id) for r in records if r.order.filled_quantity <= 0}
        for record in records:
            if record.order.parent_id in unfilled_entries:
                record.cancel_requested = True
                record.cancel_reason = reason or record.cancel_reason
                continue
            if self.cancel_order(record.order, reason=reason):
                sent += 1
        return sent

    def wait_for_fills(self, order: Order, timeout: float) -> bool:
        """Block up to ``timeout`` s until ``order`` is done and all its fills are reported."""
        record = self.tracker.record_for(order)
        return record is not None and self.tracker.wait(record, timeout)

    # ------------------------------------------------------------------ IB events (loop thread)
    def _report_correction(self, record: TrackedOrder, correction: ExecutionCorrection) -> None:
        """IB corrected a delivered execution: book the difference, alert, and tell the correction
        callbacks (the fill callbacks never see it). The journal gets the alert and, when shares were
        added, a fill of the added shares under the correction's execId (it holds no negative fills)."""
        message = correction.describe()
        log.error("%s", message)
        self._positions.correct(correction)
        journal_correction(self._journal_write, record, correction)
        self._callbacks.corrected(correction)
        self._emit_error(record, message)

    def _settle(self, record: TrackedOrder, exec_id: str, commission: float) -> None:
        """A complete execution (with its commission): book it, journal it, then deliver it (loop thread).

        Delivery to the fill callbacks waits for the journal's commit, which runs on the writer thread,
        so the loop goes on decoding IB's messages meanwhile; the callbacks still run on the loop thread.
        """
        fill = self.tracker.settle(record, exec_id, commission)
        if fill is None:
            return
        journal = self.journal
        self._report_reused_exec_id(record, exec_id, journal)
        self._gate.pass_fill(fill, exec_id, record.order_ref, journal)

    def _report_reused_exec_id(
        self, record: TrackedOrder, exec_id: str, journal: TradeJournal | None
    ) -> None:
        """IB never reuses an execution id. One already reported (or journaled) for another order is still a
        fill of this order and is delivered, never dropped; the error callbacks hear of it (the engine
        counts it) and the journal records an alert with the fill."""
        message = reused_exec_id_message(self.tracker, record, exec_id, journal)
        if message is not None:
            self._callbacks.order_error(record, message)

    def flush_fills(self, timeout: float = 10.0) -> bool:
        """Wait until every execution settled so far is journaled and has reached the fill callbacks.

        Cheap when nothing is in flight. The engine calls it before ``on_data`` so that the strategy has
        been told about every fill its account view (IB's positions) already includes. Not from the loop.
        """
        return self._gate.flush(timeout)

    def deliver_execution(self, record: TrackedOrder, execution: BrokerExecution) -> bool:
        """Process an execution found by reconciliation for a tracked order like a live one (journal-gated).

        Returns True: the adapter owns it (delivered now, earlier, or once its commission arrives).
        """
        exec_id = execution.exec_id
        pending = PendingExecution(exec_id, float(execution.quantity), float(execution.price), execution.time)
        commission = execution.commission
        if commission is None:
            commission = self.calculate_commission(pending.price, pending.shares)

        def run() -> None:
            if self.tracker.seen(exec_id, record) or exec_id in record.pending:
                return
            if self.tracker.add_execution(record, pending):
                self._settle(record, exec_id, float(commission))

        self._conn.call(run)
        return True

    def __repr__(self) -> str:
        return f"LiveBrokerAdapter({self._conn.settings.describe()}, state={self._conn.state.value})"
