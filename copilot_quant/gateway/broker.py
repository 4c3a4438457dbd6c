"""SimBroker: the simulated gateway's order and account core (no sockets, no wire format).

The protocol side (sessions, handlers) calls the methods below and subscribes to :attr:`SimBroker.events`,
an ``eventkit.Event`` that emits one frozen event object per happening, in the order a real TWS would
report them:

* :class:`OrderUpdated` → openOrder + orderStatus, to the placing client;
* :class:`ExecutionReported` → execDetails (reqId −1), to the placing client;
* :class:`CommissionReported` → commissionReport, to the placing client;
* :class:`OrderErrorEvent` → error message with ``reqId = order_id`` (201, 202, 103, 104, 105, 161, 10147, 10148);
* :class:`WhatIfReported` → the whatIf openOrder (margin figures), to the requesting client;
* :class:`AccountChanged` → position / updatePortfolio / account values to every subscriber.

A fill is reported as ExecutionReported, OrderUpdated, CommissionReported, AccountChanged. Price marks do
*not* emit AccountChanged (that would be every tick): read :meth:`SimBroker.portfolio` and
:meth:`SimBroker.account_values` when pushing periodic account updates.

Threading: not thread-safe by design, like the rest of the gateway; call it from the gateway's event loop.
Executions are kept for the broker's lifetime (and persisted), so a client that was away when its order
filled finds the fill with reqExecutions after reconnecting.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from eventkit import Event

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account import (
    Account,
    MarginImpact,
    PnL,
    PnLSingle,
    PortfolioItem,
    PositionItem,
)
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.matching import (
    AuctionMissed,
    FillIntent,
    MatchingEngine,
    OcaReduced,
    StopTriggered,
    WorkingOrder,
)
from copilot_quant.gateway.oca import OCA_REVISION, group_fractions, oca_problem
from copilot_quant.gateway.orders import (
    ExecutionFilter,
    ExecutionRecord,
    IbAction,
    IbOrderType,
    IbStatus,
    IdAllocator,
    PlaceOrderRequest,
    SimOrder,
    TimeInForceCode,
    exec_id_tag,
    finite_or_none,
    new_exec_id_tag,
    parse_ib_time,
)
from copilot_quant.gateway.state import BrokerState, load_state, save_state
from copilot_quant.gateway.trailing import initial_trail_stop, trailing_problem
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import (
    CommissionModel,
    NoSlippage,
    PerShareCommission,
    SlippageModel,
)
from copilot_quant.model.participation import is_whole

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


# ----- events ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderUpdated:
    client_id: int
    record: SimOrder


@dataclass(frozen=True, slots=True)
class ExecutionReported:
    client_id: int
    record: SimOrder
    execution: ExecutionRecord


@dataclass(frozen=True, slots=True)
class CommissionReported:
    client_id: int
    execution: ExecutionRecord


@dataclass(frozen=True, slots=True)
class OrderErrorEvent:
    client_id: int
    order_id: int
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class WhatIfReported:
    """Answer to a whatIf order: encode ``record`` as an openOrder with whatIf=1 and ``impact``'s figures."""

    client_id: int
    record: SimOrder
    impact: MarginImpact


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """Cash/positions changed. ``items`` are the portfolio items that changed (flat ones included, so the
    client can drop them: position 0 removes an item in ib_async)."""

    items: tuple[PortfolioItem, ...] = ()


BrokerEvent = (
    OrderUpdated | ExecutionReported | CommissionReported | OrderErrorEvent | WhatIfReported | AccountChanged
)

_SUPPORTED_TYPES = ", ".join(t.value for t in IbOrderType)


