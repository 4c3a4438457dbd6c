"""One backtest run's futures/forex bookkeeping: equity per bar with multipliers and currencies, margin calls.

The engine builds a :class:`RunAccounting` when any of the run's symbols is a future, a forex pair or a
foreign stock (a stock-only run keeps the plain :class:`~copilot_quant.backtest.ledger.Ledger`, unchanged).
It knows each price column's instrument and which columns give the rate of each currency, and derives:

* the strategy's ``equity`` at a bar's close (:meth:`RunAccounting.equity_at`);
* the equity and cash curves after the run (:class:`MultiAssetLedger`), from the account's state recorded
  after each fill, so ``equity[t] == Σ cash[c](t) × rate[c](t) + Σ stock value + Σ futures unrealized
  × rate`` at every bar — the account's rule (:mod:`copilot_quant.backtest.accounts`), vectorized;
* maintenance-margin breaches (:func:`margin_calls`): each stretch of bars where equity was below the
  maintenance margin of the futures and forex positions held, reported in ``result.margin_calls``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import numpy as np
import pandas as pd

from copilot_quant.backtest.accounts import InstrumentAccounts, rate_source
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.ledger import _step
from copilot_quant.backtest.orders import Fill
from copilot_quant.backtest.round_trips import QuoteRate
from copilot_quant.errors import ConfigError
from copilot_quant.model.instrument_costs import InstrumentCosts
from copilot_quant.model.instruments import AssetClass, Instrument, InstrumentRegistry
from copilot_quant.model.orders import Position

__all__ = ["MarginCall", "MultiAssetLedger", "RunAccounting", "margin_calls", "run_accounts"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MarginCall:
    """A stretch of bars whose closing equity was below the maintenance margin of the positions held."""

    start: datetime
    end: datetime
    bars: int
    #: the largest shortfall (maintenance − equity) over the stretch, in USD
    worst_shortfall: float
    equity_at_start: float
    maintenance_at_start: float


def run_accounts(
    given: InstrumentRegistry | InstrumentAccounts | None, reference: date, stock_commission: object = None
) -> InstrumentAccounts:
    """A new account's futures/forex side for a run: the engine's ``instruments`` (fresh state), or the
    default registry with one-digit contract years (``"ESZ6"``) read against ``reference`` and IB's costs —
    on its Fixed plan for futures when the stocks' ``commission`` is ``'ibkr-fixed'``."""
    if isinstance(given, InstrumentAccounts):
        return given.fresh()
    registry = given if given is not None else InstrumentRegistry(reference=reference)
    fixed = isinstance(stock_commission, str) and stock_commission.strip().lower() == "ibkr-fixed"
    return InstrumentAccounts(registry, InstrumentCosts(futures_plan="fixed" if fixed else "tiered"))


