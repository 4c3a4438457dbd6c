"""A futures/forex backtest's contract events: expired contracts settled, continuous futures rolled, and
the account's results (margin calls, cash per currency, multipliers).

The engine (:mod:`copilot_quant.backtest.engine`) hands :func:`roll_contracts` to the bar loops as their
``before_call`` when the run has continuous futures or expiring contracts (a stock-only run never calls it),
and :func:`add_account_results` to the finished result. The rules are :mod:`copilot_quant.backtest.rolls`'s
and :mod:`copilot_quant.backtest.multi_asset`'s; this module applies them to the running engine.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, Protocol

from copilot_quant.backtest.books import StrategyBooks
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.multi_asset import MultiAssetLedger, RunAccounting, margin_calls
from copilot_quant.backtest.order_book import WorkingOrder
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.backtest.rolls import ContinuousRouter, Expiries
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.model.fill_rules import Execution
from copilot_quant.model.orders import Order

__all__ = ["ContractRun", "add_account_results", "roll_contracts", "settle_expired"]

# The engine's logger: these lines were the engine's before they moved here, and users filter on its name.
log = logging.getLogger("copilot_quant.backtest.engine")


class ContractRun(Protocol):
    """What the contract events read and call of the running backtest engine."""

    broker: SimpleBroker
    auto_roll: bool
    _strategies: list[Strategy]
    _orders: list[Order]
    _order_owner: dict[str | None, int]
    _market: MarketData | None
    _router: ContinuousRouter | None
    _expiries: Expiries | None
    _accounting: RunAccounting | None
    _ledger: Ledger | MultiAssetLedger
    _books: StrategyBooks | None

    def _submit(self, owner: int, orders: Any, bar: int, ts: datetime) -> None: ...

    def _book_fill(
        self, working: WorkingOrder, execution: Execution, quantity: float | None = None
    ) -> None: ...

    def _record_error(self, owner: int, exc: Exception, hook: str, ts: datetime | None) -> None: ...


def roll_contracts(engine: ContractRun, owner: int, bar: int, ts: datetime) -> None:
    """At ``bar``: expired contracts' positions settled, then the rolls — the automatic roll's orders
    (if on), then the strategy's ``on_roll``."""
    if engine._expiries is not None:
        for due in engine._expiries.due(bar):
            if engine._books is None:
                settle_expired(engine, owner, bar, ts, due)
            elif owner == 0:  # every strategy's holding at once, before the first strategy is called
                for holder in _settling_order(engine._books, due[0]):
                    settle_expired(engine, holder, bar, ts, due)
    router = engine._router
    if router is None:
        return
    for roll in router.rolls_at(bar, ts):
        if engine.auto_roll:
            roll.orders = router.roll_orders(roll, _held(engine, owner))
            if roll.orders:
                engine._submit(owner, roll.orders, bar, ts)
        log.info("%s rolls from %s to %s at %s", roll.symbol, roll.old, roll.new, ts)
        try:
            engine._strategies[owner].on_roll(roll)
        except Exception as exc:
            engine._record_error(owner, exc, "on_roll", ts)


def _held(engine: ContractRun, owner: int) -> dict[str, float]:
    """What strategy ``owner`` holds by symbol: its own book's with several strategies, else the account's."""
    positions = (
        engine._books.books[owner].positions() if engine._books is not None else engine.broker.get_positions()
    )
    return {s: p.quantity for s, p in positions.items()}


def _settling_order(books: StrategyBooks, symbol: str) -> list[int]:
    """The strategies holding ``symbol``, those on the other side than the account's net first: each
    settlement then moves the account's position toward zero without crossing it (no transient short
    where the account is long, which ``allow_short=False`` would refuse)."""
    quantities = [book.quantity(symbol) for book in books.books]
    net = sum(quantities)
    holders = [k for k, q in enumerate(quantities) if q]
    return sorted(holders, key=lambda k: quantities[k] * net >= 0)


def settle_expired(
    engine: ContractRun, owner: int, bar: int, ts: datetime, due: tuple[str, int, date]
) -> None:
    """Close what is held of a contract that stopped trading (``due``: symbol, column, last trade
    date), at its last close."""
    symbol, k, last = due
    books = engine._books
    market = engine._market
    quantity = (
        books.books[owner].quantity(symbol) if books is not None else engine.broker.position_quantity(symbol)
    )
    if market is None or not quantity:
        return
    price = float(market.marks[bar - 1, k])
    order = Order(symbol, abs(quantity), side="sell" if quantity > 0 else "buy", tag="expiry", timestamp=ts)
    engine._orders.append(order)
    engine._order_owner[order.order_id] = owner
    if books is not None:
        books.orders[owner].append(order)
    log.info("%s expired on %s: %g settled at %s", symbol, last, quantity, price)
    engine._book_fill(WorkingOrder(order, owner, k, bar), Execution(price, slippage=False))


def add_account_results(engine: ContractRun, result: BacktestResult, market: MarketData) -> None:
    """A futures/forex run's margin calls, cash per currency and multipliers, on ``result``."""
    ledger = engine._ledger
    if not isinstance(ledger, MultiAssetLedger):
        return
    result.margin_calls = margin_calls(result.equity_curve, ledger.maintenance_curve(market.marks))
    result.cash_balances = engine.broker.cash_balances()
    if engine._accounting is not None:
        result.multipliers = engine._accounting.multipliers(market.symbols)
        result.quote_rates = engine._accounting.quote_rates(market.symbols, market.marks, market.index)
    for part in result.strategies.values():  # each strategy's trades are valued as the account's
        if part is not result:
            part.multipliers, part.quote_rates = result.multipliers, result.quote_rates
