"""Orders for futures and forex at the simulated gateway: their sizing, their price grid and their cost.

* **Sizing.** A future trades whole contracts; a pair whole units of its base currency. A forex order may
  instead give ``cashQty``, an amount of the pair's *quote* currency (IB: "forex orders can be placed in
  denomination of the second currency in the pair"): the gateway turns it into whole base units at the
  order's reference price (its limit, else the last quote). ``cashQty`` on anything else is refused rather
  than ignored.
* **Price grid.** A limit or stop price off the contract's minimum tick is answered with IB's error 110
  and no order is kept, as TWS does; stocks keep their rules.
* **Costs.** Placeholder tables until the shared futures/forex cost model lands (issue #14, futmodel):
  futures pay a commission per contract plus exchange and regulatory fees, forex IBKR Fixed's 0.20 basis
  points of the traded value with a 2.00 USD minimum per order (one minimum per order however it fills).
  # TODO(#14): read these from the shared cost tables in copilot_quant/model once they exist.
"""

from __future__ import annotations

import math
from dataclasses import replace

from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.orders import PlaceOrderRequest, finite_or_none

__all__ = [
    "FOREX_BPS",
    "FOREX_MIN_PER_ORDER",
    "FUTURES_PER_CONTRACT",
    "TICK_ERROR",
    "is_fut_fx",
    "order_commission",
    "quantity_problem",
    "size_by_cash",
    "tick_problem",
]

#: IB's error code for a price off the contract's minimum price variation.
TICK_ERROR = 110

#: Per contract, USD: IB commission + exchange + regulatory fees (placeholder figures, see the docstring).
FUTURES_PER_CONTRACT: dict[str, float] = {
    "ES": 0.85 + 1.38 + 0.02,
    "NQ": 0.85 + 1.38 + 0.02,
    "MES": 0.25 + 0.35 + 0.02,
    "MNQ": 0.25 + 0.35 + 0.02,
    "CL": 0.85 + 1.50 + 0.02,
    "GC": 0.85 + 1.55 + 0.02,
    "ZN": 0.85 + 0.80 + 0.02,
}
_FUTURES_DEFAULT = 0.85 + 1.00 + 0.02
FOREX_BPS = 0.20
FOREX_MIN_PER_ORDER = 2.00


def is_fut_fx(contract: ContractInfo) -> bool:
    return contract.sec_type in ("FUT", "CASH")


def size_by_cash(
    req: PlaceOrderRequest, contract: ContractInfo, price: float | None
) -> tuple[PlaceOrderRequest, str | None]:
    """``req`` with its quantity taken from ``cashQty`` (forex), or the reason it cannot be sized."""
    cash = finite_or_none(req.cash_qty)
    if cash is None:
        return req, None
    if contract.sec_type != "CASH":
        return req, (
            f"cashQty (an order sized in money) is supported for forex pairs only at the simulated gateway, "
            f"not for {contract.sec_type}; give totalQuantity"
        )
    if math.isfinite(req.total_quantity) and req.total_quantity > 0:
        return req, "give either totalQuantity or cashQty, not both"
    if cash <= 0:
        return req, f"cashQty must be a positive amount of {contract.currency}, got {cash:g}"
    if price is None or price <= 0:
        return req, f"cashQty needs a price to size the order and {contract.symbol} has no quote yet"
    units = math.floor(cash / price + 1e-9)
    if units < 1:
        return (
            req,
            f"cashQty {cash:g} {contract.currency} buys less than one {contract.wire_symbol} at {price:g}",
        )
    return replace(req, total_quantity=float(units)), None


def quantity_problem(req: PlaceOrderRequest, contract: ContractInfo) -> str | None:
    """Futures trade whole contracts, pairs whole units of their base currency."""
    qty = req.total_quantity
    if not is_fut_fx(contract) or not math.isfinite(qty) or float(qty).is_integer():
        return None
    unit = "contracts" if contract.sec_type == "FUT" else f"units of {contract.wire_symbol}"
    return f"{contract.symbol} trades in whole {unit}; got quantity {qty:g}"


def tick_problem(req: PlaceOrderRequest, contract: ContractInfo) -> str | None:
    """IB's error 110 text when a future's or a pair's limit or stop price is off its tick grid."""
    if not is_fut_fx(contract) or contract.min_tick <= 0:
        return None
    for name, value in (("limit", req.lmt_price), ("stop", req.aux_price)):
        price = finite_or_none(value)
        if price is None or price <= 0 or "TRAIL" in req.order_type.upper():
            continue
        ticks = price / contract.min_tick
        if abs(ticks - round(ticks)) > 1e-6:
            return (
                f"The price does not conform to the minimum price variation for this contract: {name} price "
                f"{price:g} is not a multiple of {contract.symbol}'s minimum tick {contract.min_tick:g}"
            )
    return None


def order_commission(contract: ContractInfo, quantity: float, avg_price: float, rate: float = 1.0) -> float:
    """What an order that filled ``quantity`` at ``avg_price`` costs in all (USD); an execution pays the
    difference from what the order paid before (one forex minimum per order)."""
    if quantity <= 0:
        return 0.0
    if contract.sec_type == "FUT":
        return round(quantity * FUTURES_PER_CONTRACT.get(contract.wire_symbol, _FUTURES_DEFAULT), 2)
    value = quantity * avg_price * rate
    return round(max(FOREX_MIN_PER_ORDER, value * FOREX_BPS / 10_000), 2)
