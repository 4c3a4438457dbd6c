"""IBKR Pro **Fixed** pricing for US stocks, as a trader pays it: the per-share commission plus the
regulatory fees IB passes through on top of it.

Source — IB's published pricing page, https://www.interactivebrokers.com/en/pricing/commissions-stocks.php
(United States section; read 2026-12-07 from a stored copy of the same page served at
www.interactivebrokers.co.uk/en/pricing/commissions-stocks.php?re=amer): Fixed is USD 0.005 per share, at
least USD 1.00 and at most 1 % of trade value per order, and its "Third Party Fees" column lists
**Regulatory Fees** (Tiered adds exchange, clearing and pass-through fees): SEC Transaction Fee USD 0.0000278
× value of aggregate sales; FINRA Trading Activity Fee USD 0.000166 × quantity sold (at most USD 8.30 per
trade); FINRA Consolidated Audit Trail fee USD 0.000072 × quantity. IB's own summary of Fixed
(https://www.interactivebrokers.ca/en/index.php?f=45251&p=stocks1): "includes all IB commissions, exchange
and most regulatory fees with the exception of the transaction fees, which are passed through on all stock
sales". IB's worked examples (https://interactivebrokers.ca/en/index.php?f=713&nhf=T, read 2026-12-07) price
"Sell 200,000 ... Shares @ $5" at a Fixed cost of $1,015.27: the $1,000 commission plus a transaction fee
of $8.00 and a FINRA Trading Activity Fee of $7.27 (the fee levels of that page; the unit tests recompute it).

Not modelled: IB's footnote that an order whose commission hits the 1 % cap also pays exchange fees, and
the rebates IB passes to Fixed clients as commission discounts. :class:`PerShareCommission` is Fixed's
commission alone (no fees), as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import CostBreakdown, PerShareCommission
from copilot_quant.model.orders import OrderSide
from copilot_quant.model.tiered import TieredRates

__all__ = ["FixedCommission", "FixedRates"]

_TODAY = TieredRates()  # the regulatory fees are the same figures under both plans


@dataclass(frozen=True, slots=True)
class FixedRates:
    """IBKR Fixed rates for US stocks (defaults: IB's pricing page, read 2026-12-07; see the module)."""

    per_share: float = 0.005
    minimum: float = 1.0
    max_rate: float = 0.01
    finra_taf_per_share_sold: float = _TODAY.finra_taf_per_share_sold
    finra_taf_max_per_trade: float = _TODAY.finra_taf_max_per_trade
    sec_per_dollar_sold: float = _TODAY.sec_per_dollar_sold
    cat_per_share: float = _TODAY.cat_per_share

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"FixedRates.{item.name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class FixedCommission:
    """IBKR Pro Fixed pricing: :class:`PerShareCommission` plus the regulatory fees IB passes through (the SEC
    fee and FINRA's TAF on sales, FINRA's CAT fee on every trade). Immutable and shareable; it needs no
    month's volume, but prices by side, so brokers call it through their
    :class:`~copilot_quant.model.cost_meter.CostMeter` like the Tiered model."""

    rates: FixedRates = field(default_factory=FixedRates)

    def __post_init__(self) -> None:
        if not isinstance(self.rates, FixedRates):
            raise ConfigError(f"FixedCommission(rates=...) takes a FixedRates, got {self.rates!r}")

    def commission(self, price: float, quantity: float) -> float:
        """Estimate for the plain interface (no side): a buy."""
        return self.order_costs(price, quantity, OrderSide.BUY, 0.0).total

    def order_costs(
        self, price: float, quantity: float, side: OrderSide, month_volume: float
    ) -> CostBreakdown:
        """Costs of one whole order of ``quantity`` shares at average ``price`` (``month_volume`` is not
        used: Fixed has no volume tiers)."""
        r = self.rates
        qty = abs(quantity)
        value = abs(price) * qty
        commission = PerShareCommission(r.per_share, r.minimum, r.max_rate).commission(price, qty)
        fees = r.cat_per_share * qty
        if side is OrderSide.SELL:
            fees += min(r.finra_taf_per_share_sold * qty, r.finra_taf_max_per_trade)
            fees += r.sec_per_dollar_sold * value
        return CostBreakdown(commission, fees)
