"""The project's instrument keys as ib_async contracts, and back (issue #14).

A strategy writes ``"AAPL"``, ``"MESZ6"``, ``"MES"`` or ``"EUR.USD"``; :class:`~copilot_quant.model.
instruments.InstrumentRegistry` says what each is, and this module says how IB names it:

==============  ===========================================================================================
``AAPL``        ``Stock('AAPL', 'SMART', 'USD')``
``MESZ6``       ``Future('MES', '202612', 'CME')`` (the contract month; IB answers with localSymbol ``MESZ6``)
``MES``         the contract of the day (:meth:`InstrumentRegistry.contract_on`), as above; the order is
                for that real contract, as at IB, where a continuous future cannot be traded
``EUR.USD``     ``Forex('EURUSD')``: symbol ``EUR``, currency ``USD`` on IDEALPRO
==============  ===========================================================================================

Back from IB (positions, portfolio items), :func:`instrument_key` gives the key: a stock's symbol, a
future's ``localSymbol`` (``MESZ6``), a pair's ``EUR.USD``. IB reports a future's ``avgCost`` with the
multiplier folded in; :func:`unit_avg_cost` divides it out, so a position's average price is a price.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ib_async import Contract, Forex, Future, Stock

from copilot_quant.errors import ConfigError
from copilot_quant.model.instruments import MONTH_CODES, AssetClass, Instrument, InstrumentRegistry

__all__ = [
    "TRADED_SEC_TYPES",
    "bar_kind",
    "broker_today",
    "calendar_of",
    "contract_multiplier",
    "ib_contract_for",
    "instrument_key",
    "traded_instrument",
    "unit_avg_cost",
]

_NEW_YORK = ZoneInfo("America/New_York")

#: The secTypes the live adapters trade and read positions of.
TRADED_SEC_TYPES = frozenset({"STK", "FUT", "CASH"})


async def broker_today(ib: Any, symbol: str) -> date:
    """The exchange date an order for ``symbol`` is placed on: by IB's clock (``reqCurrentTime``; the
    replay's date at the simulated gateway) when ``symbol`` is a continuous future whose contract of the
    day depends on it, else (or when IB does not answer) today in New York."""
    today = datetime.now(_NEW_YORK).date()
    try:
        inst = InstrumentRegistry(reference=today).resolve(symbol)
    except ConfigError:
        return today
    if not (inst.kind is AssetClass.FUTURE and inst.continuous):
        return today
    try:
        now = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2.0)
    except (TimeoutError, ConnectionError, OSError):
        return today
    return now.astimezone(_NEW_YORK).date()


def traded_instrument(symbol: str, registry: InstrumentRegistry, today: date) -> Instrument:
    """The instrument an order for ``symbol`` trades: a continuous future's contract of ``today``."""
    inst = registry.resolve(symbol)
    if inst.kind is AssetClass.FUTURE and inst.continuous:
        return registry.contract_on(inst.root, today)
    return inst


def ib_contract_for(inst: Instrument, *, include_expired: bool = False) -> Contract:
    """The (unqualified) ib_async contract of one tradable instrument. ``include_expired``: a futures
    contract is looked up with IB's ``includeExpired`` (IB lists an expired one, and serves its history,
    only then; an unexpired one is found either way)."""
    if inst.kind is AssetClass.FOREX:
        return Forex(symbol=inst.root, currency=inst.currency, exchange="IDEALPRO")
    if inst.kind is AssetClass.FUTURE:
        if inst.expiry is None:
            raise ValueError(f"{inst.symbol} is a continuous future: trade one of its contracts")
        contract = Future(inst.root, _contract_month(inst), inst.exchange, currency=inst.currency)
        contract.includeExpired = include_expired
        return contract
    return Stock(inst.symbol, "SMART", "USD")


def _contract_month(inst: Instrument) -> str:
    """``yyyymm`` a futures contract is named by (its month code; a last trade may fall a month early)."""
    assert inst.expiry is not None
    month = MONTH_CODES.index(inst.symbol[len(inst.root)]) + 1
    year = inst.expiry.year + (1 if month < inst.expiry.month else 0)
    return f"{year}{month:02d}"


def instrument_key(contract: Any) -> str:
    """The project's key of an IB contract: ``AAPL``, ``MESZ6``, ``EUR.USD``."""
    sec_type = str(getattr(contract, "secType", "") or "")
    symbol = str(getattr(contract, "symbol", "") or "").strip().upper()
    local = str(getattr(contract, "localSymbol", "") or "").strip().upper()
    if sec_type == "FUT":
        return local or symbol
    if sec_type == "CASH":
        currency = str(getattr(contract, "currency", "") or "").strip().upper()
        return local if "." in local else f"{symbol}.{currency}"
    return symbol


def calendar_of(symbol: str) -> str:
    """The exchange calendar of ``symbol``'s instrument (``XNYS`` for a stock, ``CME_GLOBEX``, ``FX``); a
    symbol the registry cannot read is taken as a stock."""
    try:
        return InstrumentRegistry().resolve(symbol).calendar
    except ConfigError:
        return "XNYS"


def bar_kind(contract: Any) -> str:
    """The ``whatToShow`` of a contract's bars: IB has no trades of a forex pair, only quotes (MIDPOINT)."""
    return "MIDPOINT" if str(getattr(contract, "secType", "")) == "CASH" else "TRADES"


def contract_multiplier(contract: Any) -> float:
    """A futures contract's multiplier as IB qualified it (``"5"`` for MES); 1 for anything else."""
    if str(getattr(contract, "secType", "")) != "FUT":
        return 1.0
    try:
        multiplier = float(getattr(contract, "multiplier", "") or 1.0)
    except ValueError:
        return 1.0
    return multiplier if multiplier > 0 else 1.0


def unit_avg_cost(contract: Any, avg_cost: float) -> float:
    """IB's ``avgCost`` as a price of one unit (a future's includes its multiplier)."""
    return float(avg_cost) / contract_multiplier(contract)
