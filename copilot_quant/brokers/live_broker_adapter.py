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
to your own thread or queue, as the engine does). A fill callback registered ``thread_safe=True`` runs on
the journal writer thread instead, as soon as the fill is journaled (the engine's does). Callbacks are kept by the adapter, not by ib_async, so
they survive reconnects, and IB event handlers are installed once per connection (no duplicates).

Live trading: ``paper_trading=False`` trades real money and must be confirmed, as for the engine and the
CLI: pass ``confirm_live=True`` (or set ``COPILOT_QUANT_CONFIRM_LIVE=yes``). Unconfirmed, :meth:`connect` and
:meth:`execute_order` raise :class:`~copilot_quant.errors.ConfigError` before anything reaches IB.

Short selling policy (:meth:`check_buying_power`): a sell that reduces or closes a long position is always
affordable; the part of a sell that would open or increase a short needs buying power for its notional
plus commission (IB margins shorts similarly). ``allow_short=False`` refuses such sells instead.

The parts (mixins, so that every method stays on the adapter): :mod:`~copilot_quant.brokers.order_placing`
(placing, modifying, adopting, refusing orders), :mod:`~copilot_quant.brokers.order_cancels` (cancels and the
order reads), :mod:`~copilot_quant.brokers.broker_account` (account reads, cost models); this module wires
them, connects, keeps the callbacks and the journal, and settles IB's executions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ib_async import IB

from copilot_quant.backtest.costs import PercentCommission, PercentSlippage
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.backtest.orders import OrderStatus
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
from copilot_quant.brokers.contracts import ContractBook
from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.exec_reports import EXEC_CORRECTED, journal_correction, reused_exec_id_message
from copilot_quant.brokers.fill_gate import FillGate
from copilot_quant.brokers.ib_account import IbAccount
from copilot_quant.brokers.ib_order_events import IbOrderEvents
from copilot_quant.brokers.order_cancels import OrderCancels
from copilot_quant.brokers.order_placing import OrderPlacing
from copilot_quant.brokers.order_tracking import OrderTracker, PendingExecution, TrackedOrder
from copilot_quant.brokers.position_watch import PositionWatch
from copilot_quant.errors import BrokerError, JournalError, NotConnectedError
from copilot_quant.journal import BrokerExecution, TradeJournal
from copilot_quant.journal.writer import JournalWriter

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


class LiveBrokerAdapter(OrderPlacing, OrderCancels, BrokerAccountReads, IBroker):
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
        #: Broker events journaled on the loop thread, handed to the writer once the loop is free.
        self._loop_writes: list[tuple[TradeJournal, Callable[[TradeJournal], Any]]] = []
        #: IB's order events applied to the tracker (see ib_order_events.py).
        self._events = IbOrderEvents(self.tracker, self._conn, self)
        self._conn.restored += self._events.on_restored
        #: Journal-gated, exactly-once delivery to the fill callbacks (see fill_gate.py).
        self._gate = FillGate(
            lambda: self._conn.runtime,
            self._writer,
            # loop thread: ib_async's position cache is consistent there once the handlers are on
            book=lambda fill: self._positions.note_fill(fill, on_loop=self._handlers_on is not None),
            emit=self._callbacks.fill_arrived,
            emit_anywhere=self._callbacks.fill_arrived_anywhere,
            loop_wanted=lambda: bool(self._callbacks.fill),
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
            ib.openOrderEvent += self._events.on_open_order
            ib.execDetailsEvent += self._events.on_exec_details
            ib.commissionReportEvent += self._events.on_commission
            ib.errorEvent += self._events.on_error
            self._handlers_on = ib

        self._conn.call(install)

    def disconnect(self) -> None:
        """Finish the pending journal writes; close the socket if this adapter owns it (working orders stay
        working at IB)."""
        self._hand_over_loop_writes(10.0)
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

    def register_fill_callback(self, callback: FillCallback, *, thread_safe: bool = False) -> None:
        """``callback(fill)`` once per real execution (runs on the IB loop thread; must not block).

        ``thread_safe=True``: the callback may run on any thread, and then runs as soon as the journal
        committed the fill, on the journal writer thread, without the hop back to the loop (a staged fill,
        :attr:`commit_fills_on_loop`: at once, on the loop thread) (the engine's
        does: it only queues the fill for its worker). It must not block either, nor call ib_async.
        """
        (self._callbacks.fill_anywhere if thread_safe else self._callbacks.fill).append(callback)

    @property
    def fills_need_loop(self) -> bool:
        """Whether a fill callback must run on the IB loop thread (one registered without ``thread_safe``):
        then waiting for the fills' delivery from the loop thread itself would wait for itself."""
        return bool(self._callbacks.fill)

    @property
    def commit_fills_on_loop(self) -> bool:
        """Whether fills are delivered on the IB loop thread where they arrive and journaled just after (their
        write staged, see :attr:`FillGate.commit_on_loop <copilot_quant.brokers.fill_gate.FillGate.
        commit_on_loop>`; the engine's inline dispatch turns it on), rather than once the journal writer
        committed them."""
        return self._gate.commit_on_loop

    @commit_fills_on_loop.setter
    def commit_fills_on_loop(self, on: bool) -> None:
        self._gate.commit_on_loop = bool(on)

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
        never raised into ib_async. From any thread but the IB loop, waits until it is written.

        From the loop thread the event is handed to the writer once the loop is done with what it is
        handling now (in order): waking the writer in the middle of it — right after ``placeOrder`` —
        would have it wait for the GIL next to whatever reads the order, for nothing."""
        journal = self.journal
        if journal is None:
            return
        runtime = self._conn.runtime
        if runtime.in_loop_thread():
            self._loop_writes.append((journal, write))
            if len(self._loop_writes) == 1:
                try:
                    runtime.defer(self._submit_loop_writes)
                except BrokerError:  # the loop is going away: hand them over now
                    self._submit_loop_writes()
            return
        self._writer.submit(journal, write)
        self._writer.flush()

    def _submit_loop_writes(self) -> None:
        self._gate.hand_over_staged()  # the fills delivered on the loop whose write no intent took
        writes, self._loop_writes = self._loop_writes, []
        for journal, write in writes:
            self._writer.submit(journal, write)

    def flush_journal(self, timeout: float = 10.0) -> bool:
        """Wait until every broker event handed to the journal so far is written — the fills delivered on
        the loop thread with a staged write included; False on timeout."""
        self._hand_over_loop_writes(timeout)
        return self._writer.flush(timeout)

    def _hand_over_loop_writes(self, timeout: float) -> None:
        if (self._loop_writes or self._gate.staged) and not self._conn.runtime.in_loop_thread():
            try:  # handed to the writer on the loop, in order with what the loop hands it meanwhile
                self._conn.runtime.call(self._submit_loop_writes, timeout=timeout)
            except (BrokerError, TimeoutError):  # the loop is gone: nothing else will hand them over
                self._submit_loop_writes()

    def _emit_error(self, record: TrackedOrder, message: str) -> None:
        record.errors.append(message)
        self._callbacks.order_error(record, message)
        if record.order.parent_id and record.status is OrderStatus.REJECTED:
            self._refuse_bracket(record, message)

    # ------------------------------------------------------------------ a bracket whose exit failed
    def _refuse_bracket(self, failed: TrackedOrder, why: str) -> None:
        """A bracket exit was refused (here, while placing it, or by IB) and its entry filled nothing: refuse
        the bracket whole, as a backtest would never hold an entry without its exits.

        Without this the entry, sent with ``transmit=False``, would wait untransmitted at IB for ever (the
        refused exit was to transmit the group) while the journal showed it submitted. The entry and the
        other exits are cancelled at IB and become REJECTED with the reason: journaled, reported to the error
        callbacks (the engine's errors), and on the strategy's own orders. An entry that has filled keeps
        the exits still protecting it.
        """
        entry = self.tracker.get(str(failed.order.parent_id))
        if entry is None or entry.is_done or entry.fills or entry.pending or entry.order.filled_quantity > 0:
            return
        reason = (
            f"bracket {entry.order.order_id} rejected whole: its exit {failed.order.order_id} could not be "
            f"placed ({why}); the entry and its other exits were cancelled"
        )
        exits = [
            r
            for r in self.tracker.records()
            if r.order.parent_id == failed.order.parent_id and r is not failed and not r.is_done
        ]
        log.error("%s", reason)
        # all refused before IB hears of it (its Cancelled reports must find them so), the entry first: the
        # exits' own reports then find it refused
        for record in (entry, *exits):
            self._reject(record.order, reason, record)
        for record in exits:
            record.cancel_requested, record.cancel_reason = True, reason
        if entry.ib_order is not None:  # IB cancels a cancelled entry's exits with it (held or working)
            self.cancel_order(entry.order, reason=reason)

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
        # IB never reuses an execution id: one already used by another order (tracked or journaled) is still
        # a fill of this order, delivered, never dropped; the error callbacks hear of it (the engine counts it)
        message = reused_exec_id_message(self.tracker, record, exec_id, journal)
        if message is not None:
            self._callbacks.order_error(record, message)
        self._gate.pass_fill(fill, exec_id, record.order_ref, journal)

    @property
    def fills_passed(self) -> int:
        """How many executions were complete (with their commission) and handed on for delivery so far."""
        return self._gate.passed

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
