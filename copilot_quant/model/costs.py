"""Commission and slippage models, shared by the backtest broker and the simulated IB Gateway.

Using the *same* objects on both sides is what makes backtest and paper results agree to the cent.

* :class:`PercentCommission` — ``rate × notional`` (the guide's ``commission=0.001``), optional minimum.
* :class:`PerShareCommission` — IBKR Fixed's commission: $0.005/share, at least $1.00, at most 1 % of trade
  value (``'ibkr-fixed'`` is :class:`~copilot_quant.model.fixed.FixedCommission`: that plus the regulatory
  fees IB passes through on it).
* :class:`PercentSlippage` — market orders fill ``rate`` worse than the reference price (the guide's
  ``slippage=0.0005``).
* :class:`FixedSlippage` — market orders fill a fixed amount per share worse.
* :func:`execution_commission` — what one execution of a partly filled order pays (IB prices an order's
  executions together: one minimum per order).
* :class:`DetailedCommissionModel` — the richer, optional side of the interface: a model that needs the
  order's side and the month's traded volume (IBKR Tiered, :mod:`copilot_quant.model.tiered`) prices a
  whole order as a :class:`CostBreakdown` (IB's commission vs third-party fees). Brokers call it through a
  :class:`~copilot_quant.model.cost_meter.CostMeter`, which keeps the month's volume; plain models
  (``commission(price, quantity)`` only) keep working unchanged, with no fees.

Slippage applies to market orders (and to stop orders once triggered, which become market orders);
limit orders fill at their limit or better and get no slippage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from copilot_quant.errors import ConfigError
from copilot_quant.model.orders import OrderSide

__all__ = [
    "COMMISSION_NAMES",
    "CommissionModel",
    "CostBreakdown",
    "DetailedCommissionModel",
    "FixedSlippage",
    "NoSlippage",
    "PerShareCommission",
    "PercentCommission",
    "PercentSlippage",
    "SlippageModel",
    "ZeroCommission",
    "commission_model",
    "execution_commission",
    "execution_costs",
    "slippage_model",
]


@runtime_checkable
class CommissionModel(Protocol):
    def commission(self, price: float, quantity: float) -> float:
        """Commission for a fill of ``quantity`` (positive) at ``price``."""
        ...


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """What an execution (or a whole order) costs: the broker's ``commission`` and the third-party ``fees``
    it passes through (clearing, exchange, regulatory). IB's commissionReport carries the :attr:`total`."""

    commission: float = 0.0
    fees: float = 0.0

    @property
    def total(self) -> float:
        return self.commission + self.fees


@runtime_checkable
class DetailedCommissionModel(CommissionModel, Protocol):
    """A commission model that needs the side and the month's volume (e.g. IBKR Tiered).

    ``commission(price, quantity)`` must still answer (an estimate: a buy at the month's first share),
    so such a model works wherever a plain one does.
    """

    def order_costs(
        self, price: float, quantity: float, side: OrderSide, month_volume: float
    ) -> CostBreakdown:
        """Costs of a whole order of ``quantity`` shares at average ``price``, when the month's traded
        volume before the order was ``month_volume`` shares."""
        ...


@runtime_checkable
class SlippageModel(Protocol):
    def adjust(self, price: float, side: OrderSide) -> float:
        """The execution price of a market order whose reference price is ``price``."""
        ...


