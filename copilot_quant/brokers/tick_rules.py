"""IB's price grid: an order price must be a multiple of the contract's minimum increment at its level.

IB rejects (error 110) a limit or stop price off the grid. US stocks follow a market rule with two levels
(below $1: 0.0001, from $1: 0.01); a contract's ``minTick`` from its details can be coarser. Prices are
rounded *in the trader's favour*, so a rounded order never accepts a worse price than the one asked for:
a buy limit rounds down and a sell limit up; a buy stop rounds up and a sell stop down (it triggers no
earlier than asked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from copilot_quant.errors import OrderValidationError

__all__ = ["US_STOCK_RULE", "PriceRule", "rule_for_min_tick"]


@dataclass(frozen=True, slots=True)
class PriceRule:
    """Price increments by level: ``levels`` are ``(low_edge, increment)`` pairs, ascending by edge."""

    levels: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.levels or any(inc <= 0 or not math.isfinite(inc) for _, inc in self.levels):
            raise OrderValidationError(f"a price rule needs positive increments, got {self.levels!r}")

    def increment(self, price: float) -> float:
        """The minimum price increment at ``price``."""
        inc = self.levels[0][1]
        for edge, step in self.levels:
            if price >= edge:
                inc = step
        return inc

    def round(self, price: float, *, up: bool) -> float:
        """``price`` on the grid, rounded up or down to the increment at its level."""
        if not math.isfinite(price) or price <= 0:
            return price
        step = Decimal(repr(self.increment(price)))
        units = (Decimal(repr(price)) / step).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR)
        rounded = float(units * step)
        if rounded <= 0:  # rounding a tiny price down to zero: one increment is the least IB accepts
            rounded = float(step)
        return rounded

    def limit_price(self, price: float, *, buy: bool) -> float:
        """A limit price on the grid: a buy never pays more, a sell never receives less than asked."""
        return self.round(price, up=not buy)

    def stop_price(self, price: float, *, buy: bool) -> float:
        """A stop price on the grid: the stop never triggers earlier than asked."""
        return self.round(price, up=buy)


#: US stocks (IB market rule 26 on SMART): 0.0001 below $1, 0.01 from $1.
US_STOCK_RULE = PriceRule(((0.0, 0.0001), (1.0, 0.01)))


def rule_for_min_tick(min_tick: float | None, *, stock: bool = True) -> PriceRule:
    """The rule for a contract whose details say ``min_tick``: for a stock the US stock rule unless the
    contract's tick is coarser than a cent (then that tick at every level); a future or a forex pair
    (``stock=False``) has its own tick at every level (0.25 for MES, 0.00005 for EUR.USD)."""
    if min_tick is None or not math.isfinite(min_tick) or min_tick <= 0:
        return US_STOCK_RULE
    if stock and min_tick <= 0.01 + 1e-12:
        return US_STOCK_RULE
    return PriceRule(((0.0, float(min_tick)),))
