"""One strategy's book on a shared account, built from its own fills only.

Several strategies may trade one account. The broker (or IB) holds the account's netted positions and its
cash; each strategy has a :class:`StrategyBook` that applies only the fills of *its* orders, so it knows
what that strategy holds and has earned even when another strategy trades the same symbol the other way.

The book follows the account's own rules (:mod:`copilot_quant.backtest.accounts`), so that the books add up
to the account. All its money figures are in the account's base currency, USD:

* ``positions`` — per symbol, the signed quantity the strategy's own fills add up to, their average cost
  (:class:`~copilot_quant.model.orders.Position` rules: it changes when a position is opened or grown;
  reducing it realizes P&L; crossing zero realizes all and opens the rest at the fill price), and the
  unrealized P&L at the last mark (in the symbol's quote currency, a future's times its multiplier).
* ``capital`` — the strategy's share of the account (its sleeve), fixed when the book is made.
* ``balances()`` — the cash its fills moved, per currency (``capital`` not included), as the account moves it:

  - a **stock** moves its notional, ``-quantity × price``, in its currency;
  - a **future** (``MESZ6``) moves no notional: only the P&L a fill realizes, ``points × quantity ×
    multiplier``, in the contract's currency; the multiplier is the fill's (:attr:`Fill.multiplier`, set by
    the broker from the run's registry) or else the book's registry's;
  - a **forex pair** ``BASE.QUOTE`` moves two balances: buying ``q`` at ``p`` adds ``q`` of BASE and takes
    ``q × p`` of QUOTE (``USD.JPY``: USD in, JPY out); the pair's position adds nothing beside them.

  Commissions are taken from the USD balance (IB charges them in the base currency).
* ``cash`` = ``capital`` + every balance valued in USD at the **rate in force** (``cash_flow`` is that
  without the capital); ``equity`` = ``cash`` + the stocks' market value + the futures' unrealized P&L, each
  converted from its currency at the rate in force; ``pnl`` = ``equity - capital``.
* ``realized_pnl`` — P&L realized, each realization converted at the rate in force when it was realized
  (a pair quoting USD itself, ``USD.JPY``, at its own fill price); ``unrealized_pnl`` at the rate now.

**The rate in force** (USD per unit of a currency) is the latest the book was given: :meth:`mark` with a pair
that converts a currency into USD (``EUR.USD`` → EUR, ``USD.JPY`` → JPY, inverted) sets it, so does a fill of
such a pair (its own price), and :meth:`set_rates` sets several at once. In a **backtest** the engine gives
the book the account's rates (:mod:`copilot_quant.backtest.books`): at a closed bar, the converting pairs'
closes of that bar; while a bar's orders execute, the rates the broker holds then (the previous close, or
the pair's own fill). **Live**, the strategy's view marks the book with the closes of the bar being decided
on (:class:`~copilot_quant.live.account_view.BarMarks`, which include the run's pairs), so the rate is the
converting pair's close of that bar, else the pair's latest fill. A balance in a currency whose rate the book
was never given cannot be valued: reading ``cash`` then raises :class:`ConfigError` naming the pair to add.

With one strategy and ``capital`` = the account's starting cash, ``cash`` and ``equity`` are the account's.
With several, the books' quantities add up to the account's position per symbol, their balances to the
account's balances per currency for stocks and pairs, and — with the same rates and marks, and capitals
adding up to the starting cash — their ``equity`` to the account's. A future's realized P&L is the
exception for cash alone: when one strategy buys the contract another sold, the account realizes P&L that
the books still hold as unrealized, so the books' ``cash`` may differ from the account's while their
``equity`` does not. The sleeve is for sizing and reporting: buying power and margin are the account's,
shared by every strategy on it.

A book is plain single-threaded state: an engine applies fills and marks from one thread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.orders import Fill, Position

__all__ = ["BASE_CURRENCY", "StrategyBook", "net_quantities"]

#: The account's currency: every amount a book reports is in it.
BASE_CURRENCY = "USD"


@dataclass(frozen=True, slots=True)
class _Terms:
    """How one symbol is booked: its kind, multiplier, quote currency, a pair's base currency, and which
    currency its price converts into USD (and whether inverted: ``USD.JPY`` prices JPY as ``1 / price``)."""

    kind: AssetClass = AssetClass.STOCK
    multiplier: float = 1.0
    quote: str = BASE_CURRENCY
    base: str = ""
    converts: tuple[str, bool] | None = None


_STOCK = _Terms()


def _terms_of(symbol: str, registry: InstrumentRegistry) -> _Terms:
    try:
        inst = registry.resolve(symbol)
    except ConfigError:  # a symbol the registry cannot read is booked as a USD stock
        return _STOCK
    if inst.kind is AssetClass.FUTURE and not inst.continuous:
        return _Terms(AssetClass.FUTURE, inst.multiplier, inst.currency)
    if inst.kind is AssetClass.FOREX:
        converts = None
        if inst.currency == BASE_CURRENCY and inst.root != BASE_CURRENCY:
            converts = (inst.root, False)
        elif inst.root == BASE_CURRENCY and inst.currency != BASE_CURRENCY:
            converts = (inst.currency, True)
        return _Terms(AssetClass.FOREX, 1.0, inst.currency, inst.root, converts)
    if inst.kind is AssetClass.STOCK and inst.currency != BASE_CURRENCY:
        return _Terms(AssetClass.STOCK, 1.0, inst.currency)
    return _STOCK


class StrategyBook:
    """The positions, P&L and cash flow of one strategy's fills; see the module docstring.

    Args:
        capital: the strategy's share of the account, in USD.
        name: the strategy's name (for messages).
        registry: what the symbols are (the run's own, with its custom instruments); default: the standard one.
    """

    __slots__ = (
        "_balances",
        "_positions",
        "_realized",
        "_registry",
        "_terms",
        "capital",
        "commissions",
        "fill_count",
        "name",
        "rates",
    )

    def __init__(
        self, capital: float = 0.0, name: str = "", registry: InstrumentRegistry | None = None
    ) -> None:
        capital = float(capital)
        if not math.isfinite(capital):
            raise ConfigError(f"a strategy book's capital must be a finite amount, got {capital!r}")
        self.name = name
        self.capital = capital
        self.commissions = 0.0
        self.fill_count = 0
        self._registry = registry
        self._positions: dict[str, Position] = {}
        #: currency -> what the fills moved in it (USD first), capital not included
        self._balances: dict[str, float] = {BASE_CURRENCY: 0.0}
        #: the realized P&L in USD, each realization at the rate in force then
        self._realized = 0.0
        #: currency -> USD per unit, the rate in force (see the module docstring)
        self.rates: dict[str, float] = {}
        #: symbol -> how it is booked, resolved once per symbol
        self._terms: dict[str, _Terms] = {}

    def terms(self, symbol: str) -> _Terms:
        known = self._terms.get(symbol)
        if known is None:
            if self._registry is None:
                self._registry = InstrumentRegistry()
            known = self._terms[symbol] = _terms_of(symbol, self._registry)
        return known

    def __repr__(self) -> str:
        held = ", ".join(f"{s} {p.quantity:g}" for s, p in self._positions.items() if not p.is_flat)
        return f"StrategyBook({self.name!r}, capital={self.capital:g}, [{held}])"

    # ------------------------------------------------------------------ rates
    def rate(self, currency: str) -> float:
        """USD per unit of ``currency`` in force; raises :class:`ConfigError` when the book has none."""
        if currency == BASE_CURRENCY:
            return 1.0
        rate = self.rates.get(currency)
        if rate is None:
            raise ConfigError(
                f"{self.name or 'a strategy book'} holds {currency} but has no {currency}/{BASE_CURRENCY} rate: "
                f"no price of {currency}.{BASE_CURRENCY} (or {BASE_CURRENCY}.{currency}) was seen; add that "
                "pair to the symbols"
            )
        return rate

    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Set the rates in force (USD per unit, by currency); a non-positive or NaN rate changes nothing."""
        for currency, rate in rates.items():
            if math.isfinite(rate) and rate > 0:
                self.rates[currency] = float(rate)

    def _observe(self, terms: _Terms, price: float) -> None:
        if terms.converts is not None and math.isfinite(price) and price > 0:
            currency, inverted = terms.converts
            self.rates[currency] = 1.0 / price if inverted else price

    # ------------------------------------------------------------------ booking
    def apply_fill(self, fill: Fill) -> float:
        """Book one of the strategy's fills; returns the P&L it realized (before commission, in its quote
        currency; a future's times its multiplier)."""
        multiplier = fill.multiplier
        return self.apply(
            fill.symbol,
            fill.signed_quantity,
            fill.fill_price,
            fill.commission,
            multiplier=multiplier if multiplier != 1.0 else None,
        )

    def apply(
        self,
        symbol: str,
        signed_quantity: float,
        price: float,
        commission: float = 0.0,
        *,
        multiplier: float | None = None,
    ) -> float:
        """Book a trade of ``signed_quantity`` (negative: a sale) of ``symbol`` at ``price``; ``multiplier``:
        the contract's, when the caller knows it (a future's fill), else the registry's."""
        if not (math.isfinite(signed_quantity) and signed_quantity != 0):
            raise ConfigError(f"a booked trade needs a non-zero finite quantity, got {signed_quantity!r}")
        if not (math.isfinite(price) and price > 0):
            raise ConfigError(f"a booked trade needs a positive finite price, got {price!r}")
        if not (math.isfinite(commission) and commission >= 0):
            raise ConfigError(f"a booked trade's commission must be >= 0, got {commission!r}")
        terms = self._terms.get(symbol) or self.terms(symbol)
        if multiplier is not None and multiplier != terms.multiplier and symbol not in self._positions:
            if not (math.isfinite(multiplier) and multiplier > 0):
                raise ConfigError(f"a booked trade's multiplier must be > 0, got {multiplier!r}")
            # the fill knows its contract (a run's own registry): booked as a future in its quote currency
            kind = AssetClass.FUTURE if terms.kind is not AssetClass.FOREX else terms.kind
            terms = self._terms[symbol] = _Terms(
                kind, float(multiplier), terms.quote, terms.base, terms.converts
            )
        position = self._positions.get(symbol)
        if position is None:
            position = self._positions[symbol] = Position(symbol, multiplier=terms.multiplier)
        realized = position.apply(signed_quantity, price, commission)  # a future's in money (x multiplier)
        balances = self._balances
        if terms.kind is AssetClass.FUTURE:
            balances[terms.quote] = balances.get(terms.quote, 0.0) + realized
        elif terms.kind is AssetClass.FOREX:
            self._observe(terms, price)
            balances[terms.base] = balances.get(terms.base, 0.0) + signed_quantity
            balances[terms.quote] = balances.get(terms.quote, 0.0) - signed_quantity * price
        else:
            balances[terms.quote] = balances.get(terms.quote, 0.0) - signed_quantity * price
        balances[BASE_CURRENCY] -= commission
        if realized:
            self._realized += (
                realized if terms.quote == BASE_CURRENCY else realized * self._rate_or_nan(terms.quote)
            )
        self.commissions += commission
        self.fill_count += 1
        return realized

    def _rate_or_nan(self, currency: str) -> float:
        return 1.0 if currency == BASE_CURRENCY else self.rates.get(currency, math.nan)

    def mark(self, symbol: str, price: float) -> None:
        """Value the position in ``symbol`` (if any) at ``price`` — and, for a pair converting a currency
        into USD, take ``price`` as that currency's rate; a NaN or missing price changes nothing."""
        if not (math.isfinite(price) and price > 0):
            return
        position = self._positions.get(symbol)
        if position is not None:
            position.update_unrealized_pnl(price)
        if "." in symbol:  # only a pair converts a currency: no registry lookup per stock mark
            self._observe(self.terms(symbol), price)

    def mark_all(self, prices: Mapping[str, float]) -> None:
        for symbol, price in prices.items():
            self.mark(symbol, price)

    # ------------------------------------------------------------------ reading
    def quantity(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0 when flat or never traded)."""
        position = self._positions.get(symbol)
        return position.quantity if position is not None else 0.0

    def positions(self) -> dict[str, Position]:
        """Open positions by symbol, as snapshots (mutating them does not change the book)."""
        return {s: p.snapshot() for s, p in self._positions.items() if not p.is_flat}

    def symbols(self) -> list[str]:
        """Every symbol the strategy has traded, open or flat."""
        return list(self._positions)

    def balances(self) -> dict[str, float]:
        """What the fills moved per currency (USD first, commissions in it; ``capital`` not included)."""
        return dict(self._balances)

    def cash_balances(self) -> dict[str, float]:
        """Cash per currency as the account states it: the balances, with ``capital`` in USD."""
        out = self.balances()
        out[BASE_CURRENCY] += self.capital
        return out

    @property
    def holds_currencies(self) -> bool:
        """Whether any balance is in another currency than USD: ``cash`` then moves with the rates."""
        return any(amount for c, amount in self._balances.items() if c != BASE_CURRENCY)

    @property
    def cash_flow(self) -> float:
        """What the fills moved, every currency in USD at the rate in force."""
        balances = self._balances
        if len(balances) == 1:  # USD only (stocks, USD futures): no rate to apply
            return balances[BASE_CURRENCY]
        return sum((amount * self.rate(c) for c, amount in self._balances.items() if amount), 0.0)

    @property
    def cash(self) -> float:
        return self.capital + self.cash_flow

    @property
    def market_value(self) -> float:
        """Value of the open positions beside cash, in USD at the rates in force: a stock's quantity × its
        last mark (the fill price before any mark), a future's unrealized P&L; a pair's is in the balances."""
        total = 0.0
        for symbol, p in self._positions.items():
            if p.is_flat:
                continue
            terms = self.terms(symbol)
            if terms.kind is AssetClass.FOREX:
                continue
            amount = p.unrealized_pnl if terms.kind is AssetClass.FUTURE else p.market_value
            total += amount * self.rate(terms.quote)
        return total

    @property
    def equity(self) -> float:
        return self.cash + self.market_value

    @property
    def realized_pnl(self) -> float:
        """Realized P&L before commissions, in USD (each at the rate in force when it was realized)."""
        return self._realized

    @property
    def unrealized_pnl(self) -> float:
        """Unrealized P&L of the open positions, in USD at the rates in force."""
        return sum(
            (
                p.unrealized_pnl * self.rate(self.terms(s).quote)
                for s, p in self._positions.items()
                if not p.is_flat
            ),
            0.0,
        )

    @property
    def pnl(self) -> float:
        """Net P&L: ``equity - capital`` (realized + unrealized - commissions when every trade is in USD)."""
        return self.equity - self.capital


def net_quantities(books: Iterable[StrategyBook]) -> dict[str, float]:
    """Per symbol, the quantity the books add up to: what the account (and IB) holds for them."""
    total: dict[str, float] = {}
    for book in books:
        for symbol in book.symbols():
            total[symbol] = total.get(symbol, 0.0) + book.quantity(symbol)
    return total
