"""The account from fills: IB's cash and positions when the run started, plus every fill since.

What a strategy sees of the account (``self.cash``, ``self.equity`` with one strategy) is read from this
ledger at the bar it decides on, marked at that bar's closes — never from IB's cached account values,
which IB marks on its own schedule and which lag a bar — so the view is the backtest's, bar for bar.
Each strategy's own positions are in its :class:`~copilot_quant.model.book.StrategyBook`.

Each kind keeps the backtest's accounting (:mod:`copilot_quant.backtest.accounts`):

* a **stock** moves its notional (quantity × price) out of cash and is worth quantity × close;
* a **future** moves no notional: its realized P&L × multiplier (and the commission) reaches cash when a
  position is reduced, and an open one is worth its unrealized P&L × multiplier at the close;
* a **forex pair** moves two balances: buying 10,000 EUR.USD at 1.10 adds 10,000 EUR and takes 11,000 USD.
  ``cash`` is every balance in USD, each valued at its pair's latest close (what IB's TotalCashValue
  counts); a pair's position adds nothing beside it.

All amounts are in the account's base currency, USD.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from copilot_quant.backtest.accounts import rate_source
from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.orders import Fill, Position

__all__ = ["AccountLedger"]

BASE = "USD"


@dataclass(frozen=True, slots=True)
class _Terms:
    """How one symbol is booked: its kind, multiplier, quote currency and (for a pair) which currency its
    price converts into USD and whether inverted (``USD.JPY``)."""

    kind: AssetClass
    multiplier: float = 1.0
    quote: str = BASE
    base: str = ""
    converts: tuple[str, bool] | None = None


_STOCK = _Terms(AssetClass.STOCK)


class AccountLedger:
    """Cash (per currency) and positions from fills (worker thread)."""

    __slots__ = ("_registry", "_terms", "balances", "cash", "positions", "rates")

    def __init__(
        self,
        cash: float = 0.0,
        positions: Iterable[Position] = (),
        registry: InstrumentRegistry | None = None,
    ) -> None:
        self._registry = registry or InstrumentRegistry()
        self._terms: dict[str, _Terms] = {}
        #: The base currency's own balance (USD).
        self.cash = float(cash)
        #: The other currencies' balances (forex trades), by currency.
        self.balances: dict[str, float] = {}
        #: The latest USD value of one unit of each foreign currency (from its pair's fills and closes).
        self.rates: dict[str, float] = {}
        self.positions: dict[str, Position] = {p.symbol: p.snapshot() for p in positions if not p.is_flat}
        for symbol, position in self.positions.items():
            position.multiplier = self.terms(symbol).multiplier  # realized P&L in money, as booked below
            self._open_pair(symbol, position)

    def _open_pair(self, symbol: str, position: Position) -> None:
        """A pair held at start: IB's cash (TotalCashValue) already counts its balances, so the base balance
        bought is moved out of the USD figure into its own currency (at the position's last price)."""
        terms = self.terms(symbol)
        price = position.last_price or position.avg_entry_price
        if terms.kind is not AssetClass.FOREX or not price:
            return
        self._observe(terms, price)
        for currency, amount in ((terms.base, position.quantity), (terms.quote, -position.quantity * price)):
            if currency != BASE and currency in self.rates:
                self.balances[currency] = self.balances.get(currency, 0.0) + amount
                self.cash -= amount * self.rates[currency]

    def terms(self, symbol: str) -> _Terms:
        """How ``symbol`` is booked (a symbol the registry cannot read is a stock)."""
        known = self._terms.get(symbol)
        if known is not None:
            return known
        try:
            inst = self._registry.resolve(symbol)
        except ConfigError:
            inst = None
        if inst is None or inst.kind is AssetClass.STOCK:
            terms = _STOCK
        else:
            terms = _Terms(inst.kind, inst.multiplier, inst.currency, inst.root, rate_source(inst, BASE))
        self._terms[symbol] = terms
        return terms

    def _observe(self, terms: _Terms, price: float) -> None:
        if terms.converts is not None and math.isfinite(price) and price > 0:
            currency, inverted = terms.converts
            self.rates[currency] = 1.0 / price if inverted else price

    def _credit(self, currency: str, amount: float) -> None:
        if currency == BASE:
            self.cash += amount
        else:
            self.balances[currency] = self.balances.get(currency, 0.0) + amount

    def apply(self, fill: Fill) -> None:
        symbol = fill.symbol
        terms = self.terms(symbol)
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol, multiplier=terms.multiplier)
        realized = position.update_from_fill(fill)
        self._book(terms, fill.signed_quantity, fill.fill_price, realized)
        self.cash -= fill.commission  # IB charges commissions in the base currency
        if position.is_flat:
            del self.positions[symbol]

    def _book(self, terms: _Terms, signed: float, price: float, realized: float) -> None:
        """The cash a trade of ``signed`` at ``price`` moves (``realized``: the P&L it closed, in money)."""
        if terms.kind is AssetClass.FUTURE:
            self._credit(terms.quote, realized)
        elif terms.kind is AssetClass.FOREX:
            self._observe(terms, price)
            self._credit(terms.base, signed)
            self._credit(terms.quote, -signed * price)
        else:
            self.cash -= signed * price

    def correct(self, symbol: str, sign: float, old: tuple[float, float], new: tuple[float, float]) -> None:
        """IB corrected an execution: ``old`` ``(quantity, price)`` is replaced by ``new`` (``sign``: +1 for a
        buy order, -1 for a sell). The commission stays as first booked (IB reports the new one apart)."""
        terms = self.terms(symbol)
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol, multiplier=terms.multiplier)
        for quantity, price, direction in ((old[0], old[1], -sign), (new[0], new[1], sign)):
            if quantity:
                realized = position.apply(direction * quantity, price)
                self._book(terms, direction * quantity, price, realized)
        if position.is_flat:
            del self.positions[symbol]

    def _rate(self, currency: str, marks: Mapping[str, float]) -> float:
        """USD per unit of ``currency``: its pair's close in ``marks`` when there is one, else the latest."""
        for symbol in (f"{currency}.{BASE}", f"{BASE}.{currency}"):
            price = marks.get(symbol)
            if price is not None and math.isfinite(price) and price > 0:
                return price if symbol.startswith(currency) else 1.0 / price
        return self.rates.get(currency, math.nan)

    def cash_value(self, marks: Mapping[str, float]) -> float:
        """Every currency's balance in USD at ``marks`` (the backtest's ``cash``)."""
        return self.cash + sum(amount * self._rate(c, marks) for c, amount in self.balances.items() if amount)

    def market_value(self, marks: Mapping[str, float]) -> float:
        """Value of the open positions beside cash at ``marks`` (a symbol without one: its last mark): stocks
        at the close, futures their open P&L × multiplier; pairs are in cash."""
        total = 0.0
        for symbol, position in self.positions.items():
            terms = self.terms(symbol)
            if terms.kind is AssetClass.FOREX:
                continue
            price = marks.get(symbol)
            if price is None or math.isnan(price):
                price = position.last_price or position.avg_entry_price
            if terms.kind is AssetClass.FUTURE:
                open_pnl = position.quantity * (price - position.avg_entry_price) * terms.multiplier
                total += open_pnl * (1.0 if terms.quote == BASE else self._rate(terms.quote, marks))
            else:
                total += position.quantity * price
        return total

    def equity(self, marks: Mapping[str, float]) -> float:
        return self.cash_value(marks) + self.market_value(marks)
