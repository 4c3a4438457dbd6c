"""Several strategies on one backtest account: each strategy's capital share, book, ledger and result.

The account (the broker) holds the netted positions and the cash, and checks buying power for every
strategy alike. Each strategy also has a :class:`~copilot_quant.model.book.StrategyBook` that applies only
the fills of its own orders, and a :class:`~copilot_quant.backtest.ledger.Ledger` from which its equity
curve is built after the run. What the strategy reads (``self.positions``, ``self.cash``,
``self.equity``) comes from its book; see :class:`StrategyView`.

With one strategy (and no ``capital=``) none of this runs: the strategy reads the account
(:class:`AccountView`), which is then exactly its book.

Futures and forex (a run with :class:`~copilot_quant.backtest.multi_asset.RunAccounting`): each book resolves
symbols with the run's registry and books in USD by the account's rules (see :mod:`copilot_quant.model.book`).
The rates a book values other currencies at are the account's: while a bar's orders execute, the rates the
broker holds then (:attr:`InstrumentAccounts.rates`: the converting pairs' previous closes, or a pair's own
fill); once a bar has closed, the converting pairs' closes of that bar — what the account's own equity reads.
Each strategy's equity curve is built after the run as the account's is (a
:class:`~copilot_quant.backtest.multi_asset.MultiAssetLedger` over its book), so the strategies' curves add up
to the account's. A continuous future's ``self.position("MES")`` is the sum over the root's contracts in the
strategy's own book; the automatic roll moves each strategy's own contracts (:mod:`~copilot_quant.backtest.contract_events`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from copilot_quant.backtest.accounts import InstrumentAccounts
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.multi_asset import MultiAssetLedger, RunAccounting
from copilot_quant.backtest.order_book import OrderBook
from copilot_quant.backtest.orders import Fill, Order, Position
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.rolls import ContinuousRouter
from copilot_quant.errors import ConfigError
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.modify import ModifyOutcome

__all__ = [
    "AccountView",
    "EngineState",
    "StrategyBooks",
    "StrategyView",
    "allocate_capital",
    "check_capital",
    "result_keys",
    "strategy_table",
]


class EngineState(Protocol):
    """What the views read of the backtest engine (the engine implements it; no import of the engine here)."""

    _market: MarketData | None
    _book: OrderBook

    @property
    def _bar(self) -> int: ...

    @property
    def _executing(self) -> bool: ...

    _run_symbols: tuple[str, ...]
    _router: ContinuousRouter | None

    def _cancel(self, owner: int, order: Order | str) -> None: ...

    def _modify(self, owner: int, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome: ...

    def get_positions(self) -> dict[str, Position]: ...

    def get_portfolio_value(self) -> float: ...

    def account_cash(self) -> float: ...

    def account_position(self, symbol: str) -> float: ...


def allocate_capital(
    account_cash: float, requested: Sequence[float | None], names: Sequence[str]
) -> list[float]:
    """Each strategy's capital: what ``add_strategy(capital=)`` asked for, or an equal share of the rest.

    Raises :class:`ConfigError` when the requests exceed the account's cash, or leave nothing for a
    strategy that asked for no amount.
    """
    asked = sum(c for c in requested if c is not None)
    if asked > account_cash * (1 + 1e-12):
        raise ConfigError(
            f"the strategies' capital ({asked:,.2f}: "
            + ", ".join(f"{n} {c:,.2f}" for n, c in zip(names, requested, strict=True) if c is not None)
            + f") exceeds the account's {account_cash:,.2f}; lower add_strategy(capital=...) or raise initial_capital"
        )
    open_shares = [n for n, c in zip(names, requested, strict=True) if c is None]
    share = (account_cash - asked) / len(open_shares) if open_shares else 0.0
    if open_shares and share <= 0:
        raise ConfigError(
            f"no capital is left for {', '.join(open_shares)}: the other strategies' capital takes all "
            f"{account_cash:,.2f}; give every strategy add_strategy(capital=...)"
        )
    return [share if c is None else c for c in requested]


def check_capital(capital: float | None) -> float | None:
    """``add_strategy``'s ``capital``: None or a positive finite amount."""
    if capital is None:
        return None
    if (
        isinstance(capital, bool)
        or not isinstance(capital, int | float)
        or not math.isfinite(capital)
        or capital <= 0
    ):
        raise ConfigError(
            f"capital must be a positive amount of account currency (e.g. 50_000), got {capital!r}"
        )
    return float(capital)


