"""IB contracts of the instruments a strategy trades (US stocks, futures contracts, forex pairs), qualified
once per contract, and each one's price grid (tick rules). See :mod:`copilot_quant.brokers.ib_contracts`
for how a symbol becomes a contract (a continuous future trades its contract of the day)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ib_async import Contract, RequestError

from copilot_quant.brokers.ib_contracts import broker_today, ib_contract_for, traded_instrument
from copilot_quant.brokers.tick_rules import PriceRule, rule_for_min_tick
from copilot_quant.errors import BrokerError, ConfigError
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry

if TYPE_CHECKING:
    from copilot_quant.brokers.connection import IBConnection

__all__ = ["ContractBook", "round_order_prices"]

log = logging.getLogger(__name__)

_NEW_YORK = ZoneInfo("America/New_York")
_KIND_WORDS = {
    AssetClass.STOCK: "US stock",
    AssetClass.FUTURE: "futures contract",
    AssetClass.FOREX: "forex pair",
}


class ContractBook:
    """Qualified contracts and their price rules, looked up once per contract (IB loop thread only).

    ``registry`` defines the instruments (default: the shared futures table, years read against today).
    """

    def __init__(self, connection: IBConnection, registry: InstrumentRegistry | None = None) -> None:
        self._conn = connection
        self._registry = registry
        self._contracts: dict[str, Contract] = {}
        self._rules: dict[int | str, PriceRule] = {}
        #: The contract of each symbol written as it trades the same contract all day (everything but a
        #: continuous future), found today: an order then skips the date and the registry's lookups.
        self._today: dict[str, Contract] = {}
        self._today_ends = 0.0  # when :attr:`_today` is forgotten (New York's next midnight, epoch seconds)

    async def contract(self, symbol: str) -> Contract:
        """The qualified contract an order for ``symbol`` trades (``AAPL`` on SMART, ``MESZ6`` or the
        contract of the day of ``MES``, ``EUR.USD`` on IDEALPRO); :class:`BrokerError` if IB knows none."""
        if time.time() < self._today_ends:
            known = self._today.get(symbol)
            if known is not None:
                return known
        else:
            self._today.clear()  # a new day: a one-digit contract year is read against it
            midnight = datetime.now(_NEW_YORK).replace(hour=0, minute=0, second=0, microsecond=0)
            self._today_ends = (midnight + timedelta(days=1)).timestamp()
        today = await broker_today(self._conn.ib, symbol)
        registry = self._registry or InstrumentRegistry(reference=today)
        try:
            written = registry.resolve(symbol)
            inst = traded_instrument(symbol, registry, today)
        except ConfigError as exc:
            raise BrokerError(f"cannot trade {symbol!r}: {exc}") from None
        contract = self._contracts.get(inst.symbol)
        if contract is None:
            found = await self._conn.ib.qualifyContractsAsync(ib_contract_for(inst))
            if not found or not isinstance(found[0], Contract):
                raise BrokerError(f"IB knows no {_KIND_WORDS[inst.kind]} {inst.symbol!r}; check the symbol")
            contract = self._contracts[inst.symbol] = found[0]
        if not (written.kind is AssetClass.FUTURE and written.continuous):
            self._today[symbol] = contract
        return contract

    async def price_rule(self, contract: Contract) -> PriceRule:
        """The contract's price grid, from its details (``minTick``); the US stock rule if IB gives none."""
        key = contract.conId or contract.symbol
        rule = self._rules.get(key)
        if rule is None:
            min_tick: float | None = None
            try:
                details = await asyncio.wait_for(self._conn.ib.reqContractDetailsAsync(contract), 5)
                min_tick = float(details[0].minTick) if details and details[0].minTick else None
            except (TimeoutError, RequestError, ConnectionError) as exc:
                log.info(
                    "no contract details for %s (%s); using the US stock tick rule", contract.symbol, exc
                )
            rule = self._rules[key] = rule_for_min_tick(min_tick, stock=contract.secType in ("STK", ""))
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
