"""SimBroker: the simulated gateway's order and account core (no sockets, no wire format).

The protocol side (sessions, handlers) calls the methods below and subscribes to :attr:`SimBroker.events`,
an ``eventkit.Event`` that emits one frozen event object per happening (:mod:`.broker_events`), in the
order a real TWS would report them. A fill is reported as ExecutionReported, OrderUpdated,
CommissionReported, AccountChanged. Price marks do *not* emit AccountChanged (that would be every tick):
read :meth:`SimBroker.portfolio` and :meth:`SimBroker.account_values` when pushing periodic account updates.

The broker's parts, one module each: what it refuses (:mod:`.order_checks`, :mod:`.oca`, :mod:`.trailing`),
its records (:mod:`.order_records`), matching (:mod:`.matching`), booking a fill (:mod:`.fills`), the
account (:mod:`.account`), persistence (:mod:`.state`) and the drill surface (:mod:`.broker_drills`).

Threading: not thread-safe by design, like the rest of the gateway; call it from the gateway's event loop.
Executions are kept for the broker's lifetime (and persisted), so a client that was away when its order
filled finds the fill with reqExecutions after reconnecting.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from eventkit import Event

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import (
    Account,
)
from copilot_quant.gateway.brackets import BrokerBrackets
from copilot_quant.gateway.broker_account import BrokerAccountReads
from copilot_quant.gateway.broker_drills import BrokerDrills
from copilot_quant.gateway.broker_events import (
    AccountChanged,
    BrokerEvent,
    CommissionReported,
    ExecutionReported,
    OrderErrorEvent,
    OrderUpdated,
    WhatIfReported,
)
from copilot_quant.gateway.broker_instruments import BrokerInstruments
from copilot_quant.gateway.broker_persistence import BrokerPersistence
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.fills import book_fill
from copilot_quant.gateway.fut_fx_orders import InstrumentMeters
from copilot_quant.gateway.instrument_contracts import contract_calendar
from copilot_quant.gateway.matching import (
    AuctionMissed,
    FillIntent,
    MatchingEngine,
    OcaReduced,
    StopTriggered,
    WorkingOrder,
)
from copilot_quant.gateway.oca import OCA_REVISION, oca_problem
from copilot_quant.gateway.order_checks import (
    buying_power_problem,
    reference_price,
    request_problem,
)
from copilot_quant.gateway.order_checks import parse_order_type as _order_type
from copilot_quant.gateway.order_checks import parse_tif as _tif
from copilot_quant.gateway.order_records import new_record, working_order
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IbOrderType,
    IbStatus,
    IdAllocator,
    PlaceOrderRequest,
    SimOrder,
    TimeInForceCode,
    finite_or_none,
    new_exec_id_tag,
    parse_ib_time,
)
from copilot_quant.gateway.state import load_state
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import (
    CommissionModel,
    NoSlippage,
    PerShareCommission,
    SlippageModel,
)

__all__ = [
    "AccountChanged",
    "BrokerEvent",
    "CommissionReported",
    "ExecutionReported",
    "OrderErrorEvent",
    "OrderUpdated",
    "SimBroker",
    "WhatIfReported",
    "account_id_for",
]

log = logging.getLogger(__name__)

_NEW_YORK = ZoneInfo("America/New_York")


def account_id_for(account: str, live_account: bool) -> str:
    """``account`` as a paper (``DU…``) or live (``U…``) id: IB paper ids start with DU, live ones with U."""
    digits = account.lstrip("DU") or "1234567"
    return f"U{digits}" if live_account else f"DU{digits}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimBroker(BrokerAccountReads, BrokerPersistence, BrokerBrackets, BrokerDrills, BrokerInstruments):
    """Orders, matching, executions and the account of one simulated IB account.

    Args:
        account: the account id (paper ids start with ``DU``; see ``live_account``).
        cash: starting cash in USD (ignored when a state file is loaded).
        commission: commission model per execution (IBKR Fixed by default; IBKR Tiered prices by the month's
            volume, counted by this account's own meter and rebuilt from the saved executions on restart).
            The commissionReport carries the total: IB's commission plus the third-party fees.
        slippage: slippage model for market and triggered stop orders.
        partial_fill_size: fill at most this many shares per order per price update (None = all at once).
        volume_limit: fill at most this fraction of each bar's volume per symbol, summed over its orders
            (the backtest's ``volume_limit``, see :mod:`copilot_quant.backtest.participation`; None = no
            limit). The bar's volume comes with its open: ``on_price(..., gap=True, bar_volume=...)``.
        state_file: JSON file; if it exists the broker resumes from it, and every change is saved to it.
        clock: returns the current tz-aware time (the gateway's market clock); used for submission times.
        leverage: margin multiplier, 1 = cash-like buying power (see :mod:`copilot_quant.gateway.account`).
        live_account: present the account as a live ``U…`` account instead of a ``DU…`` paper account.
    """

    def __init__(
        self,
        account: str = "DU1234567",
        cash: float = 1_000_000.0,
        *,
        commission: CommissionModel | None = None,
        slippage: SlippageModel | None = None,
        partial_fill_size: float | None = None,
        volume_limit: float | None = None,
        state_file: str | Path | None = None,
        clock: Callable[[], datetime] | None = None,
        leverage: float = 1.0,
        live_account: bool = False,
    ) -> None:
        if live_account:
            account = account_id_for(account, live_account=True)
        self.events: Event = Event("broker_events")
        self._clock = clock or _utc_now
        self._costs = CostMeter(commission or PerShareCommission())
        #: IB's futures and forex commissions (the stock model above prices stocks only)
        self._instrument_meters = InstrumentMeters()
        self._engine = MatchingEngine(slippage or NoSlippage(), partial_fill_size, volume_limit)
        self._account = Account(account, cash, leverage=leverage)
        self._ids = IdAllocator(exec_tag=new_exec_id_tag())
        #: The market time saved in the state file this broker resumed from (None: a fresh account).
        self.resumed_market_time: datetime | None = None
        self._orders: dict[tuple[int, int], SimOrder] = {}
        self._executions: list[ExecutionRecord] = []
        self._last_price: dict[str, float] = {}
        #: Where a price comes from before this broker saw a tick of a symbol (the market's last quote).
        self.price_source: Callable[[str], float | None] | None = None
        #: Symbols that traded since the session opened; the first price of any other opens its session
        #: (its opening auction). A fresh gateway treats the next price as an opening.
        self._opened: set[str] = set()
        self._reject_queue: deque[str] = deque()
        #: Drills: the next new orders' answers ``(code, message, keeps_working)`` (see answer_next_order).
        self._answer_queue: deque[tuple[int, str, bool]] = deque()
        self._withholding = False
        self._held: list[BrokerEvent] = []
        #: Drill: commission reports as real IB may send them ("normal", "zero", "late", "currency:EUR").
        self.commission_mode = "normal"
        self._late_commissions: list[BrokerEvent] = []
        #: Drill: reqExecutions answers only the current market day's executions, as IB does.
        self.executions_today_only = False
        #: The contracts the gateway has defined (clients qualified them); saved with the state so that a
        #: restart still knows them, as IB does. The gateway sets it; restored ones are kept here.
        self.contract_source: Callable[[], list[ContractInfo]] | None = None
        self._restored_contracts: list[ContractInfo] = []
        self._untransmitted: dict[tuple[int, int], list[tuple[PlaceOrderRequest, ContractInfo]]] = {}
        self._children: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._state_file = Path(state_file) if state_file is not None else None
        if self._state_file is not None:
            state = load_state(self._state_file)
            if state is not None:
                self._restore(state)
                self._resume_brackets()

    # ----- identity and ids ------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        return self._account.account_id

    @property
    def is_live_account(self) -> bool:
        return not self.account_id.startswith("DU")

    def next_order_id(self, client_id: int) -> int:
        """The next valid order id of ``client_id``: above every id it ever used (also across restarts)."""
        return self._ids.next_order_id(client_id)

    # ----- orders ---------------------------------------------------------------------------------
    def place_order(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        """Accept, modify or reject an order; the outcome is reported through :attr:`events`."""
        prepared, unsized = self._prepare_order(client_id, req, contract)
        if prepared is None:
            return
        req = prepared
        if req.what_if:
            self._what_if_order(client_id, req, contract)
            return
        existing = self._orders.get((client_id, req.order_id))
        if existing is not None:
            if unsized is not None:  # TWS keeps the original order working when a modification is refused
                self._error(client_id, req.order_id, 201, f"Order rejected - reason:{unsized}")
            else:
                self._modify(existing, req, contract)
            return
        if not self._ids.is_fresh(client_id, req.order_id):
            self._error(client_id, req.order_id, 103, f"Duplicate order id {req.order_id}")
            return
        self._ids.use_order_id(client_id, req.order_id)
        # an order its cashQty could not size is rejected at once, even inside a group
        if unsized is None and not req.transmit:
            self._hold_untransmitted(client_id, req, contract)  # TWS keeps it until its group is sent
            return
        if unsized is None and req.parent_id:
            self._transmit_group(client_id, req, contract)
            return
        if self._accept(client_id, req, contract, unsized=unsized) is not None:
            self._save()

    def _accept(
        self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo, *, unsized: str | None = None
    ) -> SimOrder | None:
        """Accept (working) or reject a new order whose id is allocated; the record, or None if rejected.
        ``unsized``: why a forex ``cashQty`` could not size it (a rejection)."""
        answer = self._answer_queue.popleft() if self._answer_queue else None
        if answer is not None and not answer[2]:
            # IB answers with the error only (321 read-only API, 110 off the tick grid): no order exists.
            self._error(client_id, req.order_id, answer[0], answer[1])
            return None
        reason = self._reject_queue.popleft() if self._reject_queue else unsized
        reason = reason or self._invalid_reason(req, contract)
        if reason is None:
            reason = oca_problem(req, self._orders.values())
        record = self._new_record(client_id, req, contract)
        if reason is not None:
            self._reject(record, reason)
            return None
        self._orders[record.key] = record
        self._engine.add(self._working(record))
        log.info(
            "order %s accepted: %s %g %s %s",
            record.key,
            record.action,
            record.quantity,
            contract.symbol,
            record.order_type,
        )
        self._emit(OrderUpdated(client_id, record))
        if answer is not None:
            self._error(client_id, req.order_id, answer[0], answer[1])  # e.g. 10349: the order keeps working
        if record.tif is TimeInForceCode.IOC:
            self._immediate(record)
        return record

    def cancel_order(self, client_id: int, order_id: int) -> None:
        record = self._orders.get((client_id, order_id))
        if record is None:
            self._error(
                client_id, order_id, 10147, f"OrderId {order_id} that needs to be cancelled is not found."
            )
            return
        if record.status is IbStatus.FILLED:
            self._error(
                client_id,
                order_id,
                10148,
                f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: Filled.",
            )
            return
        if record.is_done:
            self._error(
                client_id,
                order_id,
                161,
                f"Cancel attempted when order is not in a cancellable state. Order permId = {record.perm_id}",
            )
            return
        self._cancel(record, "Cancelled by client")
        self._save()

    def global_cancel(self) -> None:
        """reqGlobalCancel: cancel every working order of every client."""
        for record in self.open_orders():
            self._cancel(record, "Cancelled by global cancel")
        self._save()

    def end_session(self, time: datetime | None = None, calendars: frozenset[str] | None = None) -> None:
        """The session ended: DAY orders expire (reported as Cancelled); daily P&L starts over. With
        ``calendars``, only the sessions of those calendars ended (a future's DAY order lives until CME's
        close); the stock session's auctions need the NYSE's (``XNYS``)."""
        when = self._aware(time) if time is not None else self._clock()
        stocks = calendars is None or "XNYS" in calendars
        if stocks:
            self._close_auction(when)
            self._opened.clear()
        for record in self.open_orders():
            ends = calendars is None or contract_calendar(record.contract) in calendars
            if record.tif is TimeInForceCode.DAY and ends:
                self._finish_cancel(record, "Expired: DAY order at session end", when, report_202=False)
        self._account.start_day()  # daily P&L counts from the last close of any of them
        self._save()

    # ----- market ---------------------------------------------------------------------------------
    def on_price(
        self,
        symbol: str,
        price: float,
        time: datetime | None = None,
        bid: float | None = None,
        ask: float | None = None,
        *,
        gap: bool = False,
        bar_volume: float | None = None,
    ) -> None:
        """One market price of ``symbol``: match its working orders, then mark the account.

        ``gap=True`` says the price jumped here from the previous one (a new bar's open); otherwise the
        market moved continuously from the previous price (see :mod:`copilot_quant.gateway.matching`).
        ``bar_volume``, given with a bar's open, is the bar's traded volume (used by ``volume_limit``).
        Fills use the traded price, as the backtest does; ``bid``/``ask`` are accepted for symmetry with
        the market feed and are not used for matching (the default quote spread is zero).
        """
        if not (math.isfinite(price) and price > 0):
            log.warning("ignoring non-positive or non-finite price %r for %s", price, symbol)
            return
        symbol = symbol.upper()
        when = self._aware(time) if time is not None else self._clock()
        self._last_price[symbol] = price
        filled = False
        opening = symbol not in self._opened
        self._opened.add(symbol)
        for event in self._engine.on_price(symbol, price, gap=gap, bar_volume=bar_volume, opening=opening):
            if isinstance(event, AuctionMissed):
                record = self._orders[event.key]
                self._finish_cancel(
                    record, "Cancelled: not filled in the opening auction", when, report_202=False
                )
            elif isinstance(event, StopTriggered):
                self._triggered(event.key)
            elif isinstance(event, FillIntent):
                self._fill(event, when)
                filled = True
            elif isinstance(event, OcaReduced):
                self._oca_reduced(event, when)
                filled = True
        self._follow_trails(symbol)
        self._account.mark(symbol, price)
        if filled:
            item = self._account.portfolio_item(symbol)
            self._emit(AccountChanged((item,) if item is not None else ()))
            self._save()

    def last_price(self, symbol: str) -> float | None:
        """The last traded price of ``symbol``: from this broker's ticks, else from :attr:`price_source`.

        Without the fallback a market order placed before the first tick of a symbol would skip the
        buying-power check (a 1,000,000-share buy on a $1M account would fill).
        """
        symbol = symbol.upper()
        price = self._last_price.get(symbol)
        if price is None and self.price_source is not None:
            quoted = self.price_source(symbol)
            if quoted is not None and math.isfinite(quoted) and quoted > 0:
                price = float(quoted)
        return price

    # ----- queries --------------------------------------------------------------------------------
    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        return self._orders.get((client_id, order_id))

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [r for r in self._orders.values() if not r.is_done and client_id in (None, r.client_id)]

    def completed_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [r for r in self._orders.values() if r.is_done and client_id in (None, r.client_id)]

    # ----- internals: lifecycle -------------------------------------------------------------------
    def _new_record(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> SimOrder:
        return new_record(
            client_id,
            req,
            contract,
            perm_id=self._ids.new_perm_id(),
            account_id=self.account_id,
            now=self._clock(),
            last_price=self.last_price(contract.symbol),
        )

    def _working(self, record: SimOrder, triggered: bool = False) -> WorkingOrder:
        return working_order(record, triggered)

    def _invalid_reason(self, req: PlaceOrderRequest, contract: ContractInfo) -> str | None:
        """Why TWS would reject ``req`` (the text after "Order rejected - reason:"), or None."""
        reason = request_problem(req, contract, account_id=self.account_id, now=self._aware(self._clock()))
        if reason is not None or (_order_type(req.order_type) or IbOrderType.MKT).is_trailing:
            return reason
        price = self._reference_price(req, contract)
        try:
            return buying_power_problem(
                req, contract, self._account, price, lambda p, q, a: self._quote(p, q, a, contract)
            )
        except ConfigError as exc:  # e.g. a futures root whose exchange fee is not known
            return str(exc)

    def _reference_price(self, req: PlaceOrderRequest, contract: ContractInfo) -> float | None:
        return reference_price(req, self.last_price(contract.symbol))

    def _reject(self, record: SimOrder, reason: str) -> None:
        done = replace(
            record,
            status=IbStatus.CANCELLED,
            completed_at=self._clock(),
            completed_status=f"Rejected: {reason}",
        )
        self._orders[done.key] = done
        log.info("order %s rejected: %s", record.key, reason)
        self._error(record.client_id, record.order_id, 201, f"Order rejected - reason:{reason}")
        self._save()

    def _modify(self, existing: SimOrder, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        client_id, order_id = existing.key
        if existing.status is IbStatus.FILLED:
            self._error(client_id, order_id, 104, "Can't modify a filled order.")
            return
        if existing.is_done:
            self._error(client_id, order_id, 103, f"Duplicate order id {order_id}")
            return
        if req.action.upper() != existing.action.value or contract.con_id != existing.contract.con_id:
            self._error(client_id, order_id, 105, "Order being modified does not match original order.")
            return
        if (_order_type(req.order_type) or existing.order_type) is not existing.order_type:
            # IB modifies price, size and time in force; a new order type is a new order (cancel, then place)
            self._error(client_id, order_id, 329, "Order modify failed. Cannot change to the new order type.")
            return
        reason = self._invalid_reason(req, contract)
        if reason is None and (req.oca_group, req.oca_type if req.oca_group else 0) != (
            existing.oca_group,
            existing.oca_type,
        ):
            reason = OCA_REVISION
        if reason is None and req.total_quantity < existing.filled:
            reason = f"the new quantity {req.total_quantity:g} is below the {existing.filled:g} shares already filled"
        if reason is not None:
            # TWS keeps the original order working when a modification is refused.
            self._error(client_id, order_id, 201, f"Order rejected - reason:{reason}")
            return
        order_type = _order_type(req.order_type) or existing.order_type
        working = self._engine.remove(existing.key)
        updated = replace(
            existing,
            quantity=req.total_quantity,
            order_type=order_type,
            lmt_price=finite_or_none(req.lmt_price),
            aux_price=finite_or_none(req.aux_price),
            tif=_tif(req.tif),
            order_ref=req.order_ref,
            outside_rth=req.outside_rth,
            good_till=parse_ib_time(req.good_till_date) if req.tif.upper() == "GTD" else None,
        )
        if order_type.is_trailing:  # the trail may change; the stop stays where it has trailed to
            updated = replace(
                updated,
                trailing_percent=finite_or_none(req.trailing_percent),
                lmt_price_offset=finite_or_none(req.lmt_price_offset),
            )
        triggered = working.triggered if working is not None and order_type == existing.order_type else False
        if (order_type.needs_stop or order_type.is_trailing) and not triggered:
            updated = replace(updated, status=IbStatus.PRE_SUBMITTED)
        else:
            updated = replace(updated, status=IbStatus.SUBMITTED)
        self._orders[updated.key] = updated
        if updated.remaining > 0:
            fresh = self._working(updated, triggered)
            fresh.last_seen = working.last_seen if working is not None else None
            self._engine.add(fresh)
            self._emit(OrderUpdated(client_id, updated))
        else:
            # Quantity lowered to what already filled: the order is complete.
            updated = replace(
                updated, status=IbStatus.FILLED, completed_at=self._clock(), completed_status="Filled"
            )
            self._orders[updated.key] = updated
            self._emit(OrderUpdated(client_id, updated))
        group = self._bracket_of(updated)
        if group is not None:  # a modified bracket order: the exits work for the exposure only
            self._sync_bracket(group, self._clock(), offer=False)
        self._save()

    def _cancel(self, record: SimOrder, why: str) -> None:
        self._finish_cancel(record, why, self._clock(), report_202=True)

    def _finish_cancel(self, record: SimOrder, why: str, when: datetime, *, report_202: bool) -> None:
        if self._orders[record.key].is_done:
            return  # ended meanwhile (a complete bracket cancels its children first)
        self._engine.remove(record.key)
        done = replace(record, status=IbStatus.CANCELLED, completed_at=when, completed_status=why)
        self._orders[done.key] = done
        log.info("order %s cancelled: %s", record.key, why)
        self._emit(OrderUpdated(done.client_id, done))
        if report_202:
            self._error(done.client_id, done.order_id, 202, "Order Canceled - reason:")
        if done.key in self._children:
            self._sync_bracket(done.key, when)  # the parent ended: its group may be complete

    def _triggered(self, key: tuple[int, int]) -> None:
        record = self._orders[key]
        if record.status is IbStatus.PRE_SUBMITTED:
            record = replace(record, status=IbStatus.SUBMITTED)
            self._orders[key] = record
            self._emit(OrderUpdated(record.client_id, record))

    def _fill(self, intent: FillIntent, when: datetime) -> None:
        record, execution = book_fill(
            self._orders[intent.key],
            intent,
            when,
            costs=self._meter_for(self._orders[intent.key].contract),
            account=self._account,
            exec_id=self._ids.new_exec_id(),
            charged_at=self._aware(when),
        )
        self._orders[record.key] = record
        self._executions.append(execution)
        log.info(
            "order %s filled %g @ %.4f (commission %.2f)",
            record.key,
            execution.shares,
            execution.price,
            execution.commission,
        )
        self._emit(ExecutionReported(record.client_id, record, execution))
        self._emit(OrderUpdated(record.client_id, record))
        self._emit(CommissionReported(record.client_id, execution))
        group = self._bracket_of(record)
        if group is not None:
            self._sync_bracket(group, when)

    def _immediate(self, record: SimOrder) -> None:
        """An immediate-or-cancel order: what the current price fills now, then the rest is cancelled."""
        when = self._clock()
        symbol = record.contract.symbol
        price = self.last_price(symbol)
        fills = [] if price is None else self._engine.match_now(record.key, price)
        for event in fills:
            if isinstance(event, FillIntent):
                self._fill(event, when)
        if fills:
            item = self._account.portfolio_item(symbol)
            self._emit(AccountChanged((item,) if item is not None else ()))
        record = self._orders[record.key]
        if not record.is_done:
            self._finish_cancel(
                record, "Cancelled: immediate or cancel, not filled at once", when, report_202=False
            )

    def expire_good_till(self, time: datetime | None = None) -> None:
        """The market clock moved to ``time``: GTD orders whose goodTillDate it reached expire."""
        when = self._aware(time) if time is not None else self._clock()
        expired = [r for r in self.open_orders() if r.good_till is not None and r.good_till <= when]
        for record in expired:
            self._finish_cancel(record, "Expired: GTD order at its goodTillDate", when, report_202=False)
        if expired:
            self._save()

    def _close_auction(self, when: datetime) -> None:
        """The session closes: MOC orders (and LOC orders the close satisfies) fill at each symbol's last
        price, the session's close."""
        symbols = {r.contract.symbol for r in self.open_orders() if r.order_type.on_close}
        for symbol in sorted(symbols):
            price = self.last_price(symbol)
            if price is None:
                continue  # never traded: nothing to auction at; the DAY order expires
            events = self._engine.close_auction(symbol, price)
            fills = [e for e in events if isinstance(e, FillIntent)]
            for event in events:
                if isinstance(event, FillIntent):
                    self._fill(event, when)
                elif isinstance(event, OcaReduced):
                    self._oca_reduced(event, when)
            if fills:
                item = self._account.portfolio_item(symbol)
                self._emit(AccountChanged((item,) if item is not None else ()))

    def _follow_trails(self, symbol: str) -> None:
        """Keep trailing orders' records at their current stop (openOrder's trailStopPrice, the state file)."""
        for working in self._engine.working(symbol):
            if working.order_type.is_trailing:
                record = self._orders[working.key]
                if record.trail_stop_price != working.stop:
                    self._orders[working.key] = replace(record, trail_stop_price=working.stop)

    def _oca_reduced(self, event: OcaReduced, when: datetime) -> None:
        """Another member of the order's OCA group filled: cancel it, or lower its quantity (IB reports the
        reduced totalQuantity in openOrder)."""
        record = self._orders[event.key]
        if event.remaining <= 0:
            why = f"Cancelled: another order of OCA group {record.oca_group!r} filled"
            self._finish_cancel(record, why, when, report_202=False)
            return
        record = replace(record, quantity=record.filled + event.remaining)
        self._orders[record.key] = record
        log.info("order %s reduced to %g by OCA group %r", record.key, record.quantity, record.oca_group)
        self._emit(OrderUpdated(record.client_id, record))

    def _what_if_order(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> None:
        reason = self._invalid_reason(req, contract)
        # The what-if order is never kept; a buying-power shortfall is still reported with the figures.
        if reason is not None and not reason.startswith("insufficient buying power"):
            self._error(client_id, req.order_id, 201, f"Order rejected - reason:{reason}")
            return
        record = replace(self._new_record(client_id, req, contract), perm_id=0)
        self._emit(WhatIfReported(client_id, record, self.what_if(req, contract)))

    # ----- internals: plumbing --------------------------------------------------------------------
    def _emit(self, event: BrokerEvent) -> None:
        if self._withholding and isinstance(event, ExecutionReported | CommissionReported):
            self._held.append(event)
            return
        if isinstance(event, CommissionReported) and self.commission_mode != "normal":
            mode = self.commission_mode
            if mode == "late":
                self._late_commissions.append(event)
                return
            if mode == "zero":
                event = replace(event, execution=replace(event.execution, commission=0.0))
            elif mode.startswith("currency:"):
                event = replace(event, execution=replace(event.execution, currency=mode.split(":", 1)[1]))
        self.events.emit(event)

    def _error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        self._emit(OrderErrorEvent(client_id, order_id, code, message))

    def _aware(self, time: datetime) -> datetime:
        # Naive times are exchange (New York) time, as everywhere in the project.
        return time if time.tzinfo is not None else time.replace(tzinfo=_NEW_YORK)
