"""The simulated gateway's checks of IB's trailing orders (``TRAIL``, ``TRAIL LIMIT``) and where their stop
starts. The trailing rule itself is :func:`copilot_quant.model.fill_rules.trail_step`, shared with the
backtest and applied price by price by :mod:`copilot_quant.gateway.matching`.

IB's fields: ``auxPrice`` is the trailing amount, or ``trailingPercent`` the trail in percent (exactly one);
``trailStopPrice`` is where the stop starts (default: trailing the market price at submission); a
``TRAIL LIMIT`` also needs ``lmtPriceOffset``, the limit's distance beyond the stop when it triggers.
"""

from __future__ import annotations

import math

from copilot_quant.gateway.orders import IbOrderType, PlaceOrderRequest, finite_or_none
from copilot_quant.model.fill_rules import trail_level
from copilot_quant.model.orders import OrderSide

__all__ = ["initial_trail_stop", "trailing_problem"]


def trailing_problem(req: PlaceOrderRequest, order_type: IbOrderType) -> str | None:
    """Why TWS would reject trailing order ``req`` (the text after "reason:"), or None."""
    amount, percent = finite_or_none(req.aux_price), finite_or_none(req.trailing_percent)
    kind = order_type.value
    if (amount is not None and amount > 0) == (percent is not None and percent > 0):
        return (
            f"a {kind} order needs exactly one of a trailing amount (auxPrice) and trailingPercent, "
            f"got auxPrice={amount} trailingPercent={percent}"
        )
    if percent is not None and not 0 < percent < 100:
        return f"trailingPercent must be between 0 and 100, got {percent:g}"
    stop = finite_or_none(req.trail_stop_price)
    if stop is not None and not stop > 0:
        return f"trailStopPrice must be a positive price, got {stop:g}"
    if order_type is IbOrderType.TRAIL_LIMIT:
        offset = finite_or_none(req.lmt_price_offset)
        if offset is None or not math.isfinite(offset) or offset < 0:
            return "a TRAIL LIMIT order needs lmtPriceOffset (the limit's distance beyond the stop, >= 0)"
        if finite_or_none(req.lmt_price) is not None:
            return "a TRAIL LIMIT order takes lmtPriceOffset, not lmtPrice, at the simulated gateway"
    return None


def initial_trail_stop(req: PlaceOrderRequest, side: OrderSide, last_price: float | None) -> float | None:
    """The stop a new trailing order starts at: its trailStopPrice, else trailing ``last_price``, else None
    (it then starts from the next price)."""
    stop = finite_or_none(req.trail_stop_price)
    if stop is not None:
        return stop
    if last_price is None:
        return None
    amount = finite_or_none(req.aux_price) if finite_or_none(req.trailing_percent) is None else None
    return trail_level(side, last_price, amount, finite_or_none(req.trailing_percent))
