"""Symbols as the live data adapter looks them up at IB: checked, qualified once, described.

A symbol is a non-empty string, upper-cased (:func:`stock_symbol`). Its contract (a SMART/USD stock, a
futures contract — a continuous future's contract of the day — or an IDEALPRO pair, see
:mod:`copilot_quant.brokers.ib_contracts`) is qualified once per IB session (:meth:`StockLookup.contract`; :meth:`StockLookup.clear` after a reset) — IB error 200 or an
empty answer is an :class:`~copilot_quant.errors.UnknownSymbolError`, other IB errors a
:class:`~copilot_quant.errors.DataError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ib_async import Contract, RequestError

from copilot_quant.brokers.ib_contracts import broker_today, ib_contract_for, traded_instrument
from copilot_quant.errors import ConfigError, DataError, UnknownSymbolError
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry

if TYPE_CHECKING:
    from copilot_quant.brokers.connection import IBConnection

__all__ = ["StockLookup", "stock_symbol"]

_NO_SECURITY = 200
_NEW_YORK = ZoneInfo("America/New_York")
_KIND_WORDS = {
    AssetClass.STOCK: "US stock",
    AssetClass.FUTURE: "futures contract",
    AssetClass.FOREX: "forex pair",
}


def stock_symbol(symbol: str) -> str:
    """``symbol`` stripped and upper-cased; :class:`DataError` if it is not a non-empty string."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise DataError(f"symbol must be a non-empty string such as 'AAPL', got {symbol!r}")
    return symbol.strip().upper()


class StockLookup:
    """Qualified stock contracts by symbol (IB loop thread only)."""

    def __init__(self, connection: IBConnection) -> None:
        self._conn = connection
        self._contracts: dict[str, Contract] = {}

    def clear(self) -> None:
        """Forget every contract (ib_async reset its state; qualify again on the new session)."""
        self._contracts.clear()

    async def contract(self, symbol: str) -> Contract:
        """The qualified contract of ``symbol`` (looked up once per contract, then cached)."""
        today = await broker_today(self._conn.ib, symbol)
        try:
            inst = traded_instrument(symbol, InstrumentRegistry(reference=today), today)
        except ConfigError as exc:
            raise UnknownSymbolError(str(exc)) from None
        contract = self._contracts.get(inst.symbol)
        if contract is not None:
            return contract
        unknown = f"IB knows no {_KIND_WORDS[inst.kind]} {inst.symbol!r}; check the symbol"
        try:
            found = await self._conn.ib.qualifyContractsAsync(ib_contract_for(inst))
        except RequestError as exc:
            if exc.code == _NO_SECURITY:
                raise UnknownSymbolError(unknown) from None
            raise DataError(f"could not look up {symbol}: IB error {exc.code} {exc.message}") from None
        if not found or not isinstance(found[0], Contract):
            raise UnknownSymbolError(unknown)
        self._contracts[inst.symbol] = found[0]
        return found[0]

    async def details(self, symbol: str) -> dict[str, Any]:
        """Contract details: symbol, name, exchange, currency, con_id, min_tick, industry…"""
        contract = await self.contract(symbol)
        found = await self._conn.ib.reqContractDetailsAsync(contract)
        info: dict[str, Any] = {
            "symbol": symbol,
            "con_id": contract.conId,
            "exchange": contract.primaryExchange or contract.exchange,
            "currency": contract.currency,
        }
        if found:
            d = found[0]
            info.update(
                name=d.longName,
                min_tick=d.minTick,
                industry=d.industry,
                category=d.category,
                time_zone=d.timeZoneId,
            )
        return info
