"""SimBroker: the simulated gateway's order and account core (no sockets, no wire format).

The protocol side (sessions, handlers) calls the methods below and subscribes to :attr:`SimBroker.events`,
an ``eventkit.Event`` that emits one frozen event object per happening (:mod:`.broker_events`), in the
order a real TWS would report them. A fill is reported as ExecutionReported, OrderUpdated,
CommissionReported, AccountChanged. Price marks do *not* emit AccountChanged (that would be every tick):
read :meth:`SimBroker.portfolio` and :meth:`SimBroker.account_values` when pushing periodic account updates.

The broker's parts, one module each: what it refuses (:mod:`.order_checks`, :mod:`.oca`, :mod:`.trailing`),
its records (:mod:`.order_records`), matching (:mod:`.matching`), booking a fill (:mod:`.fills`), the
account (:mod:`.account`), persistence (:mod:`.state`) and the drill surface (:mod:`.broker_drills`). Its
mixins: the placement pipeline (:mod:`.broker_placement`), the reaction to prices and the session's clock
(:mod:`.broker_market`), brackets (:mod:`.brackets`), account reads (:mod:`.broker_account`), futures and
forex (:mod:`.broker_instruments`) and saving (:mod:`.broker_persistence`); this module holds the state,
cancels and the order queries.

Threading: not thread-safe by design, like the rest of the gateway; call it from the gateway's event loop.
Executions are kept for the broker's lifetime (and persisted), so a client that was away when its order
filled finds the fill with reqExecutions after reconnecting.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from eventkit import Event

from copilot_quant.gateway.account import Account
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
from copilot_quant.gateway.broker_market import BrokerMarket
from copilot_quant.gateway.broker_persistence import BrokerPersistence
from copilot_quant.gateway.broker_placement import BrokerPlacement
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.fut_fx_orders import InstrumentMeters
from copilot_quant.gateway.matching import MatchingEngine
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IbStatus,
    IdAllocator,
    PlaceOrderRequest,
    SimOrder,
    new_exec_id_tag,
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


class SimBroker(
    BrokerPlacement,
    BrokerMarket,
    BrokerAccountReads,
    BrokerPersistence,
    BrokerBrackets,
    BrokerDrills,
    BrokerInstruments,
):
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
        currency: the account's base currency (``cash`` is in it).
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
        currency: str = "USD",
    ) -> None:
        if live_account:
            account = account_id_for(account, live_account=True)
        self.events: Event = Event("broker_events")
        self._clock = clock or _utc_now
        self._costs = CostMeter(commission or PerShareCommission())
        #: IB's futures and forex commissions (the stock model above prices stocks only)
        self._instrument_meters = InstrumentMeters()
        self._engine = MatchingEngine(slippage or NoSlippage(), partial_fill_size, volume_limit)
        self._account = Account(account, cash, leverage=leverage, currency=currency)
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

    # ----- cancels ---------------------------------------------------------------------------------
    def cancel_order(self, client_id: int, order_id: int) -> None:
        record = self._orders.get((client_id, order_id))
        if record is None and self._cancel_untransmitted(client_id, order_id):
            return
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
        self._cancel_other_exits(record, self._clock())
        self._cancel_oca_group(record, self._clock())
        self._save()

    def _cancel_oca_group(self, record: SimOrder, when: datetime) -> None:
        """The client cancelled OCA member ``record``: IB cancels the other members still working."""
        if not record.oca_group:
            return
        why = f"Cancelled: order {record.order_id} of OCA group {record.oca_group!r} was cancelled"
        for other in [r for r in self.open_orders() if r.oca_group == record.oca_group]:
            self._finish_cancel(other, why, when, report_202=False)

    def global_cancel(self) -> None:
        """reqGlobalCancel: cancel every working order of every client."""
        for record in self.open_orders():
            self._cancel(record, "Cancelled by global cancel")
        self._save()

    # ----- queries --------------------------------------------------------------------------------
    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        return self._orders.get((client_id, order_id))

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [r for r in self._orders.values() if not r.is_done and client_id in (None, r.client_id)]

    def completed_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [r for r in self._orders.values() if r.is_done and client_id in (None, r.client_id)]

    # ----- internals: cancelling ----------------------------------------------------------------
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
