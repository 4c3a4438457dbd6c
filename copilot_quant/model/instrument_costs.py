"""IBKR costs for futures and spot forex, and :func:`costs_for` that picks the model of an instrument.

Figures from IB's published pricing (IBKR Pro, United States; read 2026-12-07 from stored copies of the
pages; rates change, so every figure is a parameter):

**Futures commission** — https://www.interactivebrokers.com/en/pricing/commissions-futures.php (also
served as interactivebrokers.ca / .ie / 1.api.ibkr.com ``/en/pricing/commissions-futures.php``):

============================  =================  ==========================================
Monthly volume (contracts)    Tiered, USD        Micro E-mini etc. (MES, MNQ, M2K, MYM …)
============================  =================  ==========================================
≤ 1,000                       0.85 / contract    0.25 / contract
1,001 – 10,000                0.65               0.20
10,001 – 20,000               0.45               0.15
> 20,000                      0.25               0.10
============================  =================  ==========================================

Fixed: USD 0.85 per contract at any volume, exchange and regulatory fees on top. The tiers apply "on a
marginal basis for a given calendar month" (IB's example: of 1,500 contracts in a month, the first 1,000
pay the first tier and the next 500 the second), as :class:`~copilot_quant.model.tiered.TieredCommission`
does for stocks. (The micro column's fixed rate is not on the page we read; ``plan="fixed"`` charges a
micro its first-tier 0.25.)

**Exchange and regulatory fees** passed through per contract — IB's "Fees Charged to Offset ... Exchange
and Regulatory Fees" pages (``/en/accounts/fees/CME.php``, ``NYMEX.php``, ``COMEX.php``), non-member
rates: CME E-mini S&P 500 (ES) and E-mini Nasdaq-100 (NQ) USD 1.38; Micro E-mini (MES, MNQ) USD 0.35;
NYMEX crude (CL) USD 1.50; COMEX gold (GC) USD 1.60; NFA regulatory fee USD 0.02 on every contract.
A root missing from :data:`IB_EXCHANGE_FEES` (ZN: its CBOT page was not found) is refused with a named
error until its fee is given.

**Spot forex** — https://www.interactivebrokers.com/en/pricing/commissions-spot-currencies.php (read from
the interactivebrokers.com.au copy): 0.20 basis point × trade value, at least USD 2.00 per order, for a
monthly trade value up to USD 1 bn (0.15 bp / USD 1.50 to 2 bn, 0.10 bp / USD 1.25 to 5 bn, 0.08 bp /
USD 1.00 above). 1 bp = 0.0001; the trade value is converted to USD (the account's base). IB's example
(interactivebrokers.com.au ``/en/index.php?f=39753&p=fx``, same rates): 100,000 USD.EUR costs USD 2.00.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import CommissionModel, CostBreakdown, ZeroCommission
from copilot_quant.model.instruments import AssetClass, Instrument
from copilot_quant.model.orders import OrderSide

__all__ = [
    "IB_EXCHANGE_FEES",
    "IB_FOREX_TIERS",
    "IB_FUTURES_TIERS",
    "IB_MICRO_TIERS",
    "MICRO_ROOTS",
    "NFA_FEE",
    "ForexCommission",
    "FuturesCommission",
    "InstrumentCosts",
    "costs_for",
]

#: ``(highest cumulative monthly contract count of the tier, USD per contract)``; the last is unbounded.
IB_FUTURES_TIERS: tuple[tuple[float, float], ...] = (
    (1_000, 0.85),
    (10_000, 0.65),
    (20_000, 0.45),
    (math.inf, 0.25),
)
IB_MICRO_TIERS: tuple[tuple[float, float], ...] = (
    (1_000, 0.25),
    (10_000, 0.20),
    (20_000, 0.15),
    (math.inf, 0.10),
)
#: Roots IB prices on the micro column (the ones in the registry's table, and their siblings on the page).
MICRO_ROOTS = frozenset({"MES", "MNQ", "M2K", "MYM", "MCL", "MGC"})
#: Exchange fee per contract (USD, non-member) by futures root.
IB_EXCHANGE_FEES: dict[str, float] = {
    "ES": 1.38,
    "NQ": 1.38,
    "MES": 0.35,
    "MNQ": 0.35,
    "CL": 1.50,
    "GC": 1.60,
}
#: NFA regulatory fee per contract (USD).
NFA_FEE = 0.02
#: ``(highest monthly trade value in USD, basis points, USD minimum per order)``.
IB_FOREX_TIERS: tuple[tuple[float, float, float], ...] = (
    (1e9, 0.20, 2.00),
    (2e9, 0.15, 1.50),
    (5e9, 0.10, 1.25),
    (math.inf, 0.08, 1.00),
)


def _marginal(tiers: tuple[tuple[float, float], ...], start: float, quantity: float) -> float:
    """The cost of units ``start .. start + quantity`` of the month, each at the tier it falls in."""
    total, done, floor = 0.0, 0.0, 0.0
    for ceiling, rate in tiers:
        low, high = max(start + done, floor), min(start + quantity, ceiling)
        if high > low:
            total += (high - low) * rate
            done += high - low
        floor = ceiling
    return total


@dataclass(frozen=True, slots=True)
class FuturesCommission:
    """IBKR per-contract commission (tiered by the month's contracts, or fixed) plus exchange and NFA fees.

    ``commission(price, quantity)`` is the whole cost of an order at the month's first contract;
    :meth:`order_costs` splits IB's commission from the fees and prices by the month's volume (the
    :class:`~copilot_quant.model.cost_meter.CostMeter` counts contracts).
    """

    root: str
    exchange_fee: float
    regulatory_fee: float = NFA_FEE
    plan: str = "tiered"
    tiers: tuple[tuple[float, float], ...] = IB_FUTURES_TIERS

    def __post_init__(self) -> None:
        if self.plan not in ("tiered", "fixed"):
            raise ConfigError(f"plan must be 'tiered' or 'fixed', got {self.plan!r}")
        if self.exchange_fee < 0 or self.regulatory_fee < 0:
            raise ConfigError(f"fees must be >= 0, got {self.exchange_fee} and {self.regulatory_fee}")

    @classmethod
    def ibkr(
        cls, root: str, *, plan: str = "tiered", exchange_fees: Mapping[str, float] | None = None
    ) -> FuturesCommission:
        """IB's rates for ``root``: the micro column for micros, the exchange fee from the table."""
        fees = IB_EXCHANGE_FEES if exchange_fees is None else exchange_fees
        if root not in fees:
            raise ConfigError(
                f"no exchange fee known for futures root {root!r}; known: {', '.join(sorted(fees))}. "
                f"Pass exchange_fees={{'{root}': USD per contract}} from IB's fee page for its exchange."
            )
        tiers = IB_MICRO_TIERS if root in MICRO_ROOTS else IB_FUTURES_TIERS
        return cls(root, fees[root], plan=plan, tiers=tiers)

    def commission(self, price: float, quantity: float) -> float:
        return self.order_costs(price, quantity, OrderSide.BUY, 0.0).total

    def order_costs(
        self, price: float, quantity: float, side: OrderSide, month_volume: float
    ) -> CostBreakdown:
        contracts = abs(quantity)
        if self.plan == "fixed":
            broker = contracts * self.tiers[0][1]
        else:
            broker = _marginal(self.tiers, max(month_volume, 0.0), contracts)
        return CostBreakdown(
            round(broker, 10), round(contracts * (self.exchange_fee + self.regulatory_fee), 10)
        )


@dataclass(frozen=True, slots=True)
class ForexCommission:
    """IBKR spot forex: ``bps`` basis points of the trade value in USD, at least ``minimum`` USD per order.

    ``price`` is quoted in ``quote`` per unit of ``base``; a trade of ``quantity`` base units is worth
    ``quantity × price`` in the quote currency, converted to USD: as is when the quote is USD, the base
    amount when the base is USD, else with ``usd_per_quote``. The commission is in USD.
    """

    base: str
    quote: str
    bps: float = IB_FOREX_TIERS[0][1]
    minimum: float = IB_FOREX_TIERS[0][2]
    usd_per_quote: float | None = None

    def __post_init__(self) -> None:
        if self.bps < 0 or self.minimum < 0:
            raise ConfigError(f"bps and minimum must be >= 0, got {self.bps} and {self.minimum}")
        if "USD" not in (self.base, self.quote) and not self.usd_per_quote:
            raise ConfigError(
                f"{self.base}.{self.quote} has no USD leg: give usd_per_quote (USD per {self.quote}) to "
                f"value its trades"
            )

    @classmethod
    def ibkr(cls, instrument: Instrument, month_value_usd: float = 0.0, **kwargs: float) -> ForexCommission:
        """IB's rate for the tier the month's USD trade value so far falls in."""
        for ceiling, bps, minimum in IB_FOREX_TIERS:
            if month_value_usd <= ceiling:
                return cls(instrument.base_currency, instrument.currency, bps, minimum, **kwargs)
        raise AssertionError("unreachable: the last tier is unbounded")

    def value_usd(self, price: float, quantity: float) -> float:
        units = abs(quantity)
        if self.quote == "USD":
            return units * price
        if self.base == "USD":
            return units
        assert self.usd_per_quote is not None
        return units * price * self.usd_per_quote

    def commission(self, price: float, quantity: float) -> float:
        if quantity == 0:
            return 0.0
        return round(max(self.value_usd(price, quantity) * self.bps * 1e-4, self.minimum), 10)


@dataclass(frozen=True, slots=True)
class InstrumentCosts:
    """The commission model of each kind of instrument: ``stocks`` as configured, IB's futures and forex
    rates otherwise.

    ``exchange_fees`` adds roots to :data:`IB_EXCHANGE_FEES` or overrides its figures; ``usd_per_currency``
    values a cross pair's trades (``{"GBP": 1.27}`` for EUR.GBP); ``overrides`` sets the model of a symbol
    or a futures root outright.
    """

    stocks: CommissionModel = field(default_factory=ZeroCommission)
    futures_plan: str = "tiered"
    exchange_fees: Mapping[str, float] = field(default_factory=dict)
    usd_per_currency: Mapping[str, float] = field(default_factory=dict)
    overrides: Mapping[str, CommissionModel] = field(default_factory=dict)

    def for_instrument(self, instrument: Instrument) -> CommissionModel:
        override = self.overrides.get(instrument.symbol) or self.overrides.get(instrument.root)
        if override is not None:
            return override
        if instrument.kind is AssetClass.FUTURE:
            return FuturesCommission.ibkr(
                instrument.root,
                plan=self.futures_plan,
                exchange_fees={**IB_EXCHANGE_FEES, **self.exchange_fees},
            )
        if instrument.kind is AssetClass.FOREX:
            rate = self.usd_per_currency.get(instrument.currency)
            return (
                ForexCommission.ibkr(instrument)
                if rate is None
                else ForexCommission.ibkr(instrument, usd_per_quote=rate)
            )
        return self.stocks


def costs_for(instrument: Instrument, stocks: CommissionModel | None = None) -> CommissionModel:
    """IB's commission model for ``instrument`` (``stocks`` for a stock; zero if not given)."""
    return InstrumentCosts(stocks=stocks or ZeroCommission()).for_instrument(instrument)