def account_id_for(account: str, live_account: bool) -> str:
    """``account`` as a paper (``DU…``) or live (``U…``) id: IB paper ids start with DU, live ones with U."""
    digits = account.lstrip("DU") or "1234567"
    return f"U{digits}" if live_account else f"DU{digits}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimBroker:
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
        self._state_file = Path(state_file) if state_file is not None else None
        if self._state_file is not None:
            state = load_state(self._state_file)
            if state is not None:
                self._restore(state)

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
        if req.what_if:
            self._what_if_order(client_id, req, contract)
            return
        existing = self._orders.get((client_id, req.order_id))
        if existing is not None:
            self._modify(existing, req, contract)
            return
        if not self._ids.is_fresh(client_id, req.order_id):
            self._error(client_id, req.order_id, 103, f"Duplicate order id {req.order_id}")
            return
        self._ids.use_order_id(client_id, req.order_id)
        answer = self._answer_queue.popleft() if self._answer_queue else None
        if answer is not None and not answer[2]:
            # IB answers with the error only (321 read-only API, 110 off the tick grid): no order exists.
            self._error(client_id, req.order_id, answer[0], answer[1])
            return
        reason = self._reject_queue.popleft() if self._reject_queue else self._invalid_reason(req, contract)
        if reason is None:
            reason = oca_problem(req, self._orders.values())
        record = self._new_record(client_id, req, contract)
        if reason is not None:
            self._reject(record, reason)
            return
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
        self._save()

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

    def end_session(self, time: datetime | None = None) -> None:
        """The session ended: DAY orders expire (reported as Cancelled); daily P&L starts over."""
        when = self._aware(time) if time is not None else self._clock()
        self._close_auction(when)
        self._opened.clear()
        for record in self.open_orders():
            if record.tif is TimeInForceCode.DAY:
                self._finish_cancel(record, "Expired: DAY order at session end", when, report_202=False)
        self._account.start_day()
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
        width: int | None = None,
    ) -> None:
        """One market price of ``symbol``: match its working orders, then mark the account.

        ``gap=True`` says the price jumped here from the previous one (a new bar's open); otherwise the
        market moved continuously from the previous price (see :mod:`copilot_quant.gateway.matching`).
        ``bar_volume``, given with a bar's open, is the bar's traded volume (used by ``volume_limit``).
        ``width`` is the quote's spread in ticks (see :mod:`copilot_quant.gateway.matching`; None: the
        slippage model's spread at its plain width, 0: no spread); market orders fill at its touch and
        limits match on it, as in the backtest. ``bid``/``ask`` are accepted for symmetry with the market
        feed; matching derives the quote from ``price`` and ``width`` with the backtest's rule.
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
        events = self._engine.on_price(
            symbol, price, gap=gap, bar_volume=bar_volume, opening=opening, width=width
        )
        for event in events:
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

    # ----- faults ---------------------------------------------------------------------------------
    def reject_next(self, reason: str = "Simulated rejection") -> None:
        """Reject the next new order with error 201 and ``reason`` (queued: call twice for two orders)."""
        self._reject_queue.append(reason)

    def withhold_executions(self, withhold: bool = True) -> None:
        """Hold back execDetails/commissionReport events (True); False releases the held ones in order.

        Executions still happen and are returned by :meth:`executions` (reqExecutions) meanwhile.
        """
        self._withholding = withhold
        if not withhold:
            held, self._held = self._held, []
            for event in held:
                self.events.emit(event)

    def answer_next_order(self, code: int, message: str, *, keeps_working: bool) -> None:
        """Answer the next new order with error ``code``: after accepting it (``keeps_working``, e.g. 10349
        "TIF was set to DAY") or instead of accepting it (321 read-only API, 110 price off the tick grid)."""
        self._answer_queue.append((int(code), message, keeps_working))

    def find_order(self, order_id: int, client_id: int | None = None) -> SimOrder | None:
        """The newest order with ``order_id`` (of ``client_id`` when given)."""
        found = [
            r for r in self._orders.values() if r.order_id == order_id and client_id in (None, r.client_id)
        ]
        return max(found, key=lambda r: r.perm_id) if found else None

    def order_message(self, order_id: int, code: int, message: str, client_id: int | None = None) -> None:
        """Send error ``code`` about a working order without changing its status (IB's informational
        order messages, e.g. 10349)."""
        record = self.find_order(order_id, client_id)
        if record is None:
            raise ConfigError(f"no order {order_id} at the gateway")
        self._error(record.client_id, order_id, int(code), message)

    def correct_execution(
        self, exec_id: str | None = None, *, shares: float | None = None, price: float | None = None
    ) -> ExecutionRecord:
        """Correct an execution (the last one by default), as IB does: a new execId that differs only after
        its last ``.`` (…01 → …02) replaces it. The account books the quantity difference at the new price."""
        if not self._executions:
            raise ConfigError("there is no execution to correct")
        index = len(self._executions) - 1
        if exec_id is not None:
            index = next((i for i, e in enumerate(self._executions) if e.exec_id == exec_id), -1)
            if index < 0:
                raise ConfigError(f"no execution {exec_id!r} at the gateway")
        old = self._executions[index]
        head, _, tail = old.exec_id.rpartition(".")
        new_shares = old.shares if shares is None else float(shares)
        new_price = old.price if price is None else float(price)
        if (
            new_shares < 0
            or not math.isfinite(new_shares)
            or not (math.isfinite(new_price) and new_price > 0)
        ):
            raise ConfigError(
                f"a correction needs shares >= 0 and a positive price, got {new_shares}, {new_price}"
            )
        delta = new_shares - old.shares
        record = self._orders.get((old.client_id, old.order_id))
        new = replace(
            old,
            exec_id=f"{head}.{int(tail) + 1:02d}" if tail.isdigit() else f"{old.exec_id}.02",
            shares=new_shares,
            price=new_price,
            cum_qty=old.cum_qty + delta,
        )
        self._executions[index] = new
        if delta:
            side = 1 if old.side == "BOT" else -1
            self._account.apply_fill(old.contract, side * delta, new_price, 0.0)
        if record is not None:
            record = replace(record, filled=max(0.0, record.filled + delta))
            self._orders[record.key] = record
            self._emit(ExecutionReported(old.client_id, record, new))
            self._emit(CommissionReported(old.client_id, new))
            if delta:
                item = self._account.portfolio_item(old.contract.symbol)
                self._emit(AccountChanged((item,) if item is not None else ()))
        log.warning(
            "drill: execution %s corrected by %s (%g @ %g)", old.exec_id, new.exec_id, new_shares, new_price
        )
        self._save()
        return new

    def lose_recent_orders(self, count: int, client_id: int | None = None) -> list[SimOrder]:
        """Forget the ``count`` newest orders (of ``client_id``, else of the client with the newest order)
        and roll that client's order ids back over them, as an IB Gateway reset can: orders written just
        before it never reached IB, and ``nextValidId`` reissues their ids."""
        if count < 1:
            raise ConfigError(f"lose_recent_orders needs a count >= 1, got {count}")
        if client_id is None:
            newest = max(self._orders.values(), key=lambda r: r.perm_id, default=None)
            if newest is None:
                return []
            client_id = newest.client_id
        mine = sorted(
            (r for r in self._orders.values() if r.client_id == client_id), key=lambda r: r.order_id
        )
        lost = mine[-count:]
        for record in lost:
            self._orders.pop(record.key, None)
            self._engine.remove(record.key)
        kept = [r.order_id for r in mine[: len(mine) - len(lost)]]
        self._ids.last_order_id[client_id] = max(kept, default=0)
        log.warning(
            "drill: forgot %d order(s) of client %d; next order id %d",
            len(lost),
            client_id,
            self._ids.next_order_id(client_id),
        )
        self._save()
        return lost

    def release_commissions(self) -> int:
        """Send the commission reports held back in ``commission_mode = "late"``; returns how many."""
        held, self._late_commissions = self._late_commissions, []
        for event in held:
            self.events.emit(event)
        return len(held)

    @property
    def withheld(self) -> int:
        """How many events are being held back."""
        return len(self._held)

    # ----- queries --------------------------------------------------------------------------------
    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        return self._orders.get((client_id, order_id))

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [r for r in self._orders.values() if not r.is_done and client_id in (None, r.client_id)]

    def completed_orders(self, client_id: int | None = None) -> list[SimOrder]:
        return [r for r in self._orders.values() if r.is_done and client_id in (None, r.client_id)]

    def executions(
        self, client_id: int | None = None, flt: ExecutionFilter | None = None
    ) -> list[ExecutionRecord]:
        """Executions matching the filter; only the current market day's with ``executions_today_only``
        (IB's reqExecutions covers the current day, unless TWS's trade log is set to keep more)."""
        since = self._today_start() if self.executions_today_only else None
        return [
            e
            for e in self._executions
            if client_id in (None, e.client_id)
            and (flt is None or flt.matches(e))
            and (since is None or e.time >= since)
        ]

    def _today_start(self) -> datetime:
        now = self._aware(self._clock()).astimezone(_NEW_YORK)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    def account_values(self) -> list[tuple[str, str, str]]:
        return self._account.values()

    def account_summary(self, tags: Iterable[str] | str) -> list[tuple[str, str, str]]:
        return self._account.summary(tags)

    def positions(self, include_flat: bool = False) -> list[PositionItem]:
        return self._account.positions(include_flat)

    def portfolio(self, include_flat: bool = False) -> list[PortfolioItem]:
        return self._account.portfolio(include_flat)

    def pnl(self) -> PnL:
        return self._account.pnl()

    def pnl_single(self, symbol_or_con_id: str | int) -> PnLSingle | None:
        """P&L of one position, by symbol or conId (reqPnLSingle carries a conId); None if never traded."""
        if isinstance(symbol_or_con_id, int):
            for item in self._account.positions(include_flat=True):
                if item.contract.con_id == symbol_or_con_id:
                    return self._account.pnl_single(item.contract.symbol)
            return None
        return self._account.pnl_single(symbol_or_con_id.upper())

    @property
    def costs(self) -> CostMeter:
        """The account's cost meter: the commission model and the month's traded volume."""
        return self._costs

    @property
    def account(self) -> Account:
        """The books (read them; only the broker changes them)."""
        return self._account

    def what_if(self, req: PlaceOrderRequest, contract: ContractInfo) -> MarginImpact:
        """Margin and equity effect of ``req`` if it filled completely at its reference price."""
        action = IbAction(req.action.upper()) if req.action.upper() in IbAction.__members__ else IbAction.BUY
        price = self._reference_price(req, contract) or 0.0
        qty = req.total_quantity if math.isfinite(req.total_quantity) else 0.0
        commission = self._quote(price, qty, action) if price > 0 and qty > 0 else 0.0
        return self._account.margin_impact(contract.symbol, qty * action.side.sign, price, commission)

    def _quote(self, price: float, quantity: float, action: IbAction) -> float:
        """What a whole order would cost now (for buying power and what-if), not recording anything."""
        return self._costs.quote(price, quantity, action.side, self._aware(self._clock())).total

    # ----- internals: lifecycle -------------------------------------------------------------------
    def _new_record(self, client_id: int, req: PlaceOrderRequest, contract: ContractInfo) -> SimOrder:
        order_type = _order_type(req.order_type) or IbOrderType.MKT
        action = IbAction.SELL if req.action.upper() == "SELL" else IbAction.BUY
        status = (
            IbStatus.PRE_SUBMITTED if order_type.needs_stop or order_type.is_trailing else IbStatus.SUBMITTED
        )
        return SimOrder(
            client_id=client_id,
            order_id=req.order_id,
            perm_id=self._ids.new_perm_id(),
            contract=contract,
            action=action,
            quantity=float(req.total_quantity) if math.isfinite(req.total_quantity) else 0.0,
            order_type=order_type,
            lmt_price=finite_or_none(req.lmt_price),
            aux_price=finite_or_none(req.aux_price),
            tif=_tif(req.tif),
            account=self.account_id,
            submitted_at=self._clock(),
            status=status,
            order_ref=req.order_ref,
            outside_rth=req.outside_rth,
            oca_group=req.oca_group,
            oca_type=req.oca_type if req.oca_group else 0,
            oca_size=float(req.total_quantity) if req.oca_group else 0.0,
            good_till=parse_ib_time(req.good_till_date) if req.tif.upper() == "GTD" else None,
            trailing_percent=finite_or_none(req.trailing_percent) if order_type.is_trailing else None,
            lmt_price_offset=finite_or_none(req.lmt_price_offset) if order_type.is_trailing else None,
            trail_stop_price=(
                initial_trail_stop(req, action.side, self.last_price(contract.symbol))
                if order_type.is_trailing
                else None
            ),
        )

    def _working(self, record: SimOrder, triggered: bool = False) -> WorkingOrder:
        return WorkingOrder(
            key=record.key,
            symbol=record.contract.symbol,
            side=record.action.side,
            order_type=record.order_type,
            remaining=record.remaining,
            limit=record.lmt_price,
            stop=record.trail_stop_price if record.order_type.is_trailing else record.aux_price,
            triggered=triggered,
            whole_shares=is_whole(record.quantity),
            oca_group=record.oca_group,
            oca_type=record.oca_type,
            oca_size=record.oca_size,
            trail_amount=record.aux_price if record.trailing_percent is None else None,
            trail_percent=record.trailing_percent,
            limit_offset=record.lmt_price_offset,
            auction=_auction(record),
        )

    def _invalid_reason(self, req: PlaceOrderRequest, contract: ContractInfo) -> str | None:
        """Why TWS would reject ``req`` (the text after "Order rejected - reason:"), or None."""
        if req.action.upper() not in ("BUY", "SELL"):
            return f"unknown action {req.action!r}; use BUY or SELL"
        order_type = _order_type(req.order_type)
        if order_type is None:
            return f"order type {req.order_type!r} is not supported by the simulated gateway; use one of {_SUPPORTED_TYPES}"
        qty = req.total_quantity
        if not (math.isfinite(qty) and qty > 0):
            return f"order quantity must be positive, got {qty:g}"
        if order_type.needs_limit and not _positive(req.lmt_price):
            return f"a {order_type.value} order needs a positive limit price (lmtPrice)"
        if order_type.needs_stop and not _positive(req.aux_price):
            return f"a {order_type.value} order needs a positive stop price (auxPrice)"
        if order_type.is_trailing:
            return trailing_problem(req, order_type)
        tif = req.tif.upper() or "DAY"
        if tif not in ("DAY", "GTC", "OPG", "IOC", "GTD"):
            return (
                f"time in force {req.tif!r} is not supported by the simulated gateway; use DAY, GTC, OPG, "
                "IOC or GTD"
            )
        if tif == "GTD":
            until = parse_ib_time(req.good_till_date)
            if until is None:
                return (
                    f"a GTD order needs goodTillDate as yyyymmdd hh:mm:ss [zone], got {req.good_till_date!r}"
                )
            if until <= self._aware(self._clock()):
                return f"goodTillDate {req.good_till_date} has passed"
        if tif == "IOC" and order_type not in (IbOrderType.MKT, IbOrderType.LMT):
            return f"time in force IOC (immediate or cancel) takes MKT or LMT orders, not {order_type.value}"
        if tif == "OPG" and order_type not in (IbOrderType.MKT, IbOrderType.LMT):
            return f"time in force OPG (the opening auction) takes MKT or LMT orders, not {order_type.value}"
        if order_type.on_close and tif != "DAY":
            return f"a {order_type.value} order is for today's closing auction: its time in force must be DAY"
        if req.conditions:
            return "conditional orders are not supported by the simulated gateway"
        if req.parent_id:
            return "attached (parent/child, bracket) orders are not supported by the simulated gateway"
        if not req.transmit:
            return "untransmitted orders (transmit=False) are not supported by the simulated gateway"
        if req.account and req.account != self.account_id:
            return f"account {req.account!r} is not managed here; this gateway manages {self.account_id}"
        if contract.sec_type != "STK":
            return f"only stocks can be traded on the simulated gateway, got secType {contract.sec_type!r}"
        return self._buying_power_problem(req, contract, order_type)

    def _buying_power_problem(
        self, req: PlaceOrderRequest, contract: ContractInfo, order_type: IbOrderType
    ) -> str | None:
        price = self._reference_price(req, contract)
        if price is None:
            return None  # a market order before any price is known: it fills at the next price, unchecked
        action = IbAction.BUY if req.action.upper() == "BUY" else IbAction.SELL
        sign = action.side.sign
        commission = self._quote(price, req.total_quantity, action)
        impact = self._account.margin_impact(contract.symbol, sign * req.total_quantity, price, commission)
        needed = impact.init_change + commission
        if impact.init_change > 0 and needed > self._account.available_funds + 1e-9:
            return (
                f"insufficient buying power: the order needs {needed:,.2f} USD of funds "
                f"({req.total_quantity:g} x {price:,.2f} / leverage {self._account.leverage:g} + commission), "
                f"available funds are {self._account.available_funds:,.2f} USD"
            )
        return None

    def _reference_price(self, req: PlaceOrderRequest, contract: ContractInfo) -> float | None:
        order_type = _order_type(req.order_type)
        limit, stop = finite_or_none(req.lmt_price), finite_or_none(req.aux_price)
        if order_type in (IbOrderType.LMT, IbOrderType.STP_LMT, IbOrderType.LOC) and limit:
            return limit
        if order_type is IbOrderType.STP and stop:
            return stop
        return self.last_price(contract.symbol)

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
        self._save()

    def _cancel(self, record: SimOrder, why: str) -> None:
        self._finish_cancel(record, why, self._clock(), report_202=True)

    def _finish_cancel(self, record: SimOrder, why: str, when: datetime, *, report_202: bool) -> None:
        self._engine.remove(record.key)
        done = replace(record, status=IbStatus.CANCELLED, completed_at=when, completed_status=why)
        self._orders[done.key] = done
        log.info("order %s cancelled: %s", record.key, why)
        self._emit(OrderUpdated(done.client_id, done))
        if report_202:
            self._error(done.client_id, done.order_id, 202, "Order Canceled - reason:")

    def _triggered(self, key: tuple[int, int]) -> None:
        record = self._orders[key]
        if record.status is IbStatus.PRE_SUBMITTED:
            record = replace(record, status=IbStatus.SUBMITTED)
            self._orders[key] = record
            self._emit(OrderUpdated(record.client_id, record))

    def _fill(self, intent: FillIntent, when: datetime) -> None:
        record = self._orders[intent.key]
        price, qty = float(intent.price), float(intent.quantity)
        signed = qty * record.action.side.sign
        old_qty = self._account.quantity(record.contract.symbol)
        opening = old_qty == 0 or (old_qty > 0) == (signed > 0)
        # one minimum per order, however it is split (as IB does): each execution pays what it adds
        costs = self._costs.charge(
            price,
            qty,
            record.action.side,
            self._aware(when),
            filled_before=record.filled,
            avg_price_before=record.avg_fill_price,
        )
        commission = costs.total
        realized = self._account.apply_fill(record.contract, signed, price, commission)
        filled = record.filled + qty
        avg = (record.avg_fill_price * record.filled + price * qty) / filled
        done = filled >= record.quantity - 1e-9
        record = replace(
            record,
            filled=filled,
            avg_fill_price=avg,
            last_fill_price=price,
            status=IbStatus.FILLED if done else IbStatus.SUBMITTED,
            completed_at=when if done else None,
            completed_status="Filled" if done else "",
        )
        self._orders[record.key] = record
        execution = ExecutionRecord(
            exec_id=self._ids.new_exec_id(),
            client_id=record.client_id,
            order_id=record.order_id,
            perm_id=record.perm_id,
            contract=record.contract,
            side=record.action.exec_side,
            shares=qty,
            price=price,
            time=when,
            cum_qty=filled,
            avg_price=avg,
            account=self.account_id,
            commission=commission,
            currency=self._account.currency,
            order_ref=record.order_ref,
            realized_pnl=None if opening else realized - commission,
        )
        self._executions.append(execution)
        log.info("order %s filled %g @ %.4f (commission %.2f)", record.key, qty, price, commission)
        self._emit(ExecutionReported(record.client_id, record, execution))
        self._emit(OrderUpdated(record.client_id, record))
        self._emit(CommissionReported(record.client_id, execution))

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

    def _snapshot(self) -> BrokerState:
        working = {w.key: w for w in self._engine.working()}
        return BrokerState(
            account_id=self.account_id,
            cash=self._account.cash,
            commissions=self._account.commissions,
            day_start_equity=self._account.day_start_equity,
            holdings=self._account.holdings(),
            orders=list(self._orders.values()),
            triggered=[key for key, w in working.items() if w.triggered],
            executions=list(self._executions),
            last_order_id=dict(self._ids.last_order_id),
            last_perm_id=self._ids.last_perm_id,
            last_exec_seq=self._ids.last_exec_seq,
            market_time=self._aware(self._clock()),
            contracts=self.contract_source() if self.contract_source else list(self._restored_contracts),
        )

    def save(self) -> None:
        """Write the state file now (no-op without one); the gateway calls it when it stops."""
        self._save()

    def _save(self) -> None:
        if self._state_file is not None:
            save_state(self._state_file, self._snapshot())

    def known_contracts(self) -> list[ContractInfo]:
        """Every contract in the account's positions, orders and executions (restored ones included)."""
        found = [item.contract for item in self.positions(include_flat=True)]
        found += [record.contract for record in self._orders.values()]
        found += [execution.contract for execution in self._executions]
        found += self._restored_contracts
        return list({info.con_id: info for info in found}.values())

    def _restore(self, state: BrokerState) -> None:
        if state.account_id != self.account_id:
            raise ConfigError(
                f"state file {self._state_file} belongs to account {state.account_id}, not {self.account_id}; "
                "pass the same account or another --state file"
            )
        self._account.restore(state.cash, state.commissions, state.day_start_equity, state.holdings)
        self._restored_contracts = list(state.contracts)
        # A new run tag for this run's execution ids, unlike any the state holds (ids never repeat).
        used_tags = {exec_id_tag(e.exec_id) for e in state.executions}
        tag = self._ids.exec_tag
        while tag in used_tags:
            tag = new_exec_id_tag()
        self._ids = IdAllocator(dict(state.last_order_id), state.last_perm_id, state.last_exec_seq, tag)
        self._executions = list(state.executions)
        # the month's traded volume (tiered pricing) is what the saved executions add up to
        self._costs.replay(sorted((self._aware(e.time), e.shares) for e in self._executions))
        self.resumed_market_time = state.market_time
        self._orders = {r.key: r for r in state.orders}
        triggered = set(state.triggered)
        for record in self._orders.values():
            if not record.is_done:
                self._engine.add(self._working(record, record.key in triggered))
        for group, fraction in group_fractions(self._orders.values()).items():
            self._engine.set_group_done(group, fraction)
        for contract, position in state.holdings:
            if position.last_price:
                self._last_price[contract.symbol] = position.last_price
        log.info(
            "resumed account %s from %s: %d open orders, %d executions",
            self.account_id,
            self._state_file,
            len(self.open_orders()),
            len(self._executions),
        )


def _order_type(text: str) -> IbOrderType | None:
    normalized = " ".join(text.upper().replace("STPLMT", "STP LMT").split())
    try:
        return IbOrderType(normalized)
    except ValueError:
        return None


def _auction(record: SimOrder) -> str:
    if record.tif is TimeInForceCode.OPG:
        return "open"
    return "close" if record.order_type.on_close else ""


def _tif(text: str) -> TimeInForceCode:
    try:
        return TimeInForceCode(text.strip().upper())
    except ValueError:
        return TimeInForceCode.DAY  # empty: IB's default (anything else was refused before)


def _positive(value: float | None) -> bool:
    price = finite_or_none(value)
    return price is not None and price > 0
