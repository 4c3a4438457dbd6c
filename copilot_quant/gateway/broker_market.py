"""The simulated broker's reaction to the market: each price matches the working orders of its symbol
(fills, triggered stops, trailing stops, OCA reductions, a missed opening auction) and marks the account;
the session's end runs the closing auction and expires DAY orders; the clock expires GTD orders; an IOC
order matches the current price at once.

Part of :class:`~copilot_quant.gateway.broker.SimBroker` (a mixin; the broker owns the state declared
below). Placing orders is in :mod:`.broker_placement`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from copilot_quant.gateway.account import Account
from copilot_quant.gateway.broker_events import (
    AccountChanged,
    BrokerEvent,
    CommissionReported,
    ExecutionReported,
    OrderUpdated,
)
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.fills import book_fill
from copilot_quant.gateway.instrument_contracts import contract_calendar
from copilot_quant.gateway.matching import (
    AuctionMissed,
    FillIntent,
    MatchingEngine,
    OcaReduced,
    StopTriggered,
)
from copilot_quant.gateway.orders import (
    ExecutionRecord,
    IbStatus,
    IdAllocator,
    SimOrder,
    TimeInForceCode,
)
from copilot_quant.model.cost_meter import CostMeter

__all__ = ["BrokerMarket"]

log = logging.getLogger("copilot_quant.gateway.broker")  # the broker's logger, as before the split

Key = tuple[int, int]


class BrokerMarket:
    """Prices, auctions and expiries, for :class:`~copilot_quant.gateway.broker.SimBroker`."""

    _orders: dict[Key, SimOrder]
    _executions: list[ExecutionRecord]
    _engine: MatchingEngine
    _account: Account
    _ids: IdAllocator
    _clock: Callable[[], datetime]
    _last_price: dict[str, float]
    _opened: set[str]
    price_source: Callable[[str], float | None] | None

    if TYPE_CHECKING:  # the broker's and its other parts', which define them

        def _emit(self, event: BrokerEvent) -> None: ...
        def _aware(self, time: datetime) -> datetime: ...
        def _save(self) -> None: ...
        def _finish_cancel(self, record: SimOrder, why: str, when: datetime, *, report_202: bool) -> None: ...
        def open_orders(self, client_id: int | None = None) -> list[SimOrder]: ...
        def _meter_for(self, contract: ContractInfo) -> CostMeter: ...
        def _bracket_of(self, record: SimOrder) -> Key | None: ...
        def _sync_bracket(self, parent_key: Key, when: datetime, *, offer: bool = True) -> None: ...

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
    def use_ticks(self, tick_of: Callable[[str], float | None]) -> None:
        """Quote and fill each symbol on its own tick (``tick_of``: a future's, a pair's; None for a stock,
        on the stocks' grid): a spread is that many of its ticks, as in a backtest."""
        self._engine.tick_of = tick_of

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