def _non_negative(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class PercentCommission:
    """``rate × price × quantity``, at least ``minimum`` per fill."""

    rate: float = 0.001
    minimum: float = 0.0

    def __post_init__(self) -> None:
        _non_negative(self.rate, "commission rate")
        _non_negative(self.minimum, "minimum commission")
        if self.rate >= 0.5:
            raise ConfigError(f"commission rate {self.rate} looks like a percentage; pass 0.001 for 0.1%")

    def commission(self, price: float, quantity: float) -> float:
        return max(self.rate * abs(price * quantity), self.minimum)


@dataclass(frozen=True, slots=True)
class PerShareCommission:
    """IBKR Fixed pricing for US stocks: per share, with a minimum and a cap as a share of value."""

    per_share: float = 0.005
    minimum: float = 1.0
    max_rate: float = 0.01

    def __post_init__(self) -> None:
        _non_negative(self.per_share, "per-share commission")
        _non_negative(self.minimum, "minimum commission")
        _non_negative(self.max_rate, "maximum commission rate")

    def commission(self, price: float, quantity: float) -> float:
        qty = abs(quantity)
        fee = max(self.per_share * qty, self.minimum)
        cap = self.max_rate * abs(price) * qty
        return min(fee, cap) if cap > 0 else fee


@dataclass(frozen=True, slots=True)
class ZeroCommission:
    def commission(self, price: float, quantity: float) -> float:
        return 0.0


@dataclass(frozen=True, slots=True)
class PercentSlippage:
    """Buys fill ``rate`` above the reference price, sells ``rate`` below."""

    rate: float = 0.0005

    def __post_init__(self) -> None:
        _non_negative(self.rate, "slippage rate")
        if self.rate >= 0.5:
            raise ConfigError(f"slippage rate {self.rate} looks like a percentage; pass 0.0005 for 0.05%")

    def adjust(self, price: float, side: OrderSide) -> float:
        return price * (1.0 + self.rate) if side == OrderSide.BUY else price * (1.0 - self.rate)


@dataclass(frozen=True, slots=True)
class FixedSlippage:
    """Buys fill ``amount`` above the reference price, sells ``amount`` below (never below one cent)."""

    amount: float = 0.01

    def __post_init__(self) -> None:
        _non_negative(self.amount, "slippage amount")

    def adjust(self, price: float, side: OrderSide) -> float:
        return price + self.amount if side == OrderSide.BUY else max(price - self.amount, 0.01)


@dataclass(frozen=True, slots=True)
class NoSlippage:
    def adjust(self, price: float, side: OrderSide) -> float:
        return price


def _rate(value: object, what: str, example: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a rate such as {example}; got {value!r}") from None


def execution_commission(
    model: CommissionModel,
    price: float,
    quantity: float,
    filled_before: float = 0.0,
    avg_price_before: float = 0.0,
) -> float:
    """The commission of one execution of an order that had already filled ``filled_before`` shares at an
    average ``avg_price_before``.

    IB prices an order's executions together: the minimum is paid once per order, and the cap applies
    to the whole order's value. So each execution pays what it adds to the order's commission:
    ``commission(order so far, with this one) - commission(order so far)``, both at the order's average
    price. An order filled at once pays ``model.commission(price, quantity)``, as before; however an
    order is split, its executions add up to the commission of the whole order. (IB treats executions on
    different days as separate orders for the minimum; a backtest order rarely spans days, and this
    model does not.)
    """
    if filled_before <= 0:
        return float(model.commission(price, quantity))
    total = filled_before + quantity
    average = (avg_price_before * filled_before + price * quantity) / total
    before = model.commission(avg_price_before, filled_before)
    return max(float(model.commission(average, total) - before), 0.0)


def execution_costs(
    model: DetailedCommissionModel,
    price: float,
    quantity: float,
    side: OrderSide,
    month_volume: float,
    *,
    filled_before: float = 0.0,
    avg_price_before: float = 0.0,
) -> CostBreakdown:
    """:func:`execution_commission` for a detailed model: what one execution adds to its order's costs.

    ``month_volume`` is the month's traded volume before this execution; the order's own earlier
    executions (``filled_before`` shares) are part of it, so the order is priced as if it began at
    ``month_volume - filled_before``. Executions of one order therefore add up to the whole order's
    costs (minimum, 1 % cap, per-trade TAF cap each applied once), with each share at the tier the
    month's volume stood at when it traded.
    """
    start = max(month_volume - filled_before, 0.0)
    if filled_before <= 0:
        return model.order_costs(price, quantity, side, start)
    total = filled_before + quantity
    average = (avg_price_before * filled_before + price * quantity) / total
    after = model.order_costs(average, total, side, start)
    before = model.order_costs(avg_price_before, filled_before, side, start)
    return CostBreakdown(max(after.commission - before.commission, 0.0), max(after.fees - before.fees, 0.0))


#: The named models ``commission_model`` (and the CLI's ``--commission``) accept besides a rate.
COMMISSION_NAMES = ("ibkr-tiered", "ibkr-fixed")


def commission_model(value: float | str | CommissionModel | None) -> CommissionModel:
    """Accept the guide's plain rate (``0.001``), a name (``'ibkr-tiered'``, ``'ibkr-fixed'``; also as a
    string rate, ``'0.001'``) or a model object. ``'ibkr-fixed'`` is IBKR Fixed as a trader pays it: the
    per-share commission plus the SEC, FINRA TAF and CAT fees IB passes through
    (:class:`~copilot_quant.model.fixed.FixedCommission`)."""
    if value is None:
        return ZeroCommission()
    if isinstance(value, CommissionModel):
        return value
    if isinstance(value, str) and value.strip().lower() in COMMISSION_NAMES:
        if value.strip().lower() == "ibkr-fixed":
            from copilot_quant.model.fixed import FixedCommission  # noqa: PLC0415 - it imports this module

            return FixedCommission()
        from copilot_quant.model.tiered import TieredCommission  # noqa: PLC0415 - it imports this module

        return TieredCommission()
    example = "0.001 for 0.1% of the traded value, ibkr-tiered, ibkr-fixed, or a CommissionModel"
    rate = _rate(value, "commission", example)
    return ZeroCommission() if rate == 0 else PercentCommission(rate=rate)


def slippage_model(value: float | SlippageModel | None) -> SlippageModel:
    """Accept the guide's plain rate (``0.0005``) or a model object."""
    if value is None:
        return NoSlippage()
    if isinstance(value, SlippageModel):
        return value
    rate = _rate(value, "slippage", "0.0005 for 0.05%, or a SlippageModel")
    return NoSlippage() if rate == 0 else PercentSlippage(rate=rate)
