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

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ib_async import IB, Contract, RequestError, Stock, Trade
from ib_async import Fill as IBFill

from copilot_quant.backtest.costs import PercentCommission, PercentSlippage
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.backtest.orders import Fill, Order, OrderSide, OrderStatus, OrderType, Position
from copilot_quant.brokers.config import check_live_confirmed, resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_mapping import ib_status, to_ib_order
from copilot_quant.brokers.order_tracking import OrderRecord, OrderTracker, PendingExecution
from copilot_quant.errors import BrokerError, JournalError, NotConnectedError
from copilot_quant.journal import BrokerExecution, TradeJournal
from copilot_quant.journal.writer import JournalWriter

__all__ = ["LiveBrokerAdapter"]

log = logging.getLogger(__name__)

#: IB codes that are only warnings for an order (it stays live); see tws-protocol-notes §10.
_WARNING_CODES = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})
_ORDER_CANCELLED = 202
#: IB's answers to a cancel request that came too late or for an order it no longer works (10147 not
#: found, 10148 cannot be cancelled (filled), 161 not in a cancellable state): they are about the request,
#: not the order, whose own status and execution reports decide how it ended.
_CANCEL_REFUSED = frozenset({161, 10147, 10148})

FillCallback = Callable[[Fill], Any]
ErrorCallback = Callable[[OrderRecord, str], Any]
JournalFailureCallback = Callable[[JournalError], Any]


class _Unaffordable(BrokerError):
    """The buying-power pre-check refused an order (it becomes REJECTED with this reason)."""


def _is_warning(code: int) -> bool:
    return code in _WARNING_CODES or 2100 <= code < 2200


def _strip_prefix(message: str) -> str:
    """ib_async logs 'Error 201, reqId 4: text'; keep the text."""
    head, sep, tail = message.partition(": ")
    return tail if sep and head.startswith(("Error", "Warning")) else message


