"""BacktestEngine: run strategies over historical bars, honestly and fast.

Timing model — **orders returned at bar t execute during bar t+1**:

* ``on_data(timestamp, data)`` is called after bar *t* closed; ``data`` holds bars ``<= t`` only (a
  view of them, no copy), so a strategy can never see bar *t+1*.
* **Spread (on by default).** Each bar quotes a bid/ask around its trades, its width estimated from the
  bars before it (``spread='auto'``, see :mod:`copilot_quant.model.spread`): market orders and triggered
  stops fill at the touch (buys at the ask, sells at the bid), limits when the quote crosses them, and
  bars are put on the tick grid. ``spread=None`` fills at the bars' prices (as backtrader does).
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
strategy's, and they add up to it — on futures and forex too, each book in USD by the account's rules, each
strategy's contracts rolled and settled on its own. An exception in a strategy hook is logged, counted and stored in
``result.errors`` (and its strategy's result); the run and the other strategies continue.

Fast path: when every strategy is a :class:`~copilot_quant.backtest.strategy.FastStrategy`, the
engine computes ``indicator_frame(data)`` once, checks that it is causal by recomputing it on a
prefix (a :class:`~copilot_quant.errors.StrategyError` names the offending indicator), then loops
over plain Python lists calling ``on_bar(timestamp, *values)`` (``on_bar(*values)`` when the strategy sets
``bar_timestamps = False``): a float per ``Series`` indicator, a
:class:`~copilot_quant.backtest.indicators.SymbolValues` (``fast['AAPL']``) per per-symbol ``DataFrame``
indicator. Orders and fills are the same as on the pandas path, the volume limit included; orders returned
at bar *t* still fill at bar *t+1*'s open at the earliest.

The engine's parts: the bar loops (:mod:`~copilot_quant.backtest.bar_loops`), the working orders
(:mod:`~copilot_quant.backtest.order_book`), the account (:mod:`~copilot_quant.backtest.broker`), the fill
record (:mod:`~copilot_quant.backtest.ledger`), strategy errors (:mod:`~copilot_quant.backtest.strategy_errors`),
the run's bars (:mod:`~copilot_quant.backtest.run_data`), the account reads
(:mod:`~copilot_quant.backtest.engine_account`), futures/forex rolls, expiries and account results
(:mod:`~copilot_quant.backtest.contract_events`) and the result (:mod:`~copilot_quant.backtest.run_result`);
this module wires them and submits orders.

Portfolios: ``data`` is a :class:`~copilot_quant.backtest.window.BarWindow` over bars stored as one block
per dtype, so ``data[('Close', sym)]`` costs about what it does on a one-symbol frame; before each fill the
broker's positions are marked incrementally (:mod:`copilot_quant.backtest.marking`), so a fill costs the
same whatever the number of symbols.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.accounts import InstrumentAccounts
from copilot_quant.backtest.bar_loops import BarLoops, ProgressCallback, RunClock
from copilot_quant.backtest.benchmark import BUY_AND_HOLD, resolve_benchmark
from copilot_quant.backtest.books import (
    AccountView,
    StrategyBooks,
    StrategyView,
    allocate_capital,
    check_capital,
)
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.causality import causal_indicator_frame
from copilot_quant.backtest.contract_events import add_account_results, roll_contracts
from copilot_quant.backtest.engine_account import AccountReads
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.marking import BrokerMarks
from copilot_quant.backtest.multi_asset import MultiAssetLedger, RunAccounting, run_accounts
from copilot_quant.backtest.order_book import OrderBook, WorkingOrder
from copilot_quant.backtest.order_intake import OrderIntake
from copilot_quant.backtest.order_requests import cancel_order, modify_order
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.rolls import ContinuousRouter, Expiries, check_roll_days
from copilot_quant.backtest.run_data import (
    PriorPrices,
    benchmark_closes,
    frame_symbols,
    load_bars,
    prior_prices,
    reference_day,
    symbol_list,
)
from copilot_quant.backtest.run_result import assemble_result
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.backtest.strategy_errors import StrategyErrors
from copilot_quant.data.dates import resolve_range
from copilot_quant.errors import ConfigError, StrategyError
from copilot_quant.model.costs import CommissionModel, SlippageModel, slippage_model
from copilot_quant.model.fill_rules import Execution
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.modify import ModifyOutcome
from copilot_quant.model.orders import Order
from copilot_quant.model.participation import check_volume_limit
from copilot_quant.model.ports import IDataFeed
from copilot_quant.model.spread import AUTO, SpreadModel, grid_frame, resolve_spread, spread_of, width_table

__all__ = ["FILL_AT", "BacktestEngine", "ProgressCallback"]

log = logging.getLogger(__name__)

#: Accepted values of ``fill_at``.
FILL_AT = ("next_open", "close")


class BacktestEngine(AccountReads):
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
        spread: the bid/ask spread: ``'auto'`` (the default: estimated from the bars, at least a tick),
            a tick count, ``'5bps'``, a :class:`~copilot_quant.model.spread.SpreadModel`, or ``None`` /
            ``'off'`` (fills at the bars' prices). A ``slippage`` model that already carries a spread
            (``with_spread``) keeps it. With ``broker=``, the broker's slippage model decides.
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
        spread: SpreadModel | str | int | None = AUTO,
    ) -> None:
        if fill_at not in FILL_AT:
            raise ConfigError(f"fill_at must be one of {FILL_AT}, got {fill_at!r}")
        self.volume_limit = check_volume_limit(volume_limit)
        self.initial_capital = float(initial_capital)
        self.data_provider = data_provider
        self.commission = commission
        self.slippage: SlippageModel = resolve_spread(slippage_model(slippage), spread)
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
        #: The bars before a date-range run's start, for its first bars' spread (run_data.prior_prices).
        self._spread_prior: PriorPrices | None = None
        self._reset_run_state(None)

    # ------------------------------------------------------------------ setup
    def _widths(self, market: MarketData | None) -> np.ndarray | None:
        """Each bar's spread in ticks, ``(bars, symbols)``, when the broker's slippage carries a spread."""
        spread = spread_of(self.broker.slippage_model)
        if market is None or spread is None:
            return None
        return width_table(
            spread,
            market.opens,
            market.highs,
            market.lows,
            market.closes,
            self._ticks(market),
            self._spread_prior,
        )

    def _benchmark_closes(self, market: MarketData) -> pd.DataFrame:
        """The traded symbols' closes for the buy-and-hold benchmark; a continuous future's as its holder
        earns them (each step on the contract held, not the spliced series' gap at a roll)."""
        closes = market.close_frame()
        visible = closes[market.visible]
        return self._router.held_closes(visible, closes) if self._router is not None else visible

    def _ticks(self, market: MarketData | None) -> list[float | None] | None:
        """Each symbol's own tick (a future's, a pair's; None for a stock), in the market's order."""
        return None if market is None else [self.broker.tick_size(s) for s in market.symbols]

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
        #: The marks to keep before and after each fill (None in a solo run: they need no call per fill).
        self._fill_marks = (
            self._broker_marks if self._broker_marks is not None and not self._broker_marks.solo else None
        )
        if self.volume_limit is not None and market is not None:
            self._book = OrderBook(
                market.volumes(), self.volume_limit, self._widths(market), self._ticks(market)
            )
        else:
            self._book = OrderBook(widths=self._widths(market), ticks=self._ticks(market))
        self._orders: list[Order] = []
        # order_id -> index of the strategy that submitted it (for cancel())
        self._order_owner: dict[str | None, int] = {}
        self._books: StrategyBooks | None = None  # per-strategy books, with several strategies
        self._fill_hooks: list[bool] = []  # per strategy: whether its on_fill is its own (not the no-op)
        self._clock = RunClock()  # the bar being processed (-1 before the first), its time, matching or not
        multi_symbol = market is not None and isinstance(market.frame.columns, pd.MultiIndex)
        self._error_log = StrategyErrors(
            self.errors, self.max_logged_errors, self._run_interval, multi_symbol
        )

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
        names = symbol_list(symbols)
        lo, hi = resolve_range(start_date, end_date)
        self._run_interval = interval or self.interval
        frame = load_bars(self.data_provider, names, lo, hi, self._run_interval, data=data)
        if self._given_broker is None:
            self.broker = self._new_broker()
        if self._given_broker is None or self.broker.accounts is None:
            self.broker.use_instruments(
                run_accounts(self.instruments, reference_day(lo, frame), self.commission)
            )
        # the spread's touch is on the tick grid: so are bars (each instrument on its own tick)
        on_grid = spread_of(self.broker.slippage_model) is not None
        if on_grid:
            frame = grid_frame(frame, self.broker.tick_size, names[0] if len(names) == 1 else None)
        self.errors = []
        accounts = self.broker.accounts
        self._router = (
            ContinuousRouter.for_run(
                accounts.registry, frame_symbols(frame, names), pd.DatetimeIndex(frame.index), self.roll_days
            )
            if accounts is not None and len(frame)
            else None
        )
        extra = (
            self._router.load(frame, self.data_provider, lo, hi, self._run_interval) if self._router else None
        )
        if on_grid and extra is not None:
            extra = grid_frame(extra, self.broker.tick_size)
        market = MarketData(frame, names or None, extra) if len(frame) else None
        spread = spread_of(self.broker.slippage_model)
        self._spread_prior = (
            prior_prices(
                self.data_provider,
                market.visible,  # the first columns of the price arrays; a roll's contracts follow
                lo,
                self._run_interval,
                spread.window + 1,
                data=data,
                on_grid=lambda bars: grid_frame(
                    bars, self.broker.tick_size, names[0] if len(names) == 1 else None
                ),
            )
            if spread is not None and lo is not None and market is not None
            else None
        )
        compared = (
            resolve_benchmark(
                benchmark,
                self._benchmark_closes(market),
                lambda symbol: benchmark_closes(
                    self.data_provider, symbol, lo, hi, interval or self.interval
                ),
            )
            if market is not None and benchmark is not None  # None: no benchmark, no closes to gather
            else None
        )
        self._reset_run_state(market)
        self._run_symbols = tuple(market.visible if market is not None else names)
        self._bind_views()
        self._call_start_hooks()
        # a strategy that keeps the base class's on_fill (which does nothing) is not called per fill
        self._fill_hooks = [not _base_on_fill(s) for s in self._strategies]
        if market is not None:
            self._intake = OrderIntake(
                market=market,
                book=self._book,
                broker=self.broker,
                orders=self._orders,
                owners=self._order_owner,
                books=self._books,
                router=self._router,
                expiries=self._expiries,
                at_close=self.fill_at == "close",
                names=[s.name for s in self._strategies],
                record_error=self._record_error,
                book_fill=self._book_fill,
            )
            loops = BarLoops(
                self._clock,
                market,
                self._book,
                self._intake.submit,
                self._book_fill,
                self._record_error,
                self._indicator_frame,
                before_call=None
                if self._router is None and self._expiries is None
                else partial(roll_contracts, self),
            )
            only = self._strategies[0]
            rolls = self._router is not None or self._expiries is not None
            if len(self._strategies) == 1 and isinstance(only, FastStrategy) and not rolls:
                loops.fast(only, progress)
            else:
                loops.general(self._strategies, progress)
            if self._broker_marks is not None:  # the broker's positions as if every fill had been marked
                self._broker_marks.settle()
            cancelled = self._book.cancel_all("the backtest ended while the order was still working")
            if cancelled:
                log.info("%d order(s) still working at the end of the data were cancelled", len(cancelled))
        self._call_stop_hooks()
        self.result = assemble_result(
            [s.name for s in self._strategies],
            market,
            names,
            (lo, hi),
            self._ledger,
            self._orders,
            self.get_positions(),
            self.errors,
            self._books,
        )
        if market is not None:
            add_account_results(self, self.result, market)
        self.result.benchmark = compared
        return self.result

    def _bind_views(self) -> None:
        """One strategy reads the account; several (or one given ``capital``) each read their own book."""
        strategies = self._strategies
        if len(strategies) == 1 and self._capitals[0] is None:
            strategies[0].bind(AccountView(self, 0))
            return
        names = [s.name for s in strategies]
        capitals = allocate_capital(self.broker.get_cash_balance(), self._capitals, names)
        # futures/forex: each book resolves symbols with the run's registry, values currencies at the account's rates
        books = self._books = StrategyBooks(capitals, names, self._accounting, self.broker.accounts)
        for k, strategy in enumerate(strategies):
            strategy.bind(StrategyView(self, books, k))

    # ------------------------------------------------------------------ bar loops
    def _indicator_frame(self, strategy: FastStrategy) -> pd.DataFrame:
        """The strategy's indicators over the whole history, after a causality check."""
        market = self._market
        if market is None:  # the bar loops run only with a market
            raise StrategyError(f"{strategy.name}: no bars to compute indicators on")
        return causal_indicator_frame(strategy, market.frame, check=self.check_causality)

    # ------------------------------------------------------------------ orders and fills
    def _submit(self, owner: int, orders: Any, bar: int, ts: datetime) -> None:
        """Submit what strategy ``owner`` returned at bar ``bar`` (see :mod:`~copilot_quant.backtest.order_intake`)."""
        self._intake.submit(owner, orders, bar, ts)

    def _cancel(self, owner: int, order: Order | str) -> None:
        """``strategies[owner].cancel(order)``: see the module docstring for the timing."""
        cancel_order(self, owner, order)

    def _modify(self, owner: int, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
        """``strategies[owner].modify(order, **changes)``: new terms from the next bar on (see the module doc)."""
        return modify_order(self, owner, order, changes)

    def _book_fill(self, working: WorkingOrder, execution: Execution, quantity: float | None = None) -> None:
        """Book ``quantity`` of the order (None: all that is left) through the broker; tell its strategy."""
        order, broker, clock = working.order, self.broker, self._clock
        now = clock.now
        if now is None:  # only the bar loops book fills, and they set the bar's time first
            return
        bar = clock.fixed if clock.live is None else clock.bar  # the loops fix the bar they book on
        marks, observed = self._fill_marks, self._fill_hooks[working.owner]
        if marks is not None:  # the buying-power check (and on_fill) values positions at the last close
            marks.before_fill(bar - 1 if clock.executing else bar, order, quantity, observed)
        fill = broker.fill(order, execution[0], now, execution[1], quantity)  # Execution(price, slippage)
        if fill is None:
            if self._broker_marks is not None:  # a solo run's marks are told the trade's row only now
                self._broker_marks.rejected(
                    None if marks is not None else bar - 1 if clock.executing else bar
                )
            return
        if marks is not None:
            marks.filled(order.symbol, working.symbol_index, fill.fill_price)
        cash, held = broker.cash_and_position(order.symbol)
        self._ledger.record(bar, working.symbol_index, fill, cash, held)
        if self._books is not None:
            self._books.record_fill(working.owner, bar, working.symbol_index, fill)
        if observed:
            try:
                self._strategies[working.owner].on_fill(fill)
            except Exception as exc:
                self._record_error(working.owner, exc, "on_fill", now)

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
        own = self._books.errors[owner] if self._books is not None else None
        self._error_log.record(self._strategies[owner].name, exc, hook, ts, own)


def _base_on_fill(strategy: Strategy) -> bool:
    """Whether ``strategy.on_fill`` is the base class's no-op (not overridden by its class or the instance)."""
    return type(strategy).on_fill is Strategy.on_fill and "on_fill" not in vars(strategy)
