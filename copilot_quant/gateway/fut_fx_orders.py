"""Orders for futures and forex at the simulated gateway: their sizing, their price grid and their cost.

* **Sizing.** A future trades whole contracts; a pair whole units of its base currency. A forex order may
  instead give ``cashQty``, an amount of the pair's *quote* currency (IB: "forex orders can be placed in
  denomination of the second currency in the pair"): the gateway turns it into whole base units at the
  order's reference price (its limit, else the last quote). ``cashQty`` on anything else is refused rather
  than ignored.
* **Price grid.** A limit or stop price off the contract's minimum tick is answered with IB's error 110
  and no order is kept, as TWS does; stocks keep their rules.
* **Costs.** IB's futures and forex commissions from the shared models
  (:func:`~copilot_quant.model.instrument_costs.costs_for`: per contract, tiered by the month's contracts of
  the root, plus exchange and NFA fees; forex 0.20 bp of the USD value, at least USD 2.00 per order), one
  :class:`~copilot_quant.model.cost_meter.CostMeter` per futures root so the month's volume counts. A root
  without a known exchange fee is refused by name when the order arrives.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.orders import PlaceOrderRequest, finite_or_none
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.instrument_costs import ForexCommission, costs_for
from copilot_quant.model.instruments import AssetClass, Instrument

__all__ = [
    "TICK_ERROR",
    "InstrumentMeters",
    "instrument_of",
    "is_fut_fx",
    "quantity_problem",
    "size_by_cash",
    "tick_problem",
]

#: IB's error code for a price off the contract's minimum price variation.
TICK_ERROR = 110


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


def instrument_of(contract: ContractInfo) -> Instrument:
    """The instrument a gateway contract is (what the shared cost models read: root, currencies)."""
    kind = AssetClass.FUTURE if contract.sec_type == "FUT" else AssetClass.FOREX
    return Instrument(
        symbol=contract.symbol,
        kind=kind,
        root=contract.wire_symbol,
        exchange=contract.exchange,
        currency=contract.currency,
        multiplier=contract.multiplier_value,
        tick_size=contract.min_tick,
    )


class InstrumentMeters:
    """The cost meters of an account's futures (one per root: IB's tiers count the month's contracts)
    and forex trades (valued in USD; a pair without a USD leg at the account's rate of its quote)."""

    def __init__(self) -> None:
        self._futures: dict[str, CostMeter] = {}

    def meter(self, contract: ContractInfo, usd_per_quote: float = 1.0) -> CostMeter:
        """The meter pricing ``contract``; :class:`ConfigError` when its costs are not known."""
        inst = instrument_of(contract)
        if inst.kind is AssetClass.FOREX:
            extra = {} if "USD" in (inst.root, inst.currency) else {"usd_per_quote": usd_per_quote}
            return CostMeter(ForexCommission.ibkr(inst, **extra))  # plain model: nothing to count
        meter = self._futures.get(inst.root)
        if meter is None:
            meter = self._futures[inst.root] = CostMeter(costs_for(inst))
        return meter

    def replay(self, executions: Iterable[tuple[ContractInfo, datetime, float]]) -> None:
        """Rebuild the futures meters' month volume from saved executions (a restart)."""
        for contract, when, quantity in executions:
            if contract.sec_type == "FUT":
                with contextlib.suppress(ConfigError):
                    self.meter(contract).record(quantity, when)