class RunAccounting:
    """The instruments of a run's price columns, and what follows from them per bar.

    Args:
        accounts: the broker's futures/forex side.
        symbols: the price columns, in order.
    """

    __slots__ = ("_accounts", "instruments", "rate_columns")

    @property
    def forex_margin(self) -> float:
        return self._accounts.forex_margin

    def __init__(self, accounts: InstrumentAccounts, symbols: Sequence[str]) -> None:
        self._accounts = accounts
        self.instruments: list[Instrument | None] = [accounts.instrument(s) for s in symbols]
        #: currency -> (column, inverted): the column whose price converts it into USD
        self.rate_columns: dict[str, tuple[int, bool]] = {}
        for k, inst in enumerate(self.instruments):
            source = rate_source(inst, accounts.base) if inst is not None else None
            if source is not None and source[0] not in self.rate_columns:
                self.rate_columns[source[0]] = (k, source[1])
        for inst in self.instruments:  # a missing cost figure (a root's exchange fee) is refused up front
            if inst is not None and not (
                inst.kind is AssetClass.FOREX and accounts.base not in _currencies(inst)
            ):
                accounts.meter(inst)
        needed = {c for inst in self.instruments if inst is not None for c in _currencies(inst)}
        missing = sorted(needed - set(self.rate_columns) - {accounts.base})
        if missing:
            raise ConfigError(
                f"the run trades in {', '.join(missing)} but has no pair to value it in {accounts.base}; "
                + "add "
                + ", ".join(f"{c}.{accounts.base}" for c in missing)
                + " to the symbols"
            )

    @classmethod
    def for_run(cls, broker: SimpleBroker, symbols: Sequence[str]) -> RunAccounting | None:
        """The run's accounting, or ``None`` when every symbol is a US stock (the plain rules apply)."""
        accounts = broker.accounts
        if accounts is None or all(accounts.instrument(s) is None for s in symbols):
            return None
        return cls(accounts, symbols)

    @property
    def multiplier(self) -> np.ndarray:
        """Per column, what a unit of quantity times the price is worth in the column's currency."""
        return np.array([_weight(inst) for inst in self.instruments])

    def multipliers(self, symbols: Sequence[str]) -> dict[str, float]:
        """The futures among ``symbols`` (the price columns) with their multipliers."""
        return {
            s: inst.multiplier
            for s, inst in zip(symbols, self.instruments, strict=True)
            if inst is not None and inst.kind is AssetClass.FUTURE
        }

    def quote_rates(
        self, symbols: Sequence[str], marks: np.ndarray, index: pd.DatetimeIndex
    ) -> dict[str, QuoteRate]:
        """How each column quoted in another currency than the base converts its trades' P&L: a pair
        quoting the base currency itself (``USD.JPY``) at its own fill price; any other at the rate in
        force during each bar, the converting pair's previous close (the account's rate when the bar's
        orders fill; the first bar takes its own close)."""
        base = self._accounts.base
        rates = self.rates(marks)
        out: dict[str, QuoteRate] = {}
        for symbol, inst in zip(symbols, self.instruments, strict=True):
            if inst is None or inst.currency == base:
                continue
            if inst.kind is AssetClass.FOREX and inst.root == base:
                out[symbol] = QuoteRate(inverse_of_price=True)
                continue
            closes = pd.Series(rates[inst.currency], index=index)
            out[symbol] = QuoteRate(in_force=closes.shift(1).fillna(closes))
        return out

    def rates(self, marks: np.ndarray) -> dict[str, np.ndarray]:
        """Per currency, its USD value per bar (NaN before its pair's first price)."""
        out = {}
        for currency, (k, inverted) in self.rate_columns.items():
            column = marks[:, k]
            out[currency] = 1.0 / column if inverted else column
        return out

    def column_rates(self, marks: np.ndarray) -> np.ndarray:
        """The USD value of one unit of each column's currency, per bar, ``(bars, symbols)``."""
        n_bars = marks.shape[0]
        rates = self.rates(marks)
        cols = []
        for inst in self.instruments:
            currency = inst.currency if inst is not None else self._accounts.base
            cols.append(rates[currency] if currency in rates else np.ones(n_bars))
        return np.column_stack(cols) if cols else np.ones((n_bars, 0))

    def cash_at(self, broker: SimpleBroker, marks: np.ndarray, row: int) -> float:
        """The account's cash, every currency valued at its pair's rate in ``marks[row]`` (the rates are
        updated first, so ``self.cash`` never reads the previous bar's)."""
        rates = {c: float(marks[row, k]) for c, (k, _) in self.rate_columns.items()}
        self._accounts.rates.update(
            {
                c: (1.0 / v if self.rate_columns[c][1] else v)
                for c, v in rates.items()
                if v == v  # noqa: PLR0124
            }
        )
        return broker.get_cash_balance()

    def equity_at(
        self, broker: SimpleBroker, marks: np.ndarray, row: int, symbol_index: dict[str, int]
    ) -> float:
        """The account's equity with every position and currency valued at ``marks[row]``."""
        accounts = self._accounts
        value = self.cash_at(broker, marks, row)
        for symbol, pos in broker.get_positions().items():
            k = symbol_index.get(symbol)
            if k is not None and marks[row, k] == marks[row, k]:
                pos.update_unrealized_pnl(float(marks[row, k]))
            value += accounts.value(accounts.instrument(symbol), pos)
        return value


def _currencies(inst: Instrument) -> tuple[str, ...]:
    return (inst.root, inst.currency) if inst.kind is AssetClass.FOREX else (inst.currency,)


def _weight(inst: Instrument | None) -> float:
    if inst is None:
        return 1.0
    if inst.kind is AssetClass.FOREX:
        return 0.0  # a pair's value is in the currency balances
    return inst.multiplier if inst.kind is AssetClass.FUTURE else 1.0


class CashAndPositions(Protocol):
    """What :class:`MultiAssetLedger` reads after each fill: the account (the broker), or one strategy's book."""

    def get_cash_balance(self) -> float: ...

    def cash_balances(self) -> dict[str, float]: ...

    def get_positions(self) -> dict[str, Position]: ...