class LiveBrokerAdapter(IBroker):
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
        self.enable_position_tracking = enable_position_tracking
        self.fill_timeout = float(fill_timeout)
        self.ack_timeout = float(ack_timeout)
        self.commission_timeout = float(commission_timeout)
        self.allow_short = allow_short
        self.position_sync_timeout = float(position_sync_timeout)
        self.precheck_buying_power = precheck_buying_power
        self.tracker = OrderTracker()
        self._fill_callbacks: list[FillCallback] = []
        self._error_callbacks: list[ErrorCallback] = []
        self._contracts: dict[str, Contract] = {}
        self._local_positions: dict[str, Position] = {}
        self._lock = threading.Lock()
        self._handlers_on: IB | None = None  # the IB object our handlers are on
        self._conn.restored += self._on_restored
        #: The durable journal (set by the engine). With one, every order carries its journal ref as IB
        #: ``orderRef``, every status/fill/commission/error is journaled, and a fill reaches the callbacks
        #: only if the journal did not hold its ``execId`` yet (exactly once across restarts).
        self._journal: TradeJournal | None = None
        #: Runs the journal writes of broker events off the IB loop thread (see copilot_quant.journal.writer).
        self._writer = JournalWriter(self._journal_failed)
        self._fills_posted = 0  # fills handed to the loop for delivery (written by the writer thread only)
        self._fills_emitted = 0  # … and delivered (written by the loop thread only)
        self._journal_failure_callbacks: list[JournalFailureCallback] = []
        #: IB position each symbol should show once IB has reported the fills emitted so far.
        self._expected_positions: dict[str, float] = {}

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
            ib.orderStatusEvent += self._on_order_status
            ib.execDetailsEvent += self._on_exec_details
            ib.commissionReportEvent += self._on_commission
            ib.errorEvent += self._on_error
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
        self._fill_callbacks.append(callback)

    def register_error_callback(self, callback: ErrorCallback) -> None:
        """``callback(order_record, error_msg)`` on every rejection or order error (IB loop thread)."""
        self._error_callbacks.append(callback)

    def register_journal_failure_callback(self, callback: JournalFailureCallback) -> None:
        """``callback(error)`` when a journal write fails (IB loop or journal writer thread): the engine halts
        trading."""
        self._journal_failure_callbacks.append(callback)

    def _journal_failed(self, error: JournalError) -> None:
        for callback in list(self._journal_failure_callbacks):
            try:
                callback(error)
            except Exception:
                log.exception("journal failure callback %r failed", callback)

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
        if self._handlers_on is not None:  # loop thread: ib_async's position cache is consistent here
            try:
                base = self._expected_positions.get(fill.symbol)
                held = self._read_position(fill.symbol) if base is None else base
                self._expected_positions[fill.symbol] = held + fill.signed_quantity
            except (BrokerError, ConnectionError):
                pass
        if self.enable_position_tracking:
            with self._lock:
                pos = self._local_positions.setdefault(fill.symbol, Position(fill.symbol))
                pos.update_from_fill(fill)

    def _emit_fill(self, fill: Fill) -> None:
        for callback in list(self._fill_callbacks):
            try:
                callback(fill)
            except Exception:
                log.exception("fill callback %r failed", callback)

    def _emit_error(self, record: OrderRecord, message: str) -> None:
        record.errors.append(message)
        for callback in list(self._error_callbacks):
            try:
                callback(record, message)
            except Exception:
                log.exception("error callback %r failed", callback)

    def _reject(
        self,
        order: Order,
        reason: str,
        record: OrderRecord | None = None,
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
        log.warning(
            "order %s %s %g %s rejected: %s", order.order_id, order.side, order.quantity, order.symbol, reason
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
        record = self.tracker.add(order, order_ref)
        check_price = float(current_price) if self.precheck_buying_power else math.nan
        try:
            held_before = self._conn.run(self._place(record, check_price), timeout=15)
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
            self._await_position(order.symbol, held_before + fill.signed_quantity)
        return fill

    def await_positions(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until IB's positions include every fill emitted so far.

        IB sends the position update just after the execution; the engine waits for it before the next
        ``on_data`` so that the strategy's account view includes the fills it was just told about.
        """
        deadline = time.monotonic() + timeout
        ok = True
        for symbol, expected in list(self._expected_positions.items()):
            while abs(self._ib_position(symbol) - expected) > 1e-9:
                if time.monotonic() >= deadline:
                    ok = False
                    break
                time.sleep(0.005)
            if self._expected_positions.get(symbol) == expected:
                self._expected_positions.pop(symbol, None)
        return ok

    def _read_position(self, symbol: str) -> float:
        """IB's stock position in ``symbol`` from ib_async's cache (loop thread)."""
        account = self._conn.account or ""
        return sum(
            float(p.position)
            for p in self._conn.ib.positions(account)
            if p.contract.symbol == symbol and p.contract.secType == "STK"
        )

    def _ib_position(self, symbol: str) -> float:
        try:
            return float(self._conn.call(self._read_position, symbol, timeout=5))
        except (BrokerError, TimeoutError, ConnectionError):
            return 0.0

    def _await_position(self, symbol: str, expected: float) -> None:
        """IB pushes the new position just after the execution; wait briefly so get_positions() shows it."""
        deadline = time.monotonic() + self.position_sync_timeout
        while abs(self._ib_position(symbol) - expected) > 1e-9:
            if time.monotonic() >= deadline:
                log.info("IB has not reported the new %s position yet", symbol)
                return
            time.sleep(0.01)

    async def _place(self, record: OrderRecord, check_price: float) -> float:
        """Check buying power (at a finite ``check_price``) and place the order, in one trip to the loop.

        Returns the IB position held just before, so that the caller can wait for IB's update.
        """
        contract = await self._contract(record.order.symbol)
        ib = self._conn.ib
        if math.isfinite(check_price) and check_price > 0:
            refusal = await self._refusal_async(record.order, check_price)
            if refusal is not None:
                raise _Unaffordable(refusal)
        held_before = self._read_position(record.order.symbol)
        ib_order = to_ib_order(record.order, self._conn.account)
        if record.order_ref:
            ib_order.orderRef = record.order_ref
        trade: Trade = ib.placeOrder(contract, ib_order)
        self.tracker.bind(record, trade.order.orderId, trade.order)
        self.tracker.set_status(record, OrderStatus.SUBMITTED)
        if record.order_ref:
            ref, order_id, perm = record.order_ref, trade.order.orderId, trade.order.permId or None
            self._journal_write(lambda j: j.record_submitted(ref, order_id, perm))
        return held_before

    def adopt(self, order: Order, order_ref: str, ib_order_id: int, perm_id: int = 0) -> OrderRecord:
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

    async def _contract(self, symbol: str) -> Contract:
        contract = self._contracts.get(symbol)
        if contract is None:
            found = await self._conn.ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
            if not found or not isinstance(found[0], Contract):
                raise BrokerError(f"IB knows no US stock {symbol!r}; check the symbol")
            contract = self._contracts[symbol] = found[0]
        return contract

    def cancel_order(self, order: Order | str, *, reason: str = "") -> bool:
        """Ask IB to cancel a working order; ``True`` if the request was sent. The outcome arrives as status.

        ``reason`` becomes the order's ``reject_reason`` (and the journal's) once IB confirms the cancel.
        If IB executed the order before the request reached it, IB refuses the cancel (reported as an
        error, journaled) and the order ends ``FILLED`` as its executions say, not cancelled.
        """
        order_id = order if isinstance(order, str) else str(order.order_id)
        # ids can repeat (an adopted order, an explicit id): an Order object cancels that very order
        record = self.tracker.get(order_id) if isinstance(order, str) else self.tracker.record_for(order)
        if record is None or record.is_done or record.ib_order is None:
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

    def get_open_orders(self) -> list[Order]:
        """Orders sent through this adapter that can still fill."""
        return [r.order for r in self.tracker.open_records()]

    def wait_for_fills(self, order: Order, timeout: float) -> bool:
        """Block up to ``timeout`` s until ``order`` is done and all its fills are reported."""
        record = self.tracker.record_for(order)
        return record is not None and self.tracker.wait(record, timeout)

    # ------------------------------------------------------------------ IB events (loop thread)
    def _record_of(self, trade: Trade) -> OrderRecord | None:
        return self.tracker.find(trade.order.orderId, trade.order.permId, trade.order.orderRef or "")

    def _on_order_status(self, trade: Trade) -> None:
        record = self._record_of(trade)
        if record is None:
            return
        self._apply_status(record, trade)
        if record.order_ref and self.journal is not None:
            st, order, ref = trade.orderStatus, record.order, record.order_ref
            reason = order.reject_reason if record.status.is_done else ""
            avg = float(st.avgFillPrice or 0.0) or None
            self._journal_write(
                lambda j: j.record_status(ref, record.status, float(st.filled or 0), None, avg, reason)
            )

    def _apply_status(self, record: OrderRecord, trade: Trade) -> None:
        st = trade.orderStatus
        status = ib_status(st.status, float(st.filled or 0), float(st.remaining or 0))
        if status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
            # Quantities come from executions (deduplicated); the status only says "done".
            if (
                status is OrderStatus.FILLED
                and not record.pending
                and record.filled_quantity >= record.order.quantity
            ):
                self.tracker.set_status(record, OrderStatus.FILLED, st.status)
            return
        if status is OrderStatus.CANCELLED:
            # ib_async cancels the Trade on an order error *before* emitting errorEvent: the log has the code.
            last = trade.log[-1] if trade.log else None
            code = getattr(last, "errorCode", 0) or 0
            if code in _CANCEL_REFUSED and record.cancel_requested:
                return  # IB refused our cancel (too late): not a cancellation; errorEvent reports it
            if code and not _is_warning(code) and not (code == _ORDER_CANCELLED and record.cancel_requested):
                self._on_error(trade.order.orderId, code, _strip_prefix(last.message if last else ""))
                return
            if record.errors and not record.cancel_requested and not record.fills:
                status = OrderStatus.REJECTED
            reason = (
                record.errors[-1]
                if record.errors
                else ((record.cancel_reason or "cancelled") if record.cancel_requested else "cancelled by IB")
            )
            if (
                self.tracker.set_status(record, status, st.status, reason=reason)
                and status is OrderStatus.CANCELLED
            ):
                log.info("order %s cancelled: %s", record.order.order_id, reason)
            return
        if status is OrderStatus.REJECTED:
            if self.tracker.set_status(record, status, st.status, reason="IB marked the order inactive"):
                self._emit_error(record, "IB marked the order inactive")
            return
        self.tracker.set_status(record, status, st.status)

    def _on_exec_details(self, trade: Trade, fill: IBFill) -> None:
        record = self._record_of(trade)
        if record is None:
            return
        self._note_execution(record, fill)

    def _note_execution(self, record: OrderRecord, fill: IBFill) -> None:
        ex = fill.execution
        pending = PendingExecution(
            exec_id=ex.execId,
            shares=float(ex.shares),
            price=float(ex.price),
            time=ex.time if ex.time and ex.time.tzinfo else datetime.now(UTC),
        )
        if not self.tracker.add_execution(record, pending):
            return
        report = fill.commissionReport
        if report is not None and report.execId == ex.execId and report.commission:
            self._settle(record, ex.execId, float(report.commission))
            return
        loop = asyncio.get_running_loop()
        loop.call_later(self.commission_timeout, self._settle_late, record, ex.execId)

    def _settle_late(self, record: OrderRecord, exec_id: str) -> None:
        pending = record.pending.get(exec_id)
        if pending is None:
            return
        estimate = self.calculate_commission(pending.price, pending.shares)
        log.warning(
            "no IB commission report for execution %s within %.1fs; using the model's estimate %.4f",
            exec_id,
            self.commission_timeout,
            estimate,
        )
        self._settle(record, exec_id, estimate)

    def _settle(self, record: OrderRecord, exec_id: str, commission: float) -> None:
        """A complete execution (with its commission): book it, journal it, then deliver it (loop thread).

        Delivery to the fill callbacks waits for the journal's commit, which runs on the writer thread,
        so the loop goes on decoding IB's messages meanwhile; the callbacks still run on the loop thread.
        """
        fill = self.tracker.settle(record, exec_id, commission)
        if fill is None:
            return
        journal = self.journal
        self._report_reused_exec_id(record, exec_id, journal)
        if journal is None or not record.order_ref:
            self._note_fill(fill)
            self._emit_fill(fill)
            return
        try:
            known = journal.knows_fill(exec_id, record.order_ref)
        except JournalError as exc:
            self._held_back(exec_id, exc)
            return
        if known:
            log.info("execution %s is already in the journal; not delivered again", exec_id)
            return
        self._note_fill(fill)
        ref, side = record.order_ref, record.order.side

        def write(j: TradeJournal) -> bool:
            return j.record_fill(
                ref,
                exec_id,
                fill.symbol,
                side,
                fill.fill_quantity,
                fill.fill_price,
                fill.timestamp,
                fill.commission,
            )

        def written(fresh: bool) -> None:  # writer thread
            if fresh:
                self._fills_posted += 1
                try:
                    self._conn.runtime.call_soon(self._emit_posted_fill, fill)
                except BrokerError:  # the IB loop is gone (shutting down): deliver from here, not never
                    self._emit_posted_fill(fill)
            else:
                log.info("execution %s is already in the journal; not delivered again", exec_id)

        def failed(exc: JournalError) -> None:  # writer thread; on_failure (trading halts) follows
            log.error("execution %s not delivered: the journal could not record it (%s)", exec_id, exc)

        self._writer.submit(journal, write, then=written, on_error=failed)

    def _report_reused_exec_id(self, record: OrderRecord, exec_id: str, journal: TradeJournal | None) -> None:
        """IB never reuses an execution id. One already reported (or journaled) for another order is still a
        fill of this order and is delivered, never dropped; the error callbacks hear of it (the engine
        counts it) and the journal records an alert with the fill."""
        others = [r.order_ref or str(r.order.order_id) for r in self.tracker.other_orders(exec_id, record)]
        if not others and journal is not None and record.order_ref:
            try:
                if journal.knows_fill(exec_id) and not journal.knows_fill(exec_id, record.order_ref):
                    others = ["an earlier order in the journal"]
            except JournalError:
                return  # the journal's failure is reported where the fill is journaled
        if not others:
            return
        message = (
            f"IB reported execution id {exec_id} for this order, but it was already used by "
            f"{', '.join(others)}; delivered as a new fill. IB never reuses execution ids: check that the "
            "gateway and the journal belong to the same account"
        )
        for callback in list(self._error_callbacks):
            try:
                callback(record, message)
            except Exception:
                log.exception("error callback %r failed", callback)

    def _emit_posted_fill(self, fill: Fill) -> None:
        try:
            self._emit_fill(fill)
        finally:
            self._fills_emitted += 1

    def flush_fills(self, timeout: float = 10.0) -> bool:
        """Wait until every execution settled so far is journaled and has reached the fill callbacks.

        Cheap when nothing is in flight. The engine calls it before ``on_data`` so that the strategy has
        been told about every fill its account view (IB's positions) already includes. Not from the loop.
        """
        if self._writer.pending and not self._writer.flush(timeout):
            return False
        if self._fills_posted != self._fills_emitted:
            self._conn.call(lambda: None, timeout=timeout)  # the loop ran every delivery posted before this
        return True

    def _held_back(self, exec_id: str, exc: JournalError) -> None:
        # The journal is the record of what on_fill has seen. A fill it could not record is held back
        # (trading halts now); reconciliation delivers it exactly once when a working journal is back,
        # so a restart never hands the strategy the same execution twice.
        self._journal_failed(exc)
        log.error("execution %s not delivered: the journal could not record it (%s)", exec_id, exc)

    def _on_commission(self, trade: Trade, fill: IBFill, report: Any) -> None:
        record = self._record_of(trade) or self.tracker.record_for_exec(report.execId)
        if record is None:
            return
        if report.execId not in record.pending and not self.tracker.seen(report.execId, record):
            self._note_execution(record, fill)
        self._settle(record, report.execId, float(report.commission or 0.0))
        if record.order_ref and report.commission is not None and math.isfinite(report.commission):
            pnl = report.realizedPNL if report.realizedPNL and math.isfinite(report.realizedPNL) else None
            self._journal_write(
                lambda j: j.record_commission(report.execId, float(report.commission), pnl, record.order_ref)
            )

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        if req_id <= 0 or _is_warning(code):
            return
        record = self.tracker.find(ib_order_id=req_id)
        if record is None or record.is_done:
            return
        text = f"IB error {code}: {message}"
        if record.order_ref:
            ref = record.order_ref
            self._journal_write(lambda j: j.record_error(ref, code, message))
        if code == _ORDER_CANCELLED and record.cancel_requested:
            self.tracker.set_status(
                record, OrderStatus.CANCELLED, reason=record.cancel_reason or "cancelled on request"
            )
            return
        if code in _CANCEL_REFUSED and record.cancel_requested:
            log.info(
                "IB refused to cancel order %s (%s); its status and executions decide how it ends",
                record.order.order_id,
                text,
            )
            return
        status = OrderStatus.REJECTED if not record.fills else OrderStatus.CANCELLED
        self.tracker.set_status(record, status, reason=text)
        if record.order_ref:
            ref = record.order_ref
            self._journal_write(lambda j: j.record_status(ref, status, None, None, None, text))
        self._emit_error(record, text)

    def deliver_execution(self, record: OrderRecord, execution: BrokerExecution) -> bool:
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

    def _on_restored(self, data_lost: bool) -> None:
        """After a reconnect: pick up executions and statuses that happened while we were away."""
        if self._handlers_on is None:
            return
        ib = self._conn.ib
        for fill in ib.fills():
            ex = fill.execution
            record = self.tracker.find(
                ex.orderId if ex.clientId == self._conn.settings.client_id else 0, ex.permId
            )
            if record is None or self.tracker.seen(ex.execId, record):
                continue
            self._note_execution(record, fill)
            if fill.commissionReport and fill.commissionReport.execId == ex.execId:
                self._settle(record, ex.execId, float(fill.commissionReport.commission or 0.0))
        for trade in ib.trades():
            self._on_order_status(trade)

    # ------------------------------------------------------------------ account
    async def _account_value_async(self, tag: str) -> float:
        """An account value from ib_async's cache (kept current by IB), else from an account summary."""
        ib = self._conn.ib
        account = self._conn.account or ""
        for v in ib.accountValues(account):
            if v.tag == tag and v.currency in ("USD", "BASE", ""):
                try:
                    return float(v.value)
                except ValueError:
                    continue
        for v in await ib.accountSummaryAsync(account):
            if v.tag == tag:
                return float(v.value)
        raise BrokerError(f"IB did not report {tag} for account {account}")

    def _account_value(self, tag: str) -> float:
        if not self._conn.is_connected():
            raise NotConnectedError(f"{tag} needs a connection to IB; call connect() first")
        value: float = self._conn.run(self._account_value_async(tag), timeout=10)
        return value

    def get_cash_balance(self) -> float:
        """IB's ``TotalCashValue`` of the account."""
        return self._account_value("TotalCashValue")

    def get_account_value(self) -> float:
        """IB's ``NetLiquidation`` of the account."""
        return self._account_value("NetLiquidation")

    def get_buying_power(self) -> float:
        """IB's ``BuyingPower`` of the account."""
        return self._account_value("BuyingPower")

    def get_positions(self) -> dict[str, Position]:
        """Stock positions in the account as IB reports them, keyed by symbol (quantities not truncated).

        While disconnected, the local fill-based book is served if position tracking is on.
        """
        if not self._conn.is_connected():
            if self.enable_position_tracking:
                with self._lock:
                    return {s: p.snapshot() for s, p in self._local_positions.items() if not p.is_flat}
            raise NotConnectedError("get_positions() needs a connection to IB; call connect() first")

        result: dict[str, Position] = self._conn.call(self._read_positions)
        return result

    def account_snapshot(self) -> tuple[float, float, dict[str, Position]]:
        """``(NetLiquidation, TotalCashValue, positions)`` in one trip to the loop thread: what
        :meth:`get_account_value`, :meth:`get_cash_balance` and :meth:`get_positions` return, for a caller
        that wants all three (the engine, after every fill) without three cross-thread round trips."""
        if not self._conn.is_connected():
            raise NotConnectedError("account_snapshot() needs a connection to IB; call connect() first")

        async def snapshot() -> tuple[float, float, dict[str, Position]]:
            value = await self._account_value_async("NetLiquidation")
            cash = await self._account_value_async("TotalCashValue")
            return value, cash, self._read_positions()

        result: tuple[float, float, dict[str, Position]] = self._conn.run(snapshot(), timeout=10)
        return result

    def _read_positions(self) -> dict[str, Position]:
        """IB's stock positions marked with its portfolio prices (on the loop thread: ib_async's caches)."""
        ib = self._conn.ib
        account = self._conn.account or ""
        marks = {
            item.contract.symbol: item for item in ib.portfolio(account) if item.contract.secType == "STK"
        }
        out: dict[str, Position] = {}
        for p in ib.positions(account):
            if p.contract.secType != "STK" or not p.position:
                continue
            symbol = p.contract.symbol
            pos = Position(symbol, quantity=float(p.position), avg_entry_price=float(p.avgCost))
            item = marks.get(symbol)
            if item is not None and item.marketPrice and item.marketPrice > 0:
                pos.update_unrealized_pnl(float(item.marketPrice))
                pos.realized_pnl = float(item.realizedPNL or 0.0)
            out[symbol] = pos
        return out

    def check_buying_power(self, order: Order, price: float) -> bool:
        """Whether IB's BuyingPower covers ``order`` at ``price`` plus commission (see the short policy)."""
        refusal = self._buying_power_refusal(order, float(price))
        if refusal is not None:
            log.info("%s", refusal)
        return refusal is None

    def _buying_power_refusal(self, order: Order, price: float) -> str | None:
        """Why ``order`` is not affordable at ``price``, or ``None`` when it is."""
        if not self._conn.is_connected():
            return "cannot check buying power: not connected to IB"
        try:
            refusal: str | None = self._conn.run(self._refusal_async(order, price), timeout=10)
        except (BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
            return f"cannot check buying power: {exc}"
        return refusal

    async def _refusal_async(self, order: Order, price: float) -> str | None:
        power = await self._account_value_async("BuyingPower")
        qty = float(order.quantity)
        held = self._read_position(order.symbol)
        if order.side == OrderSide.BUY:
            opening = qty if held >= 0 else max(0.0, qty - abs(held))  # covering a short frees margin
        else:
            opening = max(0.0, qty - max(held, 0.0))
            if opening > 0 and not self.allow_short:
                return f"selling {qty:g} {order.symbol} would open a short position and allow_short=False"
        needed = price * opening + self.calculate_commission(price, qty)
        if needed > power:
            return (
                f"insufficient buying power: {order.side} {qty:g} {order.symbol} at {price:.2f} needs "
                f"{needed:,.2f} including commission but IB BuyingPower is {power:,.2f}; reduce the quantity"
            )
        return None

    # ------------------------------------------------------------------ cost models
    def calculate_commission(self, fill_price: float, quantity: float) -> float:
        """The commission model's estimate (``commission_rate`` × notional); real fills carry IB's."""
        return self.commission_model.commission(fill_price, quantity)

    def calculate_slippage(self, order: Order, market_price: float) -> float:
        """``market_price`` moved against ``order`` by ``slippage_rate`` (limit orders: unchanged)."""
        if order.order_type == OrderType.LIMIT:
            return float(market_price)
        return self.slippage_model.adjust(float(market_price), OrderSide(order.side))

    def __repr__(self) -> str:
        return f"LiveBrokerAdapter({self._conn.settings.describe()}, state={self._conn.state.value})"
