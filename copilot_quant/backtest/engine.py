"""BacktestEngine: run strategies over historical bars, honestly and fast.

Timing model — **orders returned at bar t execute during bar t+1**:

* ``on_data(timestamp, data)`` is called after bar *t* closed; ``data`` holds bars ``<= t`` only (a
  view of them, no copy), so a strategy can never see bar *t+1*.
* Market orders fill at bar *t+1*'s open, moved by the slippage model. Limit, stop and stop-limit
  orders are matched against bar *t+1*'s intrabar path with gap handling (see
  :mod:`copilot_quant.backtest.execution`). With ``fill_at='close'`` every new order is first offered
  bar *t*'s close (market orders fill there, marketable limits and triggered stops too); what does not
  execute then works from bar *t+1* as usual.
* ``volume_limit`` (a fraction of each bar's volume, e.g. ``0.1``; default ``None`` = fill any size)
  caps what fills per bar and symbol: orders share ``floor(volume_limit × volume)`` shares of bar *t+1*
  in the order they execute on its path (submission order at the same point — e.g. several market
  orders at the open), and what is left stays ``PARTIALLY_FILLED`` and tries again on later bars by the
  same rules (a market remainder at the next open, a limit only where marketable, a triggered stop as a
  market order). Each partial execution is its own :class:`~copilot_quant.backtest.orders.Fill`. A bar
  with no volume fills nothing. Only the bar an execution happens in is used, and it closed after the
  order was placed; see :mod:`copilot_quant.backtest.participation` for the whole rule, which the
  simulated gateway applies too.
* DAY orders that have not filled by the end of the session (exchange-zone day) they worked in
  expire (with their unfilled remainder, when partly filled); GTC orders keep working across bars.
  Orders still working when the data ends are cancelled. Every order, including rejected, expired
  and cancelled ones, is in ``result.orders`` with its status and reason.
* ``strategy.cancel(order_or_id)`` is immediate: the order is ``CANCELLED`` ("cancelled by the
  strategy") when the call returns, so a cancel from ``on_data`` at bar *t* is in force before bar *t+1*
  is matched; from ``on_fill`` the order is also skipped for the rest of the bar being matched.
  ``strategy.open_orders()`` lists the strategy's own orders still working, in submission order.
* ``strategy.modify(order_or_id, limit_price=..., quantity=...)`` changes a working order's terms in
  place (same order, same id): when it returns the order has them, and it executes by them from the next
  bar on — a modification from ``on_data`` at bar *t* is in force when bar *t+1* is matched; one from
  ``on_fill`` while bar *t* is matched takes the order out of the rest of bar *t* (the strategy has not
  seen the bar's later prices). A filled order, one no longer working, or a quantity below what filled
  changes nothing and gets a named :class:`~copilot_quant.model.modify.ModifyOutcome`.
* The equity curve has one value per bar, recorded after that bar's fills and marked at its close,
  indexed by the bar's UTC timestamp. A fill's ``timestamp`` is the stamp of the bar it happened in.
* While bar *t+1*'s orders execute, ``on_fill`` and the buying-power check see only what was known
  then: positions are valued at bar *t*'s close (a symbol that just traded at its fill price), never
  at bar *t+1*'s close.

Data shape: one symbol → flat columns ``Open, High, Low, Close, Volume``; several → MultiIndex
``(Metric, Symbol)``. Beware the guide's ``'Close' in data.columns`` test: with a MultiIndex it is
also ``True`` (pandas matches level 0) and ``data['Close']`` is then a frame with one column per
symbol, so the guide's ``SimpleMovingAverage`` raises "truth value of a Series is ambiguous" on every
bar. The engine records each such error (with a hint naming ``data[('Close', 'AAPL')]``) and trades
nothing for that strategy; :mod:`copilot_quant.examples.sma_cross` shows the safe form.

Several strategies share one account (cash, buying power): each bar they are called in the order they
were added, and each fill goes to the ``on_fill`` of the strategy that created the order and to that
strategy's own book, which is what its ``self.positions``/``self.cash``/``self.equity`` read (see
:mod:`copilot_quant.backtest.books`). ``result`` is the account's; ``result.strategies[name]`` each
strategy's, and they add up to it. An exception in a strategy hook is logged, counted and stored in
``result.errors`` (and its strategy's result); the run and the other strategies continue.

Fast path: when every strategy is a :class:`~copilot_quant.backtest.strategy.FastStrategy`, the
engine computes ``indicator_frame(data)`` once, checks that it is causal by recomputing it on a
prefix (a :class:`~copilot_quant.errors.StrategyError` names the offending indicator), then loops
over plain Python lists calling ``on_bar(timestamp, *values)``: a float per ``Series`` indicator, a
:class:`~copilot_quant.backtest.indicators.SymbolValues` (``fast['AAPL']``) per per-symbol ``DataFrame``
indicator. Orders and fills are the same as on the pandas path, the volume limit included.

Portfolios: ``data`` is a :class:`~copilot_quant.backtest.window.BarWindow` over bars stored as one block
per dtype, so ``data[('Close', sym)]`` costs about what it does on a one-symbol frame; before each fill the
broker's positions are marked incrementally (:mod:`copilot_quant.backtest.marking`), so a fill costs the
same whatever the number of symbols.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from itertools import count
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.accounts import InstrumentAccounts
from copilot_quant.backtest.benchmark import BUY_AND_HOLD, resolve_benchmark
from copilot_quant.backtest.books import (
    AccountView,
    StrategyBooks,
    StrategyView,
    allocate_capital,
    check_capital,
    result_keys,
)
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.causality import causal_indicator_frame
from copilot_quant.backtest.indicators import bar_values
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.marking import BrokerMarks
from copilot_quant.backtest.multi_asset import MultiAssetLedger, RunAccounting, margin_calls, run_accounts
from copilot_quant.backtest.order_book import OrderBook, WorkingOrder
from copilot_quant.backtest.order_requests import cancel_order, expiry_bar, modify_order
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.rolls import ContinuousRouter, Expiries, check_roll_days
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.data.dates import bar_label, resolve_range, slice_range
from copilot_quant.errors import ConfigError, DataError, StrategyError
from copilot_quant.model.costs import CommissionModel, SlippageModel
from copilot_quant.model.fill_rules import Execution
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.modify import ModifyOutcome
from copilot_quant.model.orders import Order, OrderStatus, Position, TimeInForce
from copilot_quant.model.participation import check_volume_limit
from copilot_quant.model.ports import IDataFeed
from copilot_quant.model.spread import grid_frame, spread_of

__all__ = ["FILL_AT", "BacktestEngine", "ProgressCallback"]

log = logging.getLogger(__name__)

#: Accepted values of ``fill_at``.
FILL_AT = ("next_open", "close")

#: ``progress(bars_done, bars_total)``, called about a hundred times per run and once at the end.
ProgressCallback = Callable[[int, int], None]

_TRAP_HINT = (
    " — hint: with several symbols the data has (Metric, Symbol) MultiIndex columns, so "
    "'Close' in data.columns is True but data['Close'] is a DataFrame with one column per symbol; "
    "select one series with data[('Close', 'AAPL')]"
)


class BacktestEngine:
    """Backtest one or more strategies on one or more symbols; see the module docstring for timing.

    Args:
        initial_capital: starting cash.
        data_provider: any :class:`~copilot_quant.backtest.interfaces.IDataFeed`.
        commission: a rate (``0.001`` = 0.1 %), ``'ibkr-tiered'`` / ``'ibkr-fixed'``, or a commission model
            (e.g. ``PerShareCommission()``, ``TieredCommission()``).
        slippage: a rate (``0.0005`` = 0.05 %) or a slippage model.
        fill_at: ``'next_open'`` (default) or ``'close'``.
        allow_short: whether sells may exceed the position held.
        broker: a :class:`SimpleBroker` to use instead of building one from the arguments above (it
            is used as-is, so its state carries over between runs).
        interval: bar interval asked of the data provider (``'1d'``, ``'1m'`` ...).
        check_causality: verify fast-path indicators on a prefix (turn off only for trusted code).
        volume_limit: at most this fraction of each bar's volume fills, per symbol, summed over its
            orders (0 < x <= 1; ``None``, the default, fills any size). Needs a ``Volume`` column.
        instruments: what the symbols are (:class:`~copilot_quant.model.instruments.InstrumentRegistry`),
            or :class:`~copilot_quant.backtest.accounts.InstrumentAccounts` to set futures/forex costs and
            margins too. Default: the standard registry, one-digit contract years read against the run's
            start. Futures and forex follow :mod:`copilot_quant.backtest.accounts`; ``commission`` and
            ``slippage`` apply to stocks (slippage to every kind). Margin calls are in ``result.margin_calls``.
        roll_days: a continuous future (``"MES"``) trades its front contract until this many weekdays
            before the contract's last trade date, then the next one (see :mod:`copilot_quant.backtest.rolls`).
        auto_roll: at each roll, move the positions held in the old contract into the new one.
    """

    def __init__(
        self,
        initial_capital: float = 100_000.0,
        data_provider: IDataFeed | None = None,
        commission: float | str | CommissionModel | None = 0.001,
        slippage: float | SlippageModel | None = 0.0005,
        *,
        fill_at: str = "next_open",
        allow_short: bool = True,
        broker: SimpleBroker | None = None,
        interval: str = "1d",
        check_causality: bool = True,
        max_logged_errors: int = 5,
        volume_limit: float | None = None,
        instruments: InstrumentRegistry | InstrumentAccounts | None = None,
        roll_days: int = 5,
        auto_roll: bool = False,
    ) -> None:
        if fill_at not in FILL_AT:
            raise ConfigError(f"fill_at must be one of {FILL_AT}, got {fill_at!r}")
        self.volume_limit = check_volume_limit(volume_limit)
        self.initial_capital = float(initial_capital)
        self.data_provider = data_provider
        self.commission = commission
        self.slippage = slippage
        self.fill_at = fill_at
        self.allow_short = allow_short
        self.interval = interval
        self._run_interval = interval  # the interval of the current (or last) run, for messages
        self.check_causality = check_causality
        self.max_logged_errors = max_logged_errors
        self._given_broker = broker
        self.instruments = instruments
        self.roll_days = check_roll_days(roll_days)
        self.auto_roll = bool(auto_roll)
        self._accounting: RunAccounting | None = None
        self._router: ContinuousRouter | None = None
        self._expiries: Expiries | None = None
        self.broker: SimpleBroker = broker if broker is not None else self._new_broker()
        self._strategies: list[Strategy] = []
        self._capitals: list[float | None] = []  # add_strategy(capital=) per strategy
        #: Strategy exceptions of the last run: ``{'timestamp', 'error', 'type', 'strategy', 'hook'}``.
        self.errors: list[dict[str, Any]] = []
        self.result: BacktestResult | None = None
        self._run_symbols: tuple[str, ...] = ()
        self._reset_run_state(None)

    # ------------------------------------------------------------------ setup
    def _new_broker(self) -> SimpleBroker:
        return SimpleBroker(self.initial_capital, self.commission, self.slippage, self.allow_short)

    def add_strategy(self, strategy: Strategy, *, capital: float | None = None) -> None:
        """Add a strategy. Call it again to run several strategies on one shared account.

        With several strategies (or a ``capital``), each has its own book: ``self.positions``,
        ``self.cash`` and ``self.equity`` are its own (see :class:`~copilot_quant.backtest.books.StrategyView`),
        ``capital`` is its share of the account's starting cash (default: an equal share of what the
        other strategies were not given), and ``result.strategies[name]`` is its result. Buying power and
        the account's cash stay shared.
        """
        if not isinstance(strategy, Strategy):
            raise StrategyError(
                f"add_strategy() needs a Strategy instance, got {type(strategy).__name__}; "
                "subclass copilot_quant.backtest.strategy.Strategy and pass an instance, e.g. MyStrategy()"
            )
        if any(s is strategy for s in self._strategies):
            raise StrategyError(f"{strategy.name} was already added; add a second instance instead")
        self._capitals.append(check_capital(capital))
        self._strategies.append(strategy)

    @property
    def strategies(self) -> list[Strategy]:
        return list(self._strategies)

    @property
    def total_errors(self) -> int:
        return len(self.errors)

    @property
    def fills(self) -> list[Any]:
        """Fills of the last (or current) run, in order."""
        return self._ledger.fills

    def _reset_run_state(self, market: MarketData | None) -> None:
        self._market = market
        self._accounting = RunAccounting.for_run(self.broker, market.symbols) if market is not None else None
        self._expiries = (
            Expiries.for_run(market.symbols, self._accounting.instruments, market.index)
            if market is not None and self._accounting is not None
            else None
        )
        self._ledger: Ledger | MultiAssetLedger = (
            MultiAssetLedger(self.broker, self._accounting)
            if self._accounting is not None
            else Ledger(self.broker.get_cash_balance())
        )
        self._broker_marks = (
            BrokerMarks(self.broker, market.marks, market.symbol_index) if market is not None else None
        )
        if self.volume_limit is not None and market is not None:
            self._book = OrderBook(market.volumes(), self.volume_limit)
        else:
            self._book = OrderBook()
        self._orders: list[Order] = []
        # order_id -> index of the strategy that submitted it (for cancel())
        self._order_owner: dict[str | None, int] = {}
        self._books: StrategyBooks | None = None  # per-strategy books, with several strategies
        self._bar = -1
        self._now: datetime | None = None
        # True while bar ``_bar``'s orders execute: only the bars before it have closed.
        self._executing = False
        self._logged_errors = 0

    # ------------------------------------------------------------------ account views
    def get_portfolio_value(self) -> float:
        """Equity now (during a run: at the current bar's close; after it: at the last close).

        While orders execute (``on_fill``) the current bar has not closed: positions are valued at the
        previous close, or at the fill price for a symbol that just traded.
        """
        market, bar = self._market, self._bar
        if market is None or bar < 0 or self._executing:
            return self.broker.get_account_value()
        if self._accounting is not None:
            return self._accounting.equity_at(self.broker, market.marks, bar, market.symbol_index)
        marks = market.marks[bar]
        value = self.broker.get_cash_balance()
        for symbol, k in market.symbol_index.items():
            qty = self.broker.position_quantity(symbol)
            if qty:
                value += qty * float(marks[k])
        return value

    def account_cash(self) -> float:
        """The account's cash now (the broker's)."""
        return self.broker.get_cash_balance()

    def account_position(self, symbol: str) -> float:
        """The account's signed quantity in ``symbol`` now (0 when flat); for a continuous future, the sum
        over its contracts."""
        router = self._router
        if router is not None and symbol in router.roots:
            return router.position(symbol, {s: p.quantity for s, p in self.broker.get_positions().items()})
        return self.broker.position_quantity(symbol)

    def get_positions(self) -> dict[str, Position]:
        """Open positions (snapshots) marked at the current (or last) bar's close."""
        positions = self.broker.get_positions()
        market, bar = self._market, self._bar
        if market is not None and bar >= 0 and not self._executing:
            for symbol, pos in positions.items():
                k = market.symbol_index.get(symbol)
                if k is not None and not np.isnan(market.marks[bar, k]):
                    pos.update_unrealized_pnl(float(market.marks[bar, k]))
        return positions

    # ------------------------------------------------------------------ run
    def run(
        self,
        start_date: Any = None,
        end_date: Any = None,
        symbols: Sequence[str] | str | None = None,
        *,
        interval: str | None = None,
        data: pd.DataFrame | None = None,
        progress: ProgressCallback | None = None,
        benchmark: str | None = BUY_AND_HOLD,
    ) -> BacktestResult:
        """Backtest every added strategy over ``symbols`` in ``[start_date, end_date]``.

        Bars come from ``data_provider``, or from ``data`` when given (a bar frame: flat columns for
        one symbol, ``(Metric, Symbol)`` MultiIndex for several; it is cut to the date range).
        Naive dates are read in America/New_York; an end date at midnight includes that day.
        ``progress(done, total)`` is called as bars are processed. ``benchmark`` is what the result is
        compared with (reporting only; see :mod:`copilot_quant.backtest.benchmark`): buy-and-hold of the
        traded symbols (the default), a ticker such as ``"SPY"`` (loaded from ``data_provider`` when it is
        not traded) or ``None``.
        """
        if not self._strategies:
            raise ConfigError("no strategy to run; call engine.add_strategy(MyStrategy()) before run()")
        names = _symbol_list(symbols)
        lo, hi = resolve_range(start_date, end_date)
        self._run_interval = interval or self.interval
        frame = self._load(names, lo, hi, self._run_interval, data)
        if (
            spread_of(self.broker.slippage_model) is not None
        ):  # the spread's touch is on the tick grid: so are bars
            frame = grid_frame(frame)
        if self._given_broker is None:
            self.broker = self._new_broker()
        if self._given_broker is None or self.broker.accounts is None:
            self.broker.use_instruments(
                run_accounts(self.instruments, _reference_day(lo, frame), self.commission)
            )
        self.errors = []
        accounts = self.broker.accounts
        self._router = (
            ContinuousRouter.for_run(
                accounts.registry, _frame_symbols(frame, names), pd.DatetimeIndex(frame.index), self.roll_days
            )
            if accounts is not None and len(frame)
            else None
        )
        extra = (
            self._router.load(frame, self.data_provider, lo, hi, self._run_interval) if self._router else None
        )
        market = MarketData(frame, names or None, extra) if len(frame) else None
        compared = (
            resolve_benchmark(
                benchmark,
                market.close_frame()[market.visible],
                lambda symbol: self._benchmark_closes(symbol, lo, hi, interval or self.interval),
            )
            if market is not None
            else None
        )
        self._reset_run_state(market)
        self._run_symbols = tuple(market.visible if market is not None else names)
        self._bind_views()
        self._call_start_hooks()
        if market is not None:
            fast = all(isinstance(s, FastStrategy) for s in self._strategies)
            if fast and len(self._strategies) == 1 and self._router is None and self._expiries is None:
                self._loop_fast(market, progress)
            else:
                self._loop(market, progress)
            cancelled = self._book.cancel_all("the backtest ended while the order was still working")
            if cancelled:
                log.info("%d order(s) still working at the end of the data were cancelled", len(cancelled))
        self._call_stop_hooks()
        self.result = self._result(market, names, lo, hi)
        self.result.benchmark = compared
        return self.result

    def _bind_views(self) -> None:
        """One strategy reads the account; several (or one given ``capital``) each read their own book."""
        strategies = self._strategies
        if len(strategies) == 1 and self._capitals[0] is None:
            strategies[0].bind(AccountView(self, 0))
            return
        names = [s.name for s in strategies]
        if self._accounting is not None:
            raise ConfigError(
                "several strategies (or add_strategy(capital=...)) on futures or forex are not supported yet: "
                "their per-strategy books count stock cash only; run one strategy per backtest"
            )
        capitals = allocate_capital(self.broker.get_cash_balance(), self._capitals, names)
        books = self._books = StrategyBooks(capitals, names)
        for k, strategy in enumerate(strategies):
            strategy.bind(StrategyView(self, books, k))

    def _benchmark_closes(
        self, symbol: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None, interval: str
    ) -> pd.Series:
        """A benchmark symbol the run does not trade: its closes from the data provider (reporting only)."""
        if self.data_provider is None:
            raise ConfigError(
                f"benchmark {symbol!r} is not one of the run's symbols and there is no data_provider to load "
                "it from; pass data_provider=... to BacktestEngine, benchmark='buy_and_hold' or benchmark=None"
            )
        try:
            bars = self.data_provider.get_historical_data(symbol, lo, hi, interval)
        except DataError as exc:  # say it is the benchmark that could not be loaded, not a traded symbol
            raise type(exc)(f"benchmark {symbol}: {exc}") from exc
        closes = bars["Close"].astype("float64")
        if isinstance(closes.index, pd.DatetimeIndex) and closes.index.tz is not None:
            closes = closes.tz_convert("UTC")
        return closes

    def _load(
        self,
        names: list[str],
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        interval: str,
        data: pd.DataFrame | None,
    ) -> pd.DataFrame:
        if data is not None:
            frame = data
            if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
                frame = slice_range(frame.tz_convert("UTC"), lo, hi)
            return frame
        if self.data_provider is None:
            raise ConfigError(
                "no data: pass data_provider=... to BacktestEngine (e.g. SampleDataProvider()) "
                "or a bar frame as run(..., data=frame)"
            )
        if not names:
            raise ConfigError("no symbols to backtest; pass symbols=['AAPL'] to run()")
        if len(names) == 1:
            return self.data_provider.get_historical_data(names[0], lo, hi, interval)
        return self.data_provider.get_multiple_symbols(names, lo, hi, interval)

    # ------------------------------------------------------------------ bar loops
    def _loop(self, market: MarketData, progress: ProgressCallback | None) -> None:
        """The general loop: pandas history views for ``Strategy``, plain values for ``FastStrategy``."""
        callers = [self._caller(k, s, market) for k, s in enumerate(self._strategies)]
        book, submit = self._book, self._submit
        execute_bar = book.bar_executor()
        opens, highs, lows, closes = market.opens, market.highs, market.lows, market.closes
        session_end = market.session_end
        n = len(market)
        step = max(n // 100, 1)
        for i, ts in enumerate(market.stamps()):
            self._bar, self._now = i, ts
            if book:
                self._executing = True
                execute_bar(i, opens, highs, lows, closes, bool(session_end[i]), self._book_fill)
                self._executing = False
            for k, call in enumerate(callers):
                try:
                    orders = call(i, ts)
                except Exception as exc:
                    self._record_error(k, exc, "on_data", ts)
                    continue
                if orders:
                    submit(k, orders, i, ts)
            if progress is not None and (i + 1) % step == 0:
                progress(i + 1, n)
        if progress is not None:
            progress(n, n)

    def _caller(self, k: int, strategy: Strategy, market: MarketData) -> Callable[[int, datetime], Any]:
        if isinstance(strategy, FastStrategy):
            rows = list(bar_values(self._indicator_frame(strategy, market)))
            on_bar = strategy.on_bar
            return self._after_rolls(k, lambda i, ts: on_bar(ts, *rows[i]))
        on_data, history = strategy.on_data, market.history
        return self._after_rolls(k, lambda i, ts: on_data(ts, history(i)))

    def _after_rolls(self, k: int, call: Callable[[int, datetime], Any]) -> Callable[[int, datetime], Any]:
        """``call``, preceded by the bar's expiries and rolls (and the automatic roll's orders) when the run
        trades futures."""
        if self._router is None and self._expiries is None:
            return call

        def rolls_then_call(i: int, ts: datetime) -> Any:
            self._roll(k, i, ts)
            return call(i, ts)

        return rolls_then_call

    def _loop_fast(self, market: MarketData, progress: ProgressCallback | None) -> None:
        """One FastStrategy: a tight loop over lists of floats (no pandas, no per-bar allocation)."""
        strategy = self._strategies[0]
        if not isinstance(strategy, FastStrategy):  # run() only picks this loop for one FastStrategy
            raise StrategyError(f"{strategy.name} is not a FastStrategy")
        # plain floats (and per-symbol rows of them), converted lazily in chunks: the loop never touches
        # numpy or pandas
        rows = bar_values(self._indicator_frame(strategy, market))
        on_bar, book, submit = strategy.on_bar, self._book, self._submit
        pending = book.pending
        execute_bar = book.bar_executor()
        opens, highs, lows, closes = market.opens, market.highs, market.lows, market.closes
        session_end = market.session_end
        n = len(market)
        step = max(n // 100, 1)
        next_report = step if progress is not None else n + 1  # compared with i each bar
        stamps = market.iter_stamps()
        frozen = _freeze_gc()
        try:
            for i, ts, values in zip(count(), stamps, rows):
                if i == next_report:  # i bars are done
                    progress(i, n)  # type: ignore[misc]  # next_report stays beyond n without a callback
                    next_report += step
                self._bar = i  # the strategy's account view reads it
                if pending:
                    self._now = ts
                    self._executing = True
                    execute_bar(i, opens, highs, lows, closes, bool(session_end[i]), self._book_fill)
                    self._executing = False
                try:
                    orders = on_bar(ts, *values)
                except Exception as exc:
                    self._now = ts
                    self._record_error(0, exc, "on_bar", ts)
                    continue
                if orders:
                    self._now = ts
                    submit(0, orders, i, ts)
        finally:
            if frozen:
                gc.unfreeze()
        self._bar = n - 1
        self._now = market.index[-1].to_pydatetime()
        if progress is not None:
            progress(n, n)

    def _indicator_frame(self, strategy: FastStrategy, market: MarketData) -> pd.DataFrame:
        """The strategy's indicators over the whole history, after a causality check."""
        return causal_indicator_frame(strategy, market.frame, check=self.check_causality)

    # ------------------------------------------------------------------ orders and fills
    def _submit(self, owner: int, orders: Any, bar: int, ts: datetime) -> None:
        strategy = self._strategies[owner]
        if isinstance(orders, Order):
            orders = [orders]
        if not isinstance(orders, list | tuple):
            self._record_error(
                owner,
                StrategyError(
                    f"{strategy.name} returned {type(orders).__name__}; return a list of Order objects or None"
                ),
                "on_data",
                ts,
            )
            return
        market = self._market
        if market is None:  # only the bar loops submit, and they run with a market
            return
        entries = {o.parent_id for o in orders if isinstance(o, Order) and o.parent_id}
        for order in orders:
            if not isinstance(order, Order) or order.status is not OrderStatus.CREATED:
                what = (
                    f"an order that was already submitted ({order.order_id}); build a new Order or use order.copy()"
                    if isinstance(order, Order)
                    else f"a {type(order).__name__} in its order list; return Order objects"
                )
                self._record_error(owner, StrategyError(f"{strategy.name} returned {what}"), "on_data", ts)
                continue
            if order.timestamp is None:
                order.timestamp = ts
            if self._router is not None:
                self._router.route(order, bar, self.broker.position_quantity)
            self._orders.append(order)
            self._order_owner[order.order_id] = owner
            if self._books is not None:
                self._books.orders[owner].append(order)
            k = market.symbol_index.get(order.symbol)
            if k is None:
                self.broker.reject(
                    order,
                    f"no price data for {order.symbol} in this backtest (symbols: {', '.join(market.symbols)}); "
                    "add it to run(symbols=[...])",
                )
                continue
            last = self._expiries.expired(order.symbol, bar) if self._expiries is not None else None
            if last is not None:
                self.broker.reject(order, f"{order.symbol} stopped trading on {last} (its last trade date)")
                continue
            working = WorkingOrder(order, owner, k, bar + 1)
            if order.good_till is not None:
                working.expires_bar = self._expiry_bar(order.good_till)
                if (
                    working.expires_bar is not None and working.expires_bar <= bar
                ):  # as IB: a date that has passed is refused
                    self.broker.reject(order, f"good_till {order.good_till} is not after now ({ts})")
                    continue
            refused = self._book.admit(working, float(market.closes[bar, k]))
            if refused is not None:
                self.broker.reject(order, refused)
                continue
            if entries and order.order_id in entries:
                self._book.open_bracket(working)  # its exits follow in this list
            immediate = order.time_in_force == TimeInForce.IOC
            if self.fill_at == "close" or immediate:
                price = float(market.closes[bar, k])
                if price == price and self._book.try_now(working, price, self._book_fill, bar):  # noqa: PLR0124 - NaN test
                    continue
                if order.status.is_done:
                    continue
                if immediate:  # what the current price did not fill is cancelled at once
                    self._book.finish_immediate(order)
                    continue
            self._book.add(working)

    def _cancel(self, owner: int, order: Order | str) -> None:
        """``strategies[owner].cancel(order)``: see the module docstring for the timing."""
        cancel_order(self, owner, order)

    def _modify(self, owner: int, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
        """``strategies[owner].modify(order, **changes)``: new terms from the next bar on (see the module doc)."""
        return modify_order(self, owner, order, changes)

    def _expiry_bar(self, good_till: datetime | None) -> int | None:
        return expiry_bar(self._market, good_till)

    def _book_fill(self, working: WorkingOrder, execution: Execution, quantity: float | None = None) -> None:
        """Book ``quantity`` of the order (None: all that is left) through the broker; tell its strategy."""
        order, broker, now = working.order, self.broker, self._now
        if now is None:  # only the bar loops book fills, and they set the bar's time first
            return
        marks = self._broker_marks
        if marks is not None:  # the buying-power check values positions at the last closed bar
            marks.mark(self._bar - 1 if self._executing else self._bar)
        fill = broker.fill(order, execution.price, now, slippage=execution.slippage, quantity=quantity)
        if fill is None:
            return
        if marks is not None:
            marks.filled(order.symbol, working.symbol_index)
        self._ledger.record(
            self._bar,
            working.symbol_index,
            fill,
            broker.get_cash_balance(),
            broker.position_quantity(order.symbol),
        )
        if self._books is not None:
            self._books.record_fill(working.owner, self._bar, working.symbol_index, fill)
        try:
            self._strategies[working.owner].on_fill(fill)
        except Exception as exc:
            self._record_error(working.owner, exc, "on_fill", now)

    def _roll(self, owner: int, bar: int, ts: datetime) -> None:
        """At ``bar``: expired contracts' positions settled, then the rolls — the automatic roll's orders
        (if on), then the strategy's ``on_roll``."""
        if self._expiries is not None:
            for due in self._expiries.due(bar):
                self._settle(owner, bar, ts, due)
        router = self._router
        if router is None:
            return
        for roll in router.rolls_at(bar, ts):
            if self.auto_roll:
                held = {s: p.quantity for s, p in self.broker.get_positions().items()}
                roll.orders = router.roll_orders(roll, held)
                if roll.orders:
                    self._submit(owner, roll.orders, bar, ts)
            log.info("%s rolls from %s to %s at %s", roll.symbol, roll.old, roll.new, ts)
            try:
                self._strategies[owner].on_roll(roll)
            except Exception as exc:
                self._record_error(owner, exc, "on_roll", ts)

    def _settle(self, owner: int, bar: int, ts: datetime, due: tuple[str, int, date]) -> None:
        """Close what is held of a contract that stopped trading (``due``: symbol, column, last trade
        date), at its last close."""
        symbol, k, last = due
        market, quantity = self._market, self.broker.position_quantity(symbol)
        if market is None or not quantity:
            return
        price = float(market.marks[bar - 1, k])
        order = Order(
            symbol, abs(quantity), side="sell" if quantity > 0 else "buy", tag="expiry", timestamp=ts
        )
        self._orders.append(order)
        self._order_owner[order.order_id] = owner
        log.info("%s expired on %s: %g settled at %s", symbol, last, quantity, price)
        self._book_fill(WorkingOrder(order, owner, k, bar), Execution(price, slippage=False))

    # ------------------------------------------------------------------ hooks and errors
    def _call_start_hooks(self) -> None:
        for strategy in self._strategies:
            for hook in (strategy.initialize, strategy.on_start):
                try:
                    hook()
                except Exception as exc:
                    raise StrategyError(
                        f"{strategy.name}.{hook.__name__}() failed: {type(exc).__name__}: {exc}"
                    ) from exc

    def _call_stop_hooks(self) -> None:
        for k, strategy in enumerate(self._strategies):
            for hook in (strategy.on_stop, strategy.finalize):
                try:
                    hook()
                except Exception as exc:
                    self._record_error(k, exc, hook.__name__, self._now)

    def _record_error(self, owner: int, exc: Exception, hook: str, ts: datetime | None) -> None:
        strategy = self._strategies[owner]
        message = str(exc)
        market = self._market
        if (
            market is not None
            and isinstance(market.frame.columns, pd.MultiIndex)
            and "truth value of a" in message
            and "ambiguous" in message
        ):
            message += _TRAP_HINT
        error = {
            "timestamp": ts,
            "error": message,
            "type": type(exc).__name__,
            "strategy": strategy.name,
            "hook": hook,
        }
        self.errors.append(error)
        if self._books is not None:
            self._books.errors[owner].append(error)
        if self._logged_errors < self.max_logged_errors:
            self._logged_errors += 1
            when = bar_label(ts, self._run_interval)
            log.error("%s.%s failed at %s: %s", strategy.name, hook, when, message, exc_info=exc)
        else:
            log.debug(
                "%s.%s failed at %s: %s", strategy.name, hook, bar_label(ts, self._run_interval), message
            )

    # ------------------------------------------------------------------ result
    def _result(
        self, market: MarketData | None, names: list[str], lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> BacktestResult:
        if self.errors:
            log.warning("%d strategy error(s) during the backtest; see result.errors", len(self.errors))
        if market is None:
            empty = pd.DatetimeIndex([], tz="UTC", name="timestamp")
            equity = pd.Series([], index=empty, dtype=float, name="equity")
            cash = pd.Series([], index=empty, dtype=float, name="cash")
            prices = pd.DataFrame(index=empty, columns=pd.Index(names), dtype=float)
            first = last = None
        else:
            equity, cash = self._ledger.curves(market.marks, market.index)
            prices = market.close_frame()
            first, last = market.index[0], market.index[-1]
        now = datetime.now(UTC)
        start = lo if lo is not None else first if first is not None else now
        end = hi if hi is not None else last if last is not None else now
        result = BacktestResult(
            strategy_name=" + ".join(s.name for s in self._strategies),
            start_date=start,
            end_date=end,
            initial_capital=self._ledger.initial_cash,
            equity_curve=equity,
            cash_curve=cash,
            fills=list(self._ledger.fills),
            orders=list(self._orders),
            positions=self.get_positions(),
            prices=prices,
            errors=list(self.errors),
        )
        if market is not None and isinstance(self._ledger, MultiAssetLedger):
            result.margin_calls = margin_calls(equity, self._ledger.maintenance_curve(market.marks))
            result.cash_balances = self.broker.cash_balances()
            if self._accounting is not None:
                result.multipliers = self._accounting.multipliers(market.symbols)
        keys = result_keys([s.name for s in self._strategies])
        books = self._books
        result.strategies = {keys[0]: result} if books is None else books.results(result, market, keys)
        return result


def _frame_symbols(frame: pd.DataFrame, names: list[str]) -> list[str]:
    """The symbols a run's bars are for: the ones asked for, else the frame's."""
    if names:
        return names
    if isinstance(frame.columns, pd.MultiIndex):
        return list(dict.fromkeys(frame.columns.get_level_values(1)))
    return []


def _reference_day(lo: pd.Timestamp | None, frame: pd.DataFrame) -> date:
    """The day a one-digit contract year is read against: the run's start."""
    if lo is not None:
        return lo.date()
    if len(frame) and isinstance(frame.index, pd.DatetimeIndex):
        return frame.index[0].date()
    return datetime.now(UTC).date()


def _freeze_gc() -> bool:
    """Move every object that exists now out of the garbage collector's sight for the bar loop.

    The loop's inputs (a million timestamps and indicator values) live for the whole run; without
    this, each full collection walks them again and costs tens of milliseconds. Objects created in the
    loop are collected as usual; ``gc.unfreeze()`` afterwards restores the previous state. Skipped if
    someone else froze objects already (unfreezing would undo their freeze).
    """
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def _symbol_list(symbols: Sequence[str] | str | None) -> list[str]:
    if symbols is None:
        return []
    if isinstance(symbols, str):
        symbols = [symbols]
    names = [str(s).strip().upper() for s in symbols]
    if any(not s for s in names):
        raise ConfigError(f"symbols must be non-empty tickers such as 'AAPL', got {list(symbols)!r}")
    return list(dict.fromkeys(names))