def result_keys(names: Sequence[str]) -> list[str]:
    """Unique keys for ``result.strategies``: the strategy's name, then ``name#2``, ``name#3`` for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


class _BookAccount:
    """One strategy's book read as an account by :class:`MultiAssetLedger` (its curves are the account's rule)."""

    __slots__ = ("_book",)

    def __init__(self, book: StrategyBook) -> None:
        self._book = book

    def get_cash_balance(self) -> float:
        return self._book.capital  # read when the ledger starts: before any fill

    def cash_balances(self) -> dict[str, float]:
        return self._book.cash_balances()

    def get_positions(self) -> dict[str, Position]:
        return self._book.positions()


class StrategyBooks:
    """The per-strategy records of one multi-strategy run, indexed by the strategy's position (owner).

    ``accounting``/``accounts``: the run's futures/forex bookkeeping and the broker's account side (None in a
    stock-only run): the books then resolve symbols with the run's registry and value currencies at the
    account's rates (see the module docstring).
    """

    __slots__ = ("_accounting", "_accounts", "books", "errors", "last_fill", "ledgers", "orders")

    def __init__(
        self,
        capitals: Sequence[float],
        names: Sequence[str],
        accounting: RunAccounting | None = None,
        accounts: InstrumentAccounts | None = None,
    ) -> None:
        registry = accounts.registry if accounts is not None else None
        self._accounting = accounting if accounts is not None else None
        self._accounts = accounts if accounting is not None else None
        self.books = [StrategyBook(c, n, registry) for c, n in zip(capitals, names, strict=True)]
        self.ledgers: list[Ledger | MultiAssetLedger] = [
            Ledger(c) if self._accounting is None else MultiAssetLedger(_BookAccount(b), self._accounting)
            for c, b in zip(capitals, self.books, strict=True)
        ]
        self.orders: list[list[Order]] = [[] for _ in capitals]
        self.errors: list[list[dict[str, Any]]] = [[] for _ in capitals]
        # (bar, symbol, price) of each strategy's latest fill: its mark while that bar executes
        self.last_fill: list[tuple[int, str, float] | None] = [None for _ in capitals]

    @property
    def in_currencies(self) -> bool:
        """Whether the books value futures/forex at the account's rates (their cash then moves with them)."""
        return self._accounts is not None

    def record_fill(self, owner: int, bar: int, symbol_index: int, fill: Fill) -> None:
        book = self.books[owner]
        if self._accounts is not None:  # a realization is converted at the rate the account booked it at
            book.set_rates(self._accounts.rates)
        book.apply_fill(fill)
        ledger = self.ledgers[owner]
        cash = book.cash if isinstance(ledger, Ledger) else 0.0  # the multi-asset ledger reads the balances
        ledger.record(bar, symbol_index, fill, cash, book.quantity(fill.symbol))
        self.last_fill[owner] = (bar, fill.symbol, fill.fill_price)

    def marked(self, owner: int, market: MarketData | None, bar: int, executing: bool) -> StrategyBook:
        """Strategy ``owner``'s book valued as the account is at this point of the run.

        After a bar closed: at its close. While bar *t*'s orders execute: at bar *t-1*'s close, except the
        symbol of the strategy's fill on bar *t*, at that fill's price (nothing later is known yet).
        """
        book = self.books[owner]
        if market is None or bar < 0:
            return book
        row = bar - 1 if executing else bar
        if row >= 0:
            marks, index = market.marks, market.symbol_index
            for symbol in book.symbols():
                k = index.get(symbol)
                if k is not None:
                    book.mark(symbol, marks.item(row, k))
        last = self.last_fill[owner]
        if executing and last is not None and last[0] == bar:
            book.mark(last[1], last[2])
        if self._accounts is not None:
            self._rates(book, market, row, executing)
        return book

    def _rates(self, book: StrategyBook, market: MarketData, row: int, executing: bool) -> None:
        """The account's rates for ``book``: the broker's while orders execute; a closed bar's pairs' closes."""
        accounts, accounting = self._accounts, self._accounting
        if accounts is None or accounting is None:
            return
        book.set_rates(accounts.rates)
        if executing or row < 0:
            return
        marks = market.marks
        book.set_rates(
            {
                c: (1.0 / marks.item(row, k) if inverted else marks.item(row, k))
                for c, (k, inverted) in accounting.rate_columns.items()
            }
        )

    def results(
        self, combined: BacktestResult, market: MarketData | None, keys: Sequence[str]
    ) -> dict[str, BacktestResult]:
        """One result per strategy, over the combined result's period and prices."""
        out: dict[str, BacktestResult] = {}
        for owner, key in enumerate(keys):
            ledger, book = self.ledgers[owner], self.books[owner]
            if market is None:  # no bars: empty curves, like the combined result's
                equity, cash = combined.equity_curve.copy(), combined.cash_curve.copy()
            else:
                equity, cash = ledger.curves(market.marks, market.index)
                self.marked(owner, market, len(market) - 1, executing=False)
            out[key] = BacktestResult(
                strategy_name=key,
                start_date=combined.start_date,
                end_date=combined.end_date,
                initial_capital=ledger.initial_cash,
                equity_curve=equity,
                cash_curve=cash,
                fills=list(ledger.fills),
                orders=list(self.orders[owner]),
                positions=book.positions(),
                prices=combined.prices,
                errors=list(self.errors[owner]),
            )
            if self._accounts is not None:
                out[key].cash_balances = book.cash_balances()
        return out


