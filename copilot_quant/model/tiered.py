"""IBKR Pro **Tiered** pricing for US stocks, as a trader pays it: IB's commission plus the third-party fees.

Source — IB's published pricing page, https://www.interactivebrokers.com/en/pricing/commissions-stocks.php
(United States section; read 2026-12-07 from a stored copy of the same page served at
www.interactivebrokers.co.uk/en/pricing/commissions-stocks.php?re=amer):

=============================  ================================================
Monthly volume (shares)        IB commission per share
=============================  ================================================
≤ 300,000                      USD 0.0035
300,001 – 3,000,000            USD 0.0020
3,000,001 – 20,000,000         USD 0.0015
20,000,001 – 100,000,000       USD 0.0010
> 100,000,000                  USD 0.0005
minimum / maximum per order    USD 0.35 / 1 % of trade value
=============================  ================================================

Third-party fees on the same page: NSCC/DTC clearing USD 0.00020 per share; NYSE pass-through
commission × 0.000175; FINRA pass-through commission × 0.000563 (the issue quoted 0.00056, the figure of
IB's older pages; the current page says 0.000563, which is the default here); SEC transaction fee
USD 0.0000278 × value of sales; FINRA Trading Activity Fee USD 0.000166 × quantity sold, at most
USD 8.30 per trade (FINRA's TAF cap); FINRA Consolidated Audit Trail fee USD 0.000072 × quantity.
Exchange fees depend on the venue and on adding or removing liquidity; they are one configurable
per-share figure here (``exchange_per_share``, 0 by default; about 0.003 when removing liquidity on
NYSE/NASDAQ; rebates for adding liquidity are not modelled).

How the tiers apply — IB's "Stock and ETF Fixed vs. Tiered Pricing Comparison Examples",
https://interactivebrokers.ca/en/index.php?f=713&nhf=T (read 2026-12-07): "Volume tiers are applied based
on monthly cumulative trade volume ... at the time of the trade ... These fees are applied on a marginal
basis for a given calendar month." Its worked example sells 30,000,000 shares in one order and prices them
as "First 300,000 Shares: $1,050; Next 2,700,000: 5,400; Next 17,000,000: 25,500; Next 10,000,000:
10,000", so one order crossing a tier boundary pays each share at the tier it falls in. The month is the
calendar month in the exchange's time zone (see :class:`~copilot_quant.model.cost_meter.CostMeter`).
(IB's knowledge base says its European and Asian tiers are computed once a day, taking effect the next
trading day; the US examples page above says "at the time of the trade", which is what this model does.)

The minimum and the 1 % cap apply to IB's commission of the whole order; the pass-through fees are computed
on that (capped) commission; the TAF cap applies per order (one trade). Rates change (the SEC fee twice a
year): build :class:`TieredRates` with today's figures, e.g.
``TieredCommission(TieredRates(sec_per_dollar_sold=0.0))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import CostBreakdown
from copilot_quant.model.orders import OrderSide

__all__ = ["IBKR_TIERS", "TieredCommission", "TieredRates"]

#: ``(highest cumulative monthly share count of the tier, USD per share)``; the last tier is unbounded.
IBKR_TIERS: tuple[tuple[float, float], ...] = (
    (300_000, 0.0035),
    (3_000_000, 0.002),
    (20_000_000, 0.0015),
    (100_000_000, 0.001),
    (math.inf, 0.0005),
)


@dataclass(frozen=True, slots=True)
class TieredRates:
    """IBKR Tiered rates for US stocks (defaults: IB's pricing page, read 2026-12-07; see the module)."""

    tiers: tuple[tuple[float, float], ...] = IBKR_TIERS
    minimum: float = 0.35
    max_rate: float = 0.01
    clearing_per_share: float = 0.00020
    nyse_pass_through: float = 0.000175
    finra_pass_through: float = 0.000563
    finra_taf_per_share_sold: float = 0.000166
    finra_taf_max_per_trade: float = 8.30
    sec_per_dollar_sold: float = 0.0000278
    cat_per_share: float = 0.000072
    exchange_per_share: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "minimum",
            "max_rate",
            "clearing_per_share",
            "nyse_pass_through",
            "finra_pass_through",
            "finra_taf_per_share_sold",
            "finra_taf_max_per_trade",
            "sec_per_dollar_sold",
            "cat_per_share",
            "exchange_per_share",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"TieredRates.{name} must be a finite number >= 0, got {value!r}")
        _check_tiers(self.tiers)


def _check_tiers(tiers: tuple[tuple[float, float], ...]) -> None:
    example = "e.g. ((300_000, 0.0035), (math.inf, 0.002))"
    if not tiers or tiers[-1][0] != math.inf:
        raise ConfigError(f"TieredRates.tiers must end with an unbounded tier (math.inf, rate); {example}")
    previous = 0.0
    for limit, rate in tiers:
        if not limit > previous or not (math.isfinite(rate) and rate >= 0):
            raise ConfigError(
                f"TieredRates.tiers must have rising share limits and rates >= 0, got {tiers!r}; {example}"
            )
        previous = limit


@dataclass(frozen=True, slots=True)
class TieredCommission:
    """IBKR Pro Tiered pricing (see the module docstring for the figures and their source).

    Immutable and shareable (sweeps, parallel runs): the month's volume lives in each broker's
    :class:`~copilot_quant.model.cost_meter.CostMeter`, never here.
    """

    rates: TieredRates = field(default_factory=TieredRates)

    def __post_init__(self) -> None:
        if not isinstance(self.rates, TieredRates):
            raise ConfigError(f"TieredCommission(rates=...) takes a TieredRates, got {self.rates!r}")

    def commission(self, price: float, quantity: float) -> float:
        """Estimate for the plain interface (no side, no month): a buy at the month's first share."""
        return self.order_costs(price, quantity, OrderSide.BUY, 0.0).total

    def order_costs(
        self, price: float, quantity: float, side: OrderSide, month_volume: float
    ) -> CostBreakdown:
        """Costs of one whole order of ``quantity`` shares at average ``price``, the month's volume before
        the order being ``month_volume`` shares."""
        r = self.rates
        qty = abs(quantity)
        value = abs(price) * qty
        commission = max(self.volume_commission(month_volume, qty), r.minimum)
        cap = r.max_rate * value
        if cap > 0:
            commission = min(commission, cap)
        fees = (r.clearing_per_share + r.cat_per_share + r.exchange_per_share) * qty
        fees += (r.nyse_pass_through + r.finra_pass_through) * commission
        if side is OrderSide.SELL:
            fees += min(r.finra_taf_per_share_sold * qty, r.finra_taf_max_per_trade)
            fees += r.sec_per_dollar_sold * value
        return CostBreakdown(commission, fees)

    def volume_commission(self, month_volume: float, quantity: float) -> float:
        """IB's commission for ``quantity`` shares after ``month_volume`` shares this month, before the
        minimum and the cap: each share at the rate of the tier it falls in (marginal)."""
        position = max(float(month_volume), 0.0)
        left = float(quantity)
        total = 0.0
        for limit, rate in self.rates.tiers:
            if left <= 0:
                break
            if position < limit:
                take = min(left, limit - position)
                total += take * rate
                position += take
                left -= take
        return total
