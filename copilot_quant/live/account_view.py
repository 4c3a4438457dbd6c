"""The account as the engine knows it, and the read-only view a strategy gets of it.

:class:`AccountState` holds two pictures of the account. IB's snapshot (account value, cash, positions as
last read; the account value at the start of the trading day, which the daily-loss limit counts from)
serves the risk checks and the summary. The *ledger* is the account built from fills: IB's cash and
positions when the run started, plus every fill since; with the closes of the bar being decided on
(:class:`BarMarks`) it gives what a strategy sees, marked at that bar, exactly as a backtest marks it —
IB's own NetLiquidation is marked on IB's schedule and lags.

A strategy sees the account through :class:`StrategyView` (the
:class:`~copilot_quant.backtest.strategy.StrategyContext` it is bound to), snapshots only:

* ``self.positions`` — the strategy's own positions (its :class:`~copilot_quant.model.book.StrategyBook`:
  its fills, and those the journal says it left from earlier runs), marked at the bar's closes;
* ``self.cash`` / ``self.equity`` — with one strategy (and no ``capital=``), the account's cash, and that cash
  plus all of the account's positions at the bar's closes; with several strategies (or a ``capital=``),
  the strategy's own sleeve, as in a backtest: its capital share plus the cash its fills moved, and that
  plus its own positions at the bar's closes (capital + its net P&L). Buying power stays the account's.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from copilot_quant.brokers.broker_account import AccountSnapshot
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.errors import BrokerError, StrategyError
from copilot_quant.live.ledger import AccountLedger
from copilot_quant.model.modify import ModifyOutcome
from copilot_quant.model.orders import Order, Position

if TYPE_CHECKING:
    from copilot_quant.live.continuous import ContinuousSymbols
    from copilot_quant.live.strategy_slot import StrategySlot

__all__ = ["AccountState", "BarMarks", "StrategyView"]

log = logging.getLogger(__name__)

_EXCHANGE_ZONE = ZoneInfo(EXCHANGE_TZ)


def _day_span_ns(day: date) -> tuple[int, int]:
    """The UTC nanoseconds ``[start, end)`` of ``day`` in the exchange's zone (New York; DST included)."""
    start = datetime.combine(day, time(), tzinfo=_EXCHANGE_ZONE)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=_EXCHANGE_ZONE)
    return int(start.timestamp()) * 1_000_000_000, int(end.timestamp()) * 1_000_000_000


class BarMarks(Mapping[str, float]):
    """The closes of the bar a strategy decides on, by symbol (a symbol's last close when it has no bar
    there), read from that bar's data window only when a strategy asks: the hot path never pays for it."""

    __slots__ = ("_beside", "_symbols", "_values", "_window")

    def __init__(self) -> None:
        self._window: pd.DataFrame | None = None
        self._symbols: list[str] = []
        self._values: dict[str, float] | None = None
        self._beside: Mapping[str, float] | None = None

    def set(
        self, window: pd.DataFrame, symbols: list[str], beside: Mapping[str, float] | None = None
    ) -> None:
        """The bar's window; ``beside``: closes of symbols the strategy does not see (the contracts of a
        continuous future it trades)."""
        self._window, self._symbols, self._values, self._beside = window, symbols, None, beside

    def _closes(self) -> dict[str, float]:
        values = self._values
        if values is None:
            values = self._values = dict(self._beside or {})
            window = self._window
            if window is not None and len(window):
                column = window.columns.get_loc("Close")
                if isinstance(column, int):  # one symbol: read the cell, ~20 µs on a cold CPU (the column's
                    cell = window.iat[-1, column]  # Series would cost ~150, on the path to the bar's orders)
                    values[self._symbols[0]] = float(cell)  # type: ignore[arg-type]
                    return values
                closes = window["Close"]
                if isinstance(closes, pd.Series):
                    values[self._symbols[0]] = float(closes.iloc[-1])
                else:
                    for symbol in closes.columns:
                        column = closes[symbol].to_numpy(dtype="float64")
                        found = np.flatnonzero(~np.isnan(column))
                        if len(found):
                            values[str(symbol)] = float(column[found[-1]])
        return values

    def __getitem__(self, symbol: str) -> float:
        return self._closes()[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._closes())

    def __len__(self) -> int:
        return len(self._closes())