class AccountView:
    """What the only strategy of a run sees: the account's ``positions``, ``cash`` and ``equity``
    (read-only), and its own working orders (``open_orders()``, ``cancel()``, ``modify()``)."""

    __slots__ = ("_engine", "_owner")

    def __init__(self, engine: EngineState, owner: int = 0) -> None:
        self._engine = engine
        self._owner = owner

    def symbols(self) -> tuple[str, ...]:
        return self._engine._run_symbols

    def open_orders(self) -> list[Order]:
        return self._engine._book.working_orders(self._owner)

    def cancel(self, order: Order | str) -> None:
        self._engine._cancel(self._owner, order)

    def modify(self, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
        return self._engine._modify(self._owner, order, changes)

    def positions(self) -> dict[str, Position]:
        return self._engine.get_positions()

    def position_quantity(self, symbol: str) -> float:
        return self._engine.account_position(symbol)

    def cash(self) -> float:
        return self._engine.account_cash()

    def equity(self) -> float:
        return self._engine.get_portfolio_value()


class StrategyView:
    """What one of several strategies sees: its own book and orders, on the shared account.

    * ``positions`` — the strategy's own positions (from its fills only), marked like the account's.
    * ``cash`` — its capital share plus the cash its own fills moved (purchases and commissions out,
      sales in).
    * ``equity`` — that cash plus its positions' market value: its capital plus its net P&L.
    * ``open_orders()``/``cancel()``/``modify()`` — its own orders only.
    """

    __slots__ = ("_books", "_engine", "_owner")

    def __init__(self, engine: EngineState, books: StrategyBooks, owner: int) -> None:
        self._engine = engine
        self._books = books
        self._owner = owner

    def _book(self) -> StrategyBook:
        engine = self._engine
        return self._books.marked(self._owner, engine._market, engine._bar, engine._executing)

    def symbols(self) -> tuple[str, ...]:
        return self._engine._run_symbols

    def open_orders(self) -> list[Order]:
        return self._engine._book.working_orders(self._owner)

    def cancel(self, order: Order | str) -> None:
        self._engine._cancel(self._owner, order)

    def modify(self, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome:
        return self._engine._modify(self._owner, order, changes)

    def positions(self) -> dict[str, Position]:
        return self._book().positions()

    def position_quantity(self, symbol: str) -> float:
        book = self._books.books[self._owner]
        router = self._engine._router
        if router is not None and symbol in router.roots:  # "MES": its contracts in this strategy's book
            return router.position(symbol, {s: p.quantity for s, p in book.positions().items()})
        return book.quantity(symbol)

    def cash(self) -> float:
        return self._book().cash if self._books.in_currencies else self._books.books[self._owner].cash

    def equity(self) -> float:
        return self._book().equity


def strategy_table(result: BacktestResult) -> pd.DataFrame:
    """One row per strategy of ``result`` (and one for the account, ``'account'``, with several):
    capital, final value, P&L, return, fills, closed trades and errors."""
    parts = dict(result.strategies) or {result.strategy_name: result}
    if len(parts) > 1 or next(iter(parts.values())) is not result:
        parts["account"] = result
    rows = {
        key: {
            "initial_capital": part.initial_capital,
            "final_value": part.final_value,
            "pnl": part.final_value - part.initial_capital,
            "total_return": part.total_return,
            "fills": len(part.fills),
            "closed_trades": int(part.metrics["total_trades"]),
            "errors": len(part.errors),
        }
        for key, part in parts.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")
