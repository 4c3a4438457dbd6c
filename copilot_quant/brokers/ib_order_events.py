"""IB's order events translated into the order tracker: statuses, error codes, executions, commissions.

Order truth comes from IB's own terminal reports (``Filled``/``Cancelled`` in its orderStatus), never from
an error code alone (see :mod:`copilot_quant.brokers.ib_codes`): an informational code is a note, ``Inactive``
keeps the order open, an execution for an order believed finished reopens it with an alert, an execution
correction replaces the earlier execution, and after a reconnect the orders IB no longer knows are marked
lost. Everything here runs on the IB loop thread (ib_async's event handlers); what must reach the user —
fills, errors, journal writes — goes through the :class:`~copilot_quant.brokers.live_broker_adapter.LiveBrokerAdapter`
that owns this translator.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ib_async import Fill as IBFill
from ib_async import RequestError, Trade, TradeLogEntry

from copilot_quant.backtest.orders import OrderStatus
from copilot_quant.brokers.ib_codes import (
    CANCEL_REFUSED,
    ORDER_CANCELLED,
    is_informational,
    is_warning,
    refuses_modification,
    rejection_reason,
)
from copilot_quant.brokers.ib_mapping import ib_status
from copilot_quant.brokers.order_tracking import OrderTracker, PendingExecution, TrackedOrder

if TYPE_CHECKING:
    from copilot_quant.brokers.connection import IBConnection
    from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter

__all__ = ["IB_FINAL", "ORDER_LOST", "IbOrderEvents"]

log = logging.getLogger(__name__)

#: IB's own order statuses that end an order for certain (ib_async also derives "Cancelled" from error
#: codes; those are told apart by the error code in the trade's log entry).
IB_FINAL = frozenset({"Filled", "Cancelled", "ApiCancelled"})
#: Journal error code of an order IB no longer knows after a reconnect.
ORDER_LOST = -3


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _strip_prefix(message: str) -> str:
    """ib_async logs 'Error 201, reqId 4: text'; keep the text."""
    head, sep, tail = message.partition(": ")
    return tail if sep and head.startswith(("Error", "Warning")) else message


def _follow_oca_reduction(record: TrackedOrder, trade: Trade) -> None:
    """IB lowered an OCA member's totalQuantity (another member filled, ocaType 2 or 3): the order's
    quantity follows, as in a backtest, so that filling the reduced quantity completes it."""
    order = record.order
    total = float(trade.order.totalQuantity or 0)
    if order.oca_group and record.filled_quantity - 1e-9 <= total < order.quantity - 1e-9:
        log.info("order %s reduced by OCA group %r to %g", order.order_id, order.oca_group, total)
        order.quantity = total


def _same(a: Any, b: Any) -> bool:
    """Two ib_async price or size fields alike (floats compared with a tolerance)."""
    if _is_number(a) and _is_number(b):
        return bool(abs(float(a) - float(b)) < 1e-9)
    return bool(a == b)


def _acknowledges_modification(record: TrackedOrder, trade: Trade) -> bool:
    """Whether this status report is IB's answer to the outstanding modification: ib_async labels it
    "Modified" when nothing in the status changed; a new size shows in filled + remaining instead."""
    last = trade.log[-1] if trade.log else None
    if last is not None and last.message == "Modified":
        return True
    st = trade.orderStatus
    total = float(st.filled or 0) + float(st.remaining or 0)
    before = record.modifying.quantity if record.modifying is not None else total
    return abs(total - record.order.quantity) < 1e-9 and abs(total - before) > 1e-9


class IbOrderEvents:
    """ib_async's order events (``orderStatusEvent``, ``execDetailsEvent``, ``commissionReportEvent``,
    ``errorEvent``) and the connection's ``restored``, applied to ``tracker`` (IB loop thread)."""

    def __init__(self, tracker: OrderTracker, connection: IBConnection, sink: LiveBrokerAdapter) -> None:
        self.tracker = tracker
        self._conn = connection
        self._sink = sink

    def _record_of(self, trade: Trade) -> TrackedOrder | None:
        return self.tracker.find(trade.order.orderId, trade.order.permId, trade.order.orderRef or "")

    def on_order_status(self, trade: Trade) -> None:
        record = self._record_of(trade)
        if record is None:
            return
        self._apply_status(record, trade)
        if record.order_ref and self._sink.journal is not None:
            st, order, ref = trade.orderStatus, record.order, record.order_ref
            reason = order.reject_reason if record.status.is_done else ""
            avg = float(st.avgFillPrice or 0.0) or None
            self._sink._journal_write(
                lambda j: j.record_status(ref, record.status, float(st.filled or 0), None, avg, reason)
            )

    def on_open_order(self, trade: Trade) -> None:
        """IB's openOrder for one of our orders. After a modification, the one that echoes the sent price and
        size is IB's acceptance: ib_async labels no status for it when the order waits PreSubmitted."""
        record = self._record_of(trade)
        if record is None or record.modifying is None or not record.modifying_sent:
            return
        if all(_same(getattr(trade.order, k, None), v) for k, v in record.modifying_sent.items()):
            record.modifying = None
            log.info("IB acknowledged the modification of order %s", record.order.order_id)

    def _apply_status(self, record: TrackedOrder, trade: Trade) -> None:
        st = trade.orderStatus
        last = trade.log[-1] if trade.log else None
        code = getattr(last, "errorCode", 0) or 0
        if code:
            # ib_async derived this status from an error message (it cancels the Trade on any code outside
            # its warning list): IB itself has said nothing about the order's status.
            message = _strip_prefix(last.message if last else "")
            if record.modifying is not None and refuses_modification(code):
                self._modify_refused(record, code, message)
                return
            self._on_order_code(record, trade, code, message)
            return
        if record.modifying is not None and _acknowledges_modification(record, trade):
            record.modifying = None
            log.info("IB acknowledged the modification of order %s", record.order.order_id)
        if st.status in IB_FINAL:
            record.ib_final = True
        _follow_oca_reduction(record, trade)
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
        if st.status == "Inactive":
            self._held_inactive(record, str(st.whyHeld or ""))
            return
        if record.ib_status == "Inactive":
            log.info("order %s: IB reactivated it (%s)", record.order.order_id, st.status)
        record.why_held = str(st.whyHeld or "")
        record.ib_status = st.status
        self.tracker.set_status(record, status, st.status)

    def _held_inactive(self, record: TrackedOrder, why_held: str) -> None:
        """IB marked the order Inactive. Not final: a short sale waiting for a locate (whyHeld=locate) and
        other held orders can be reactivated and fill. It stays open (cancellable, counted by risk)."""
        first = record.ib_status != "Inactive"
        record.ib_status, record.why_held = "Inactive", why_held
        if first and not record.is_done:
            held = f" (whyHeld={why_held})" if why_held else ""
            self._sink._emit_error(
                record,
                f"IB marked the order inactive{held}; it can still be reactivated and fill, so it stays "
                "open until IB reports it cancelled or filled (cancel it to be sure)",
            )

    def _on_order_code(self, record: TrackedOrder, trade: Trade, code: int, message: str) -> None:
        """An IB message about the order that ib_async turned into a status of its own."""
        if code in CANCEL_REFUSED and record.cancel_requested:
            return  # IB refused our cancel (too late): not a cancellation; errorEvent reports it
        if is_informational(code):
            self._note(record, code, message)
            return
        self.on_error(trade.order.orderId, code, message)

    def _note(self, record: TrackedOrder, code: int, message: str) -> None:
        """An informational IB message about a working order: noted and journaled, the status unchanged."""
        text = f"IB {code}: {message}"
        if text in record.notes:
            return
        record.notes.append(text)
        log.warning("order %s: %s (informational; the order keeps working)", record.order.order_id, text)
        if record.order_ref and not is_warning(code):
            ref = record.order_ref
            self._sink._journal_write(lambda j: j.record_error(ref, code, message))

    def on_exec_details(self, trade: Trade, fill: IBFill) -> None:
        record = self._record_of(trade)
        if record is None:
            return
        self.note_execution(record, fill)

    def note_execution(self, record: TrackedOrder, fill: IBFill) -> None:
        ex = fill.execution
        pending = PendingExecution(
            exec_id=ex.execId,
            shares=float(ex.shares),
            price=float(ex.price),
            time=ex.time if ex.time and ex.time.tzinfo else datetime.now(UTC),
        )
        replaced = self.tracker.corrected_exec_id(record, ex.execId)
        if replaced is not None:
            correction = self.tracker.correct(record, pending, replaced)
            if correction is not None:
                self._sink._report_correction(record, correction)
            return
        if record.is_done and not record.ib_final and not self.tracker.seen(ex.execId, record):
            # finished by an error code, Inactive or a loss, not by IB's own report: IB still worked it.
            # (After IB's own Cancelled, a late execution is the fill-races-cancel case: booked, not reopened.)
            self._reopen(record, ex.execId)
        if not self.tracker.add_execution(record, pending):
            return
        report = fill.commissionReport
        if report is not None and report.execId == ex.execId and _is_number(report.commission):
            # a zero commission is real (IBKR Lite, some venues): only a missing report is estimated
            self._sink._settle(record, ex.execId, float(report.commission))
            return
        loop = asyncio.get_running_loop()
        loop.call_later(self._sink.commission_timeout, self._settle_late, record, ex.execId)

    def _reopen(self, record: TrackedOrder, exec_id: str) -> None:
        """IB executed an order believed finished (by an error code, Inactive or a loss): it is working
        again, and the error callbacks and the journal hear of it (an alert: something was misread)."""
        old = self.tracker.reopen(record)
        if old is None:
            return
        message = (
            f"IB executed order {record.order.order_id} ({exec_id}) that was believed {old.value} "
            f"({record.errors[-1] if record.errors else 'no reason'}); it is working again at IB"
        )
        log.error("%s", message)
        if record.order_ref:
            ref = record.order_ref
            self._sink._journal_write(lambda j: j.record_error(ref, 0, message))
            self._sink._journal_write(lambda j: j.record_event("alert", message))
        self._sink._emit_error(record, message)

    def mark_lost(self, record: TrackedOrder, why: str) -> None:
        """IB no longer knows ``record``'s order: CANCELLED and lost (tracker and journal), alerted."""
        reason = f"lost: {why}"
        if not self.tracker.mark_lost(record, reason):
            return
        log.error("order %s (IB %d): %s", record.order.order_id, record.ib_order_id, reason)
        if record.order_ref:
            ref = record.order_ref
            self._sink._journal_write(lambda j: j.record_status(ref, OrderStatus.CANCELLED, reason=reason))
            self._sink._journal_write(lambda j: j.record_error(ref, ORDER_LOST, reason))
        self._sink._emit_error(record, reason)

    def _settle_late(self, record: TrackedOrder, exec_id: str) -> None:
        pending = record.pending.get(exec_id)
        if pending is None:
            return
        estimate = self._sink.calculate_commission(pending.price, pending.shares)
        log.warning(
            "no IB commission report for execution %s within %.1fs; using the model's estimate %.4f",
            exec_id,
            self._sink.commission_timeout,
            estimate,
        )
        self._sink._settle(record, exec_id, estimate)

    def on_commission(self, trade: Trade, fill: IBFill, report: Any) -> None:
        record = self._record_of(trade) or self.tracker.record_for_exec(report.execId)
        if record is None:
            return
        if report.execId not in record.pending and not self.tracker.seen(report.execId, record):
            self.note_execution(record, fill)
        self._sink._settle(record, report.execId, float(report.commission or 0.0))
        currency = str(getattr(report, "currency", "") or "")
        if currency and currency not in ("USD", "BASE"):
            log.warning(
                "IB reported the commission of %s in %s, not USD: booked as reported (%g), not converted",
                report.execId,
                currency,
                report.commission,
            )
        if record.order_ref and report.commission is not None and math.isfinite(report.commission):
            pnl = report.realizedPNL if report.realizedPNL and math.isfinite(report.realizedPNL) else None
            self._sink._journal_write(
                lambda j: j.record_commission(report.execId, float(report.commission), pnl, record.order_ref)
            )

    def on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        if req_id <= 0 or 2100 <= code < 2200:
            return
        record = self.tracker.find(ib_order_id=req_id)
        if record is None:
            return
        if record.modify_refused_code == code:  # seen already through the status event ib_async made of it
            record.modify_refused_code = 0
            return
        if record.modifying is not None and refuses_modification(code):
            self._modify_refused(record, code, message)
            record.modify_refused_code = 0
            return
        if record.is_done:
            return
        named = rejection_reason(code, message)
        if named is not None and record.perm_id:
            return  # IB acknowledged the order: 321/110 then concern a modification; the order stays live
        if named is None and is_informational(code):
            self._note(record, code, message)
            return
        text = named or f"IB error {code}: {message}"
        if record.order_ref:
            ref = record.order_ref
            self._sink._journal_write(lambda j: j.record_error(ref, code, message))
        if code == ORDER_CANCELLED and record.cancel_requested:
            self.tracker.set_status(
                record, OrderStatus.CANCELLED, reason=record.cancel_reason or "cancelled on request"
            )
            return
        if code in CANCEL_REFUSED and record.cancel_requested:
            log.info(
                "IB refused to cancel order %s (%s); its status and executions decide how it ends",
                record.order.order_id,
                text,
            )
            return
        # An error code alone: REJECTED (or CANCELLED after fills) here, but IB has not said the order is
        # finished, so it stays reachable (cancel_all_orders) and an execution reopens it.
        status = OrderStatus.REJECTED if not record.fills else OrderStatus.CANCELLED
        self.tracker.set_status(record, status, reason=text)
        if record.order_ref:
            ref = record.order_ref
            self._sink._journal_write(lambda j: j.record_status(ref, status, None, None, None, text))
        self._sink._emit_error(record, text)

    def _modify_refused(self, record: TrackedOrder, code: int, message: str) -> None:
        """IB refused the outstanding modification of ``record``'s order (e.g. 104: it filled meanwhile): the
        order keeps working (or ended) as IB says, with its terms from before; journaled and reported."""
        previous = record.modifying
        record.modifying = None
        record.modify_refused_code = code
        order = record.order
        if previous is not None:
            previous.apply_to(order)
        for name, value in record.modifying_ib.items():  # ib_async keeps what was sent: IB has the old terms
            setattr(record.ib_order, name, value)
        record.modifying_ib = {}
        self._revive_trade(record)
        text = f"IB refused the modification of order {order.order_id} ({code}: {message}); its terms are as before"
        log.warning("%s", text)
        if record.order_ref:
            ref = record.order_ref
            self._sink._journal_write(lambda j: j.record_error(ref, code, message))
            if previous is not None:
                self._sink._journal_write(
                    lambda j: j.record_modified(ref, order, "modification refused by IB")
                )
        self._sink._emit_error(record, text)

    def _revive_trade(self, record: TrackedOrder) -> None:
        """ib_async cancels its Trade on any error code outside its warning list, a refused modification's
        too, though IB keeps the order working: give the Trade back its working status (so that it can be
        modified and cancelled again, and a later catch-up does not read the code as the order's end)."""
        if record.is_done:
            return
        trade = next((t for t in self._conn.ib.trades() if t.order is record.ib_order), None)
        if trade is None or trade.orderStatus.status not in ("Cancelled", "ValidationError"):
            return
        status = (
            record.ib_status if record.ib_status not in ("", "Cancelled", "ValidationError") else "Submitted"
        )
        trade.orderStatus.status = status
        trade.log.append(TradeLogEntry(datetime.now(UTC), status, "modification refused; the order works on"))

    def on_restored(self, data_lost: bool) -> None:
        """After a reconnect, 1101 or 1102: catch up with IB (loop thread; the work runs as a task)."""
        if self._sink._handlers_on is None:
            return
        asyncio.get_running_loop().create_task(self._catch_up(socket_renewed=data_lost))

    async def _catch_up(self, *, socket_renewed: bool) -> None:
        """Ask IB for today's executions (IB may not have sent every execDetails around an outage), replay
        executions and statuses we missed, and mark lost the orders IB no longer knows."""
        ib = self._conn.ib
        try:
            await asyncio.wait_for(ib.reqExecutionsAsync(), 15)
        except (TimeoutError, RequestError, ConnectionError) as exc:
            log.warning("could not fetch IB's executions after the reconnect: %s", exc)
        for fill in ib.fills():
            ex = fill.execution
            record = self.tracker.find(
                ex.orderId if ex.clientId == self._conn.settings.client_id else 0,
                ex.permId,
                ex.orderRef or "",
            )
            if record is None or self.tracker.seen(ex.execId, record):
                continue
            self.note_execution(record, fill)
            report = fill.commissionReport
            if report and report.execId == ex.execId and _is_number(report.commission):
                self._sink._settle(record, ex.execId, float(report.commission))
        for trade in ib.trades():
            self.on_order_status(trade)
        if socket_renewed:
            self._mark_unknown_orders_lost(ib.trades())

    def _mark_unknown_orders_lost(self, trades: list[Trade]) -> None:
        """After ib_async re-fetched IB's open and completed orders: a tracked order IB does not list is
        lost (an IB Gateway reset can drop orders written just before it)."""
        perms = {int(t.order.permId) for t in trades if t.order.permId}
        client = self._conn.settings.client_id
        ours = {int(t.order.orderId): t.order.orderRef or "" for t in trades if t.order.clientId == client}
        for record in self.tracker.reachable_records():
            if record.perm_id:
                known = record.perm_id in perms
            else:  # never acknowledged: by order id, and by orderRef when it has one (ids can be reused)
                ref = ours.get(record.ib_order_id)
                known = ref is not None and (not record.order_ref or ref == record.order_ref)
            if known:
                continue
            if record.is_done:
                self.tracker.release(record)  # finished here already (an error code): nothing was lost
            else:
                self.mark_lost(record, "IB no longer knows the order after the reconnect (gateway reset)")