class MultiAssetLedger:
    """The fills of a run with the account's state after each: cash per currency, quantity, and the
    futures' cost basis (``quantity × average × multiplier``), from which the curves are built."""

    __slots__ = (
        "_accounting",
        "_balances",
        "_bars",
        "_basis",
        "_broker",
        "_qty",
        "_symbols",
        "fills",
        "initial_cash",
    )

    def __init__(self, broker: CashAndPositions, accounting: RunAccounting) -> None:
        self._broker = broker
        self._accounting = accounting
        self.initial_cash = broker.get_cash_balance()
        self.fills: list[Fill] = []
        # the starting balances, as if recorded before the first bar (on no column)
        self._bars: list[int] = [-1]
        self._symbols: list[int] = [-1]
        self._qty: list[float] = [0.0]
        self._basis: list[float] = [0.0]
        self._balances: list[dict[str, float]] = [broker.cash_balances()]

    def record(self, bar: int, symbol: int, fill: Fill, cash_after: float, quantity_after: float) -> None:
        del cash_after  # the balances are read one by one instead
        broker = self._broker
        self.fills.append(fill)
        self._bars.append(bar)
        self._symbols.append(symbol)
        self._qty.append(quantity_after)
        inst = self._accounting.instruments[symbol]
        pos = broker.get_positions().get(fill.symbol) if _weight(inst) and inst is not None else None
        # a future's value in equity is its unrealized P&L: q × mult × mark less this basis
        future = pos is not None and inst is not None and inst.kind is AssetClass.FUTURE
        self._basis.append(pos.quantity * pos.avg_entry_price * pos.multiplier if future and pos else 0.0)
        self._balances.append(broker.cash_balances())

    def curves(self, marks: np.ndarray, index: pd.DatetimeIndex) -> tuple[pd.Series, pd.Series]:
        equity, cash = self.equity_curve(marks)
        return pd.Series(equity, index=index, name="equity"), pd.Series(cash, index=index, name="cash")

    def quantities(self, n_bars: int, n_symbols: int) -> np.ndarray:
        """Signed quantity per column after each bar's fills, ``(bars, symbols)``."""
        return self._per_column(self._qty, n_bars, n_symbols)

    def equity_curve(self, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(equity, cash)`` per bar in USD; cash is the total of the balances at each bar's rates."""
        n_bars, n_symbols = marks.shape
        accounting = self._accounting
        rates = accounting.rates(marks)
        bars = np.asarray(self._bars, dtype=np.int64)
        currencies = list(dict.fromkeys(c for b in self._balances for c in b))
        cash = np.zeros(n_bars)
        for currency in currencies:
            amounts = np.asarray([b.get(currency, 0.0) for b in self._balances])
            balance = _step(bars, amounts, n_bars, 0.0)
            rate = rates.get(currency, np.ones(n_bars))
            cash += np.where(balance != 0, balance * np.nan_to_num(rate), 0.0)
        qty = self.quantities(n_bars, n_symbols)
        basis = self._per_column(self._basis, n_bars, n_symbols)
        weight = accounting.multiplier
        held = qty != 0
        # futures: q × mult × mark − basis (the unrealized P&L); stocks: q × mark; pairs: nothing
        value = np.where(held, qty * weight * np.nan_to_num(marks) - basis, 0.0)
        value = np.where(held, value * np.nan_to_num(accounting.column_rates(marks)), 0.0)
        return cash + value.sum(axis=1), cash

    def _per_column(self, values: list[float], n_bars: int, n_symbols: int) -> np.ndarray:
        out = np.zeros((n_bars, n_symbols))
        bars = np.asarray(self._bars, dtype=np.int64)
        symbols = np.asarray(self._symbols, dtype=np.int64)
        array = np.asarray(values)
        for s in range(n_symbols):
            mine = symbols == s
            if mine.any():
                out[:, s] = _step(bars[mine], array[mine], n_bars, 0.0)
        return out

    def maintenance_curve(self, marks: np.ndarray) -> np.ndarray:
        """The maintenance margin of the futures and forex positions held after each bar's fills, in USD
        (futures: per contract; forex: :attr:`InstrumentAccounts.forex_margin` of the notional)."""
        n_bars, n_symbols = marks.shape
        accounting = self._accounting
        forex_margin = accounting.forex_margin
        per_unit = np.zeros((n_bars, n_symbols))
        for k, inst in enumerate(accounting.instruments):
            if inst is not None and inst.kind is AssetClass.FUTURE:
                per_unit[:, k] = inst.maintenance_margin
            elif inst is not None and inst.kind is AssetClass.FOREX:
                per_unit[:, k] = np.nan_to_num(marks[:, k]) * forex_margin
        qty = self.quantities(n_bars, n_symbols)
        rates = np.nan_to_num(accounting.column_rates(marks), nan=1.0)
        return (np.abs(qty) * per_unit * rates).sum(axis=1)


def margin_calls(equity: pd.Series, maintenance: np.ndarray) -> list[MarginCall]:
    """Each stretch of bars whose equity closed below ``maintenance`` (logged as a warning too)."""
    values = equity.to_numpy()
    breach = (maintenance > 0) & (values < maintenance - 1e-9)
    calls: list[MarginCall] = []
    i, n = 0, len(values)
    while i < n:
        if not breach[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and breach[j + 1]:
            j += 1
        shortfall = float((maintenance[i : j + 1] - values[i : j + 1]).max())
        call = MarginCall(
            start=equity.index[i].to_pydatetime(),
            end=equity.index[j].to_pydatetime(),
            bars=j - i + 1,
            worst_shortfall=shortfall,
            equity_at_start=float(values[i]),
            maintenance_at_start=float(maintenance[i]),
        )
        log.warning(
            "margin call: equity %.2f below the maintenance margin %.2f from %s (%d bar(s), worst shortfall %.2f)",
            call.equity_at_start,
            call.maintenance_at_start,
            call.start,
            call.bars,
            shortfall,
        )
        calls.append(call)
        i = j + 1
    return calls
