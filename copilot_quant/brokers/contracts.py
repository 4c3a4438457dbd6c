"""IB contracts of US stocks, qualified once per symbol, and each one's price grid (tick rules)."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from ib_async import Contract, RequestError, Stock

from copilot_quant.brokers.tick_rules import PriceRule, rule_for_min_tick
from copilot_quant.errors import BrokerError

if TYPE_CHECKING:
    from copilot_quant.brokers.connection import IBConnection

__all__ = ["ContractBook", "round_order_prices"]

log = logging.getLogger(__name__)


class ContractBook:
    """Qualified stock contracts and their price rules, looked up once per symbol (IB loop thread only)."""

    def __init__(self, connection: IBConnection) -> None:
        self._conn = connection
        self._contracts: dict[str, Contract] = {}
        self._rules: dict[str, PriceRule] = {}

    async def contract(self, symbol: str) -> Contract:
        """The qualified SMART/USD stock contract of ``symbol``; :class:`BrokerError` if IB knows none."""
        contract = self._contracts.get(symbol)
        if contract is None:
            found = await self._conn.ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
            if not found or not isinstance(found[0], Contract):
                raise BrokerError(f"IB knows no US stock {symbol!r}; check the symbol")
            contract = self._contracts[symbol] = found[0]
        return contract

    async def price_rule(self, contract: Contract) -> PriceRule:
        """The contract's price grid, from its details (``minTick``); the US stock rule if IB gives none."""
        rule = self._rules.get(contract.symbol)
        if rule is None:
            min_tick: float | None = None
            try:
                details = await asyncio.wait_for(self._conn.ib.reqContractDetailsAsync(contract), 5)
                min_tick = float(details[0].minTick) if details and details[0].minTick else None
            except (TimeoutError, RequestError, ConnectionError) as exc:
                log.info(
                    "no contract details for %s (%s); using the US stock tick rule", contract.symbol, exc
                )
            rule = self._rules[contract.symbol] = rule_for_min_tick(min_tick)
        return rule


def round_order_prices(ib_order: Any, rule: PriceRule) -> list[str]:
    """Put an ib_async order's limit/stop prices on IB's tick grid (IB rejects others with 110), in the
    trader's favour; returns a note per price changed."""
    buy = str(ib_order.action).upper() == "BUY"
    notes: list[str] = []
    for field_name, rounder in (("lmtPrice", rule.limit_price), ("auxPrice", rule.stop_price)):
        price = getattr(ib_order, field_name, None)
        if not isinstance(price, float) or not math.isfinite(price) or price <= 0 or price >= 1e300:
            continue  # unset (ib_async's UNSET_DOUBLE) or not a price
        rounded = rounder(price, buy=buy)
        if rounded != price:
            setattr(ib_order, field_name, rounded)
            notes.append(f"{field_name} {price:g} rounded to {rounded:g} (IB tick {rule.increment(price):g})")
    return notes
