"""Futures and forex on the backtest account: what a trade of each kind does to cash, and what it needs.

The backtest broker (:class:`~copilot_quant.backtest.broker.SimpleBroker`) keeps its stock rules untouched;
for any symbol the :class:`~copilot_quant.model.instruments.InstrumentRegistry` resolves to a future or a
forex pair it asks :class:`InstrumentAccounts` instead. The rules, in the account's base currency (USD):

* **Futures** — buying or selling a contract moves no cash but the commission; the position's P&L,
  ``quantity × (price − average) × multiplier``, is unrealized while it is held and paid into cash (in the
  contract's currency) when it is closed. Equity is cash plus the unrealized P&L. Instead of full cash a
  position needs **initial margin** per contract (:attr:`Instrument.initial_margin`, configurable with
  :func:`with_margins`): an order that raises the account's margin requirement above its equity (after
  the commission) is rejected with a reason starting ``"insufficient margin"``. Falling below the
  **maintenance margin** later is reported (``result.margin_calls``), not liquidated.
* **Forex** — a pair ``BASE.QUOTE`` trades currencies: buying ``q`` EUR.USD at ``p`` adds ``q`` EUR and
  removes ``q × p`` USD; the account keeps one cash balance per currency. Each balance is worth
  ``balance × rate`` in USD, the rate being the latest price of the pair that converts it (``EUR.USD`` for
  EUR, ``1 / USD.JPY`` for JPY). The EUR.USD position itself is reported (quantity, average rate,
  unrealized P&L) but adds nothing to equity: the balances already hold its value. A forex position needs
  :attr:`InstrumentAccounts.forex_margin` of its notional as margin (initial and maintenance alike).
* **Stocks** in an account that also holds futures or forex count at their full value in the margin
  requirement (no leverage, as in a stock-only account).

So at every moment ``equity == Σ cash[c] × rate[c] + Σ stock value + Σ futures unrealized P&L × rate``.

Commissions are in the base currency: IB's by default (:mod:`copilot_quant.model.instrument_costs`:
futures per contract, tiered by the month's contracts of the root, plus exchange and NFA fees; forex 0.2 basis
points of the USD value, USD 2 minimum per order), or one model for every future / every pair
(``futures_commission=PerContractCommission(2.25)``). A fill's ``fees`` is the third-party part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from copilot_quant.errors import ConfigError
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import CommissionModel, CostBreakdown
from copilot_quant.model.instrument_costs import ForexCommission, InstrumentCosts
from copilot_quant.model.instruments import FOREX_MARGIN_RATE, AssetClass, Instrument, InstrumentRegistry
from copilot_quant.model.orders import Order, Position

__all__ = [
    "BASE_CURRENCY",
    "MARGIN_REJECT",
    "InstrumentAccounts",
    "PerContractCommission",
    "rate_source",
    "with_margins",
]

#: The account's currency: equity, commissions and margins are reported in it.
BASE_CURRENCY = "USD"

#: How the reason of an order rejected for margin starts.
MARGIN_REJECT = "insufficient margin"


@dataclass(frozen=True, slots=True)
class PerContractCommission:
    """A flat amount per futures contract, fees included (e.g. to match another backtester)."""

    per_contract: float = 0.85

    def __post_init__(self) -> None:
        if not math.isfinite(self.per_contract) or self.per_contract < 0:
            raise ConfigError(f"per_contract must be >= 0, got {self.per_contract!r}")

    def commission(self, price: float, quantity: float) -> float:
        return self.per_contract * abs(quantity)


def with_margins(
    registry: InstrumentRegistry, margins: Mapping[str, tuple[float, float]]
) -> InstrumentRegistry:
    """``registry`` with the initial/maintenance margin per contract of some futures roots changed.

    ``margins`` maps a root to ``(initial, maintenance)`` in the contract's currency, e.g.
    ``{"ES": (20_000, 18_000)}``; every contract of the root (and its continuous series) gets them.
    """
    futures = dict(registry.futures)
    for root, pair in margins.items():
        spec = registry.spec(root.upper())
        initial, maintenance = (float(v) for v in pair)
        if not (math.isfinite(initial) and math.isfinite(maintenance)) or not 0 <= maintenance <= initial:
            raise ConfigError(
                f"margins for {root}: need 0 <= maintenance <= initial, got initial={pair[0]!r}, "
                f"maintenance={pair[1]!r}"
            )
        futures[spec.root] = replace(spec, initial_margin=initial, maintenance_margin=maintenance)
    return InstrumentRegistry(
        futures=futures, reference=registry.reference, instruments=dict(registry.instruments)
    )


def rate_source(instrument: Instrument, base: str = BASE_CURRENCY) -> tuple[str, bool] | None:
    """Which currency ``instrument``'s price converts into ``base``, and whether inverted:
    ``EUR.USD`` → ``("EUR", False)`` (1 EUR = price USD), ``USD.JPY`` → ``("JPY", True)``."""
    if instrument.kind is not AssetClass.FOREX:
        return None
    if instrument.currency == base and instrument.root != base:
        return instrument.root, False
    if instrument.root == base and instrument.currency != base:
        return instrument.currency, True
    return None


@dataclass(slots=True)
class InstrumentAccounts:
    """The futures/forex side of one backtest account: terms per symbol, cash per currency, rates.

    Args:
        registry: resolves symbols; a symbol it calls a USD stock is left to the broker's stock rules.
        costs: IB's futures and forex commissions (:class:`~copilot_quant.model.instrument_costs.InstrumentCosts`:
            ``futures_plan``, ``exchange_fees``, ``overrides`` per symbol or root).
        futures_commission: one model for every futures contract instead (``commission(price, contracts)``).
        forex_commission: one model for every pair instead, called with the USD value of one unit of the
            base currency as the price.
        forex_margin: the fraction of a forex position's notional held as margin.
    """

    registry: InstrumentRegistry
    costs: InstrumentCosts = field(default_factory=InstrumentCosts)
    futures_commission: CommissionModel | None = None
    forex_commission: CommissionModel | None = None
    forex_margin: float = FOREX_MARGIN_RATE
    base: str = BASE_CURRENCY
    #: cash in each currency but the base one (the broker keeps the base currency's cash itself)
    balances: dict[str, float] = field(default_factory=dict)
    #: latest known value of one unit of each currency in the base currency
    rates: dict[str, float] = field(default_factory=dict)
    _terms: dict[str, Instrument | None] = field(default_factory=dict)
    #: one cost meter per commission model (per futures root, per pair): the month's volume for IB's tiers
    _meters: dict[str, CostMeter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.costs, InstrumentCosts):
            raise ConfigError(
                f"costs must be an InstrumentCosts, got {type(self.costs).__name__}; pass a model for every "
                "contract as futures_commission=... (or forex_commission=...)"
            )
        if not 0 < self.forex_margin <= 1:
            raise ConfigError(f"forex_margin must be in (0, 1], e.g. 0.03; got {self.forex_margin!r}")

    def fresh(self) -> InstrumentAccounts:
        """The same terms with no cash and no rates: a new account's."""
        return InstrumentAccounts(
            self.registry,
            self.costs,
            self.futures_commission,
            self.forex_commission,
            self.forex_margin,
            self.base,
        )

    def instrument(self, symbol: str) -> Instrument | None:
        """``symbol``'s terms, or ``None`` for a plain stock in the base currency (the broker's own rules)."""
        try:
            return self._terms[symbol]
        except KeyError:
            inst: Instrument | None = self.registry.resolve(symbol)
            if inst is not None and inst.kind is AssetClass.STOCK and inst.currency == self.base:
                inst = None
            self._terms[symbol] = inst
            return inst

    # ---------------------------------------------------------------- currencies
    def rate(self, currency: str) -> float:
        if currency == self.base:
            return 1.0
        try:
            return self.rates[currency]
        except KeyError:
            raise ConfigError(
                f"no {currency}/{self.base} rate yet: the account holds {currency} but no price of "
                f"{currency}.{self.base} (or {self.base}.{currency}) has been seen; add that pair to the symbols"
            ) from None

    def observe(self, symbol: str, price: float) -> None:
        """A price of ``symbol`` was seen: if it is a pair that converts a currency, that is its rate now."""
        inst = self.instrument(symbol)
        if inst is None or not math.isfinite(price) or price <= 0:
            return
        source = rate_source(inst, self.base)
        if source is not None:
            currency, inverted = source
            self.rates[currency] = 1.0 / price if inverted else price

    def foreign_cash(self) -> float:
        """The non-base balances, in the base currency at the latest rates."""
        return sum(amount * self.rate(c) for c, amount in self.balances.items() if amount)

    # ---------------------------------------------------------------- trades
    def meter(self, inst: Instrument) -> CostMeter | None:
        """The cost meter pricing ``inst``'s trades (``None`` for a stock: the broker's stock model);
        raises :class:`ConfigError` when IB's table lacks what the instrument needs (a root's exchange fee)."""
        if inst.kind is AssetClass.STOCK:
            return None
        if self._is_cross(inst):
            # IB values a cross pair's trade in USD at the quote currency's rate of the moment
            return CostMeter(ForexCommission.ibkr(inst, usd_per_quote=self.rate(inst.currency)))
        key = inst.root if inst.kind is AssetClass.FUTURE else inst.symbol
        meter = self._meters.get(key)
        if meter is None:
            model = self.futures_commission if inst.kind is AssetClass.FUTURE else self.forex_commission
            if model is None:
                model = self.costs.for_instrument(inst)
            meter = self._meters[key] = CostMeter(model)
        return meter

    def _is_cross(self, inst: Instrument) -> bool:
        return (
            inst.kind is AssetClass.FOREX
            and self.forex_commission is None
            and self.base not in (inst.root, inst.currency)
            and inst.symbol not in self.costs.overrides
        )

    def quote(
        self, inst: Instrument, order: Order, price: float, quantity: float, when: datetime
    ) -> CostBreakdown | None:
        """What an execution of ``quantity`` of ``order`` at ``price`` costs (``None`` for a stock)."""
        meter = self.meter(inst)
        if meter is None:
            return None
        if inst.kind is AssetClass.FOREX and self.forex_commission is not None:
            price = price * self.rate(inst.currency)  # the override is priced in USD per base unit
        return meter.quote(
            price, quantity, order.side_enum, when,
            filled_before=order.filled_quantity, avg_price_before=order.avg_fill_price,
        )  # fmt: skip

    def record(self, inst: Instrument, quantity: float, when: datetime) -> None:
        """Count an execution in its meter's month (IB's volume tiers)."""
        meter = self.meter(inst)
        if meter is not None and not self._is_cross(inst):
            meter.record(quantity, when)

    def cash_moves(self, inst: Instrument, signed: float, price: float, realized: float) -> dict[str, float]:
        """What a trade of ``signed`` units at ``price`` adds to each currency (commission aside), given
        the P&L it realized on the position."""
        if inst.kind is AssetClass.FOREX:
            return {inst.root: signed, inst.currency: -signed * price}
        if inst.kind is AssetClass.FUTURE:
            return {inst.currency: realized}
        return {inst.currency: -signed * price}  # a stock in another currency

    def value(self, inst: Instrument | None, pos: Position) -> float:
        """What a position adds to equity, in the base currency, at its last mark."""
        if inst is None:
            return pos.market_value
        if inst.kind is AssetClass.FOREX:
            return 0.0  # its value is in the currency balances
        amount = pos.unrealized_pnl if inst.kind is AssetClass.FUTURE else pos.market_value
        return amount * self.rate(inst.currency)

    def requirement(self, inst: Instrument | None, quantity: float, price: float) -> float:
        """Initial margin a position of ``quantity`` at ``price`` needs, in the base currency."""
        if not quantity:
            return 0.0
        if inst is None:
            return abs(quantity * price)
        if inst.kind is AssetClass.FUTURE:
            return abs(quantity) * inst.initial_margin * self.rate(inst.currency)
        if inst.kind is AssetClass.FOREX:
            return abs(quantity * price) * self.rate(inst.currency) * self.forex_margin
        return abs(quantity * price) * self.rate(inst.currency)

    def maintenance(self, positions: Iterable[Position]) -> float:
        """The maintenance margin the futures and forex positions held need, in the base currency
        (forex: :attr:`forex_margin` of the notional at the last mark)."""
        total = 0.0
        for pos in positions:
            inst = self.instrument(pos.symbol)
            if inst is None or not pos.quantity:
                continue
            if inst.kind is AssetClass.FUTURE:
                total += abs(pos.quantity) * inst.maintenance_margin * self.rate(inst.currency)
            elif inst.kind is AssetClass.FOREX:
                mark = pos.last_price or pos.avg_entry_price
                total += abs(pos.quantity * mark) * self.rate(inst.currency) * self.forex_margin
        return total