class AccountState:
    """IB's account value, cash and positions as last read (NaN / empty before the first read), and the
    ledger built from fills since the run started (see the module docstring)."""

    __slots__ = (
        "_day_span",
        "_pending",
        "_read_after",
        "cash",
        "daily_pnl",
        "day_start_equity",
        "equity_day",
        "ledger",
        "marks",
        "positions",
        "value",
    )

    def __init__(self) -> None:
        self.value = float("nan")
        self.cash = float("nan")
        self.positions: dict[str, Position] = {}
        self.day_start_equity: float | None = None
        self.equity_day: date | None = None
        #: The account's P&L since IB's trading day began (IB's ``reqPnL`` stream), or None when unknown:
        #: the daily-loss rail reads it first (account values lag by up to ~3 minutes at real IB).
        self.daily_pnl: float | None = None
        #: The account from fills: opened by :meth:`open_ledger` at start, None before.
        self.ledger: AccountLedger | None = None
        #: The closes of the bar being decided on.
        self.marks = BarMarks()
        #: A read of IB's account started by :meth:`prefetch`: (future, fills it covers, its settle).
        self._pending: tuple[concurrent.futures.Future[AccountSnapshot], int, float] | None = None
        #: How many fills the broker had handed over when the account was last read.
        self._read_after = 0
        #: ``(start, end, day)``: the trading day of the broker-clock instants in ``[start, end)`` ns, so that
        #: an account read on the path to a bar's orders asks the clock for the date once a day, not each time.
        self._day_span: tuple[int, int, date] | None = None

    def open_ledger(
        self, held: Mapping[str, float] | None = None, cash: float | None = None
    ) -> AccountLedger:
        """Start the ledger from IB's cash and positions as last read (call :meth:`refresh` first).

        ``held``/``cash``: what IB answered the reconciliation just now, which wins over the cached
        snapshot (IB's position and account pushes may still be on the way right after connecting); the
        snapshot still gives each position's cost and last price.
        """
        start_cash = self.cash if math.isfinite(self.cash) else (cash if cash is not None else 0.0)
        positions = dict(self.positions)
        if held is not None:
            positions = {s: _with_quantity(positions.get(s), s, q) for s, q in held.items() if q}
        self.ledger = AccountLedger(start_cash, positions.values())
        return self.ledger

    def strategy_cash(self) -> float:
        return self.ledger.cash_value(self.marks) if self.ledger is not None else self.cash

    def strategy_equity(self) -> float:
        return self.ledger.equity(self.marks) if self.ledger is not None else self.value

    def refresh(
        self,
        broker: LiveBrokerAdapter,
        trading_day: Callable[[], date],
        settle: float = 0.0,
        *,
        pnl: bool = False,
    ) -> bool:
        """Read IB's account in one trip to the loop thread; ``False`` (and the old values kept) if it fails.

        ``settle``: first wait up to that many seconds for IB's positions to include the fills delivered.
        ``pnl``: also read the day's P&L from IB's P&L stream (:attr:`daily_pnl`; None when IB sends none).
        """
        pending, self._pending = self._pending, None
        passed = broker.fills_passed
        try:
            if pending is not None and pending[1] == passed and pending[2] >= settle:
                snapshot = IBRuntime.result(pending[0], timeout=10)  # it covers every fill so far
            else:
                if pending is not None:
                    pending[0].cancel()
                snapshot = broker.account_snapshot(settle=settle)
            self.value, self.cash, self.positions = snapshot
        except (BrokerError, TimeoutError, ConnectionError) as exc:
            log.debug("account refresh failed: %s", exc)
            return False
        self._read_after = passed
        self._mark_day(trading_day())  # the exchange's date (New York), never the UTC one
        if pnl:
            self.daily_pnl = _daily_pnl(broker)
        return True

    def refresh_eager(
        self,
        broker: LiveBrokerAdapter,
        trading_day: Callable[[], date],
        *,
        pnl: bool = False,
        now_ns: int | None = None,
    ) -> bool:
        """:meth:`refresh` from the IB loop thread itself, from ib_async's caches (which hold every message
        IB sent before the one being handled); ``False`` (old values kept) if a value is not cached.

        ``now_ns``: the broker's clock that ``trading_day`` reads (the engine's bar clock), if known: the
        trading day is then that instant's date in New York, worked out once per day (a pandas time-zone
        conversion per read cost ~30 µs on the path from a bar to its orders)."""
        if pnl:
            self.daily_pnl = _daily_pnl_eager(broker, self.daily_pnl)
        self._pending = None
        try:
            snapshot = broker.account_snapshot_cached()
        except (BrokerError, ConnectionError) as exc:
            log.debug("account read failed: %s", exc)
            return False
        if snapshot is None:
            return False  # not cached: the worker's next refresh asks IB
        self.value, self.cash, self.positions = snapshot
        self._read_after = broker.fills_passed
        self._mark_day(self._day_at(trading_day, now_ns))
        return True

    def _day_at(self, trading_day: Callable[[], date], now_ns: int | None) -> date:
        """The trading day: ``trading_day()``, or with the broker's instant ``now_ns`` its date in the exchange's
        zone (what the bar clock's ``trading_day`` answers then), remembered until that date ends."""
        if now_ns is None:
            return trading_day()
        span = self._day_span
        if span is not None and span[0] <= now_ns < span[1]:
            return span[2]
        day = datetime.fromtimestamp(now_ns // 1_000_000_000, _EXCHANGE_ZONE).date()
        start, end = _day_span_ns(day)
        self._day_span = (start, end, day)
        return day

    def _mark_day(self, today: date) -> None:
        if self.equity_day != today and math.isfinite(self.value):
            # The fallback daily-loss baseline: the first account value seen each trading day.
            self.equity_day, self.day_start_equity = today, self.value

    def prefetch(self, broker: LiveBrokerAdapter, settle: float) -> None:
        """If fills arrived since the account was last read, start reading it now (waiting up to ``settle``
        seconds, on the loop, for IB's positions to include them) for the next :meth:`refresh` to collect:
        the trip to IB's loop thread then overlaps the caller's work (the worker builds the bar's data and
        waits for the fills' journal commits meanwhile). A fill arriving after the start makes
        :meth:`refresh` read again."""
        if self._pending is not None or broker.fills_passed == self._read_after:
            return
        passed = broker.fills_passed
        try:
            self._pending = (broker.start_account_snapshot(settle=settle), passed, settle)
        except (BrokerError, ConnectionError) as exc:
            log.debug("account prefetch failed: %s", exc)

    @property
    def known_value(self) -> float | None:
        return self.value if math.isfinite(self.value) else None


def _daily_pnl(broker: LiveBrokerAdapter) -> float | None:
    """The day's P&L from IB's P&L stream, or None when IB sends none (the rail then falls back)."""
    try:
        daily = broker.account_pnl().daily
    except (BrokerError, TimeoutError, ConnectionError) as exc:
        log.debug("no P&L from IB: %s", exc)
        return None
    return daily if math.isfinite(daily) else None


def _daily_pnl_eager(broker: LiveBrokerAdapter, known: float | None) -> float | None:
    """:func:`_daily_pnl` on the IB loop thread: ``known`` kept while IB's P&L stream has not answered."""
    try:
        done = broker.account_pnl_eager()
        if not done.done():
            return known
        daily = done.result().daily
    except (BrokerError, TimeoutError, ConnectionError) as exc:
        log.debug("no P&L from IB: %s", exc)
        return None
    return daily if math.isfinite(daily) else None


def _with_quantity(position: Position | None, symbol: str, quantity: float) -> Position:
    if position is None:
        return Position(symbol, quantity=quantity)
    snap = position.snapshot()
    snap.quantity = quantity
    return snap


class StrategyView:
    """What one strategy sees: ``self.positions``, ``self.cash``, ``self.equity`` (read-only), and its own
    working orders (``self.open_orders()``, ``self.cancel()``, ``self.modify()``).

    ``sleeve=False`` (one strategy, no ``capital=``): cash and equity are the account's ledger's. With
    ``sleeve=True`` (several strategies, or a ``capital``) they are the strategy's own book's, as in a
    backtest: its capital share plus the cash its fills moved, plus its positions at the bar's closes.
    """

    __slots__ = ("_account", "_cancel", "_continuous", "_modify", "_sleeve", "_slot", "_symbols")

    def __init__(
        self,
        slot: StrategySlot,
        account: AccountState,
        cancel: Callable[[StrategySlot, Order | str], None],
        symbols: tuple[str, ...] = (),
        *,
        sleeve: bool = False,
        modify: Callable[[StrategySlot, Order | str, Mapping[str, Any]], ModifyOutcome] | None = None,
        continuous: ContinuousSymbols | None = None,
    ) -> None:
        self._continuous = continuous
        self._slot = slot
        self._account = account
        self._cancel = cancel
        self._modify = modify
        self._sleeve = sleeve
        self._symbols = symbols

    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def position_quantity(self, symbol: str) -> float:
        """The strategy's signed quantity in ``symbol``; for a continuous future (``MES``), the sum over the
        root's contracts, as in a backtest."""
        book = self._slot.book
        continuous = self._continuous
        if continuous is not None and symbol in continuous.roots:
            return continuous.position(symbol, {s: p.quantity for s, p in book.positions().items()})
        return book.quantity(symbol)

    def positions(self) -> Mapping[str, Position]:
        book = self._slot.book
        book.mark_all(self._account.marks)
        return book.positions()

    def cash(self) -> float:
        if not self._sleeve:
            return self._account.strategy_cash()
        book = self._slot.book
        if book.holds_currencies:  # its yen or euros at the rates of the bar decided on, as in a backtest
            book.mark_all(self._account.marks)
        return book.cash

    def equity(self) -> float:
        if not self._sleeve:
            return self._account.strategy_equity()
        book = self._slot.book
        book.mark_all(self._account.marks)
        return book.equity

    def open_orders(self) -> list[Order]:
        return self._slot.open_orders()

    def cancel(self, order: Order | str) -> None:
        self._cancel(self._slot, order)

    def modify(self, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
        if self._modify is None:
            raise StrategyError(f"{self._slot.name}.modify(): this engine cannot modify orders")
        return self._modify(self._slot, order, changes)
