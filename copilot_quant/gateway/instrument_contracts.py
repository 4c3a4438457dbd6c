"""Futures and forex at the simulated gateway: which contract a request names, and how TWS describes it.

The definitions come from :mod:`copilot_quant.model.instruments` (the registry every layer reads), turned
into :class:`~copilot_quant.gateway.contracts.ContractInfo` values the way TWS presents them:

=============================  ===============================================================================
request (ib_async)             answer
=============================  ===============================================================================
``Future('MES', '202612',      the December 2026 contract: symbol ``MES``, localSymbol ``MESZ6``,
'CME')``                       lastTradeDateOrContractMonth ``20261218``, multiplier ``5``, tradingClass ``MES``
``Future('MES')``              the chain: every listed contract not yet expired (contract details; for
                               market data or an order it is ambiguous, error 200, as at IB)
``Future(localSymbol=          that contract (the one-digit year read against the market's date)
'MESZ6')``
``ContFuture('MES', 'CME')``   the front contract described as ``CONTFUT`` (same conId, as at IB)
``Forex('EURUSD')``            ``EUR.USD`` on IDEALPRO: symbol ``EUR``, currency ``USD``, localSymbol
                               ``EUR.USD``; only pairs IB lists, in IB's direction (``USD.EUR`` is not one)
=============================  ===============================================================================

The gateway keys a contract by its instrument symbol (``MESZ6``, ``EUR.USD``: the key of bars, positions and
the market) and writes IB's own symbol on the wire (:attr:`ContractInfo.wire_symbol`). conIds are stable:
a few real IB conIds for well-known pairs, else a hash of secType, root and contract month, so a conId a
client cached survives gateway restarts. An expired contract is found only with ``includeExpired``.

Trading hours come from the instrument calendars (CME Globex Sunday–Friday 17:00–16:00 Chicago with its
holidays and early closes; forex Sunday 17:15 – Friday 17:00 New York).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from copilot_quant.data.calendars import session_bounds
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest, con_id_for
from copilot_quant.model.instruments import (
    MONTH_CODES,
    AssetClass,
    Instrument,
    InstrumentRegistry,
    UnknownInstrumentError,
)

__all__ = [
    "DERIVATIVE_SEC_TYPES",
    "FOREX_PAIRS",
    "SESSION_CALENDARS",
    "InstrumentContracts",
    "contract_calendar",
    "contract_for",
    "derivative_hours",
]

#: The secTypes this module answers (every other one is the stock registry's).
DERIVATIVE_SEC_TYPES = frozenset({"FUT", "CONTFUT", "CASH"})

#: The calendars whose session closes end DAY orders: the NYSE's for stocks, CME Globex for futures,
#: IDEALPRO's 17:00 New York for pairs.
SESSION_CALENDARS = ("XNYS", "CME_GLOBEX", "FX")

#: The pairs IDEALPRO lists, in IB's direction (base.quote): a request for the inverse is not a contract.
FOREX_PAIRS = frozenset(
    {
        "EUR.USD", "GBP.USD", "AUD.USD", "NZD.USD", "USD.JPY", "USD.CHF", "USD.CAD", "EUR.GBP",
        "EUR.JPY", "EUR.CHF", "EUR.AUD", "EUR.CAD", "GBP.JPY", "GBP.CHF", "AUD.JPY", "CHF.JPY",
        "CAD.JPY", "NZD.JPY", "USD.HKD", "USD.SGD", "USD.MXN", "USD.CNH", "USD.SEK", "USD.NOK",
        "USD.DKK", "EUR.SEK", "EUR.NOK",
    }
)  # fmt: skip

#: Real IB conIds of the most traded pairs (others are hashed).
_FOREX_CON_IDS = {"EUR.USD": 12087792, "GBP.USD": 12087797, "USD.JPY": 15016059}

#: How many contracts of a root a chain request lists (IB lists about this many ahead).
_CHAIN_QUARTERLY = 5
_CHAIN_MONTHLY = 12

_FUT_ORDER_TYPES = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,DAY,GTC,GTD,IOC,LMT,MKT,OCA,STP,STPLMT,TRAIL,WHATIF"
_FX_ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,CASHQTY,DAY,GTC,GTD,IOC,LMT,MKT,OCA,STP,STPLMT,TRAIL,WHATIF"
)
_CHICAGO_EXCHANGES = frozenset({"CME", "CBOT", "NYMEX", "COMEX"})
_ZONES = {"US/Central": "America/Chicago", "US/Eastern": "America/New_York"}
_MONTH = re.compile(r"^(\d{4})(\d{2})$")
_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


def contract_calendar(info: ContractInfo) -> str:
    """The calendar of a contract's sessions (one of :data:`SESSION_CALENDARS`)."""
    return {"FUT": "CME_GLOBEX", "CONTFUT": "CME_GLOBEX", "CASH": "FX"}.get(info.sec_type, "XNYS")


def contract_for(inst: Instrument, around: date | None = None) -> ContractInfo:
    """The gateway's definition of a futures contract or a forex pair (``around``: the week whose
    trading hours it carries; none without it)."""
    if inst.kind is AssetClass.FOREX:
        info = _forex_contract(inst)
    elif inst.kind is AssetClass.FUTURE and inst.expiry is not None:
        info = _future_contract(inst)
    else:
        raise UnknownInstrumentError(
            f"{inst.symbol!r} is not a futures contract or a forex pair (continuous futures trade their "
            "front contract)"
        )
    if around is not None:
        trading, liquid = derivative_hours(info, around)
        info = info.with_hours(trading, liquid)
    return info


def _future_contract(inst: Instrument) -> ContractInfo:
    assert inst.expiry is not None
    month = _contract_month(inst)
    return ContractInfo(
        con_id=con_id_for(f"FUT:{inst.root}:{month}"),
        symbol=inst.symbol,
        sec_type="FUT",
        exchange=inst.exchange,
        primary_exchange=inst.exchange,
        currency=inst.currency,
        local_symbol=inst.symbol,
        trading_class=inst.root,
        min_tick=inst.tick_size,
        long_name=f"{inst.description} {month[:4]}-{month[4:]}".strip(),
        time_zone_id="US/Central" if inst.exchange in _CHICAGO_EXCHANGES else "US/Eastern",
        stock_type="",
        multiplier=f"{inst.multiplier:g}",
        order_types=_FUT_ORDER_TYPES,
        valid_exchanges=inst.exchange,
        market_rule_ids="67",
        ib_symbol=inst.root,
        last_trade_date=f"{inst.expiry:%Y%m%d}",
        contract_month=month,
        initial_margin=inst.initial_margin,
        maintenance_margin=inst.maintenance_margin,
    )


def _contract_month(inst: Instrument) -> str:
    """``yyyymm`` of a futures contract: the month its code names (the last trade may fall a month
    earlier, as crude oil's does)."""
    assert inst.expiry is not None
    code = inst.symbol[len(inst.root)]
    month = MONTH_CODES.index(code) + 1
    year = inst.expiry.year + (1 if month < inst.expiry.month else 0)
    return f"{year}{month:02d}"


def _forex_contract(inst: Instrument) -> ContractInfo:
    pair = inst.symbol
    return ContractInfo(
        con_id=_FOREX_CON_IDS.get(pair, con_id_for(f"CASH:{pair}")),
        symbol=pair,
        sec_type="CASH",
        exchange="IDEALPRO",
        primary_exchange="IDEALPRO",
        currency=inst.currency,
        local_symbol=pair,
        trading_class=pair,
        min_tick=inst.tick_size,
        long_name=f"{inst.root}/{inst.currency}",
        time_zone_id="US/Eastern",
        stock_type="",
        order_types=_FX_ORDER_TYPES,
        valid_exchanges="IDEALPRO",
        market_rule_ids="239",
        ib_symbol=inst.root,
        category="Major" if inst.currency in ("USD", "EUR") else "",
    )


def derivative_hours(info: ContractInfo, around: date, days: int = 7) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` of a future or a pair for the week from ``around``, in TWS's format
    and the contract's own zone, from its exchange calendar (:func:`~copilot_quant.data.calendars.
    calendar_for`: CME Globex the evening before until 16:00 Chicago, holidays and early closes included;
    forex 17:15 the evening before until 17:00 New York). A day no session closes on is CLOSED. Liquid hours
    are CME's regular 08:30–15:00 (cut at an early close); a pair's are its trading hours."""
    calendar = contract_calendar(info)
    zone = ZoneInfo(_ZONES[info.time_zone_id])
    first = pd.Timestamp(around)
    opens, closes = session_bounds(first - pd.Timedelta(days=1), first + pd.Timedelta(days=days), calendar)
    by_day = {}
    for start, end in zip(opens, closes, strict=True):
        local_end = end.tz_convert(zone)
        by_day[local_end.date()] = (start.tz_convert(zone), local_end)
    trading: list[str] = []
    liquid: list[str] = []
    for offset in range(days):
        day = around + timedelta(days=offset)
        session = by_day.get(day)
        if session is None:
            trading.append(f"{day:%Y%m%d}:CLOSED")
            liquid.append(f"{day:%Y%m%d}:CLOSED")
            continue
        start, end = session
        trading.append(f"{start:%Y%m%d:%H%M}-{end:%Y%m%d:%H%M}")
        if info.sec_type == "CASH":
            liquid.append(trading[-1])
        else:
            rth_end = min(end, end.replace(hour=15, minute=0))
            liquid.append(f"{day:%Y%m%d}:0830-{rth_end:%Y%m%d:%H%M}")
    return ";".join(trading), ";".join(liquid)


class InstrumentContracts:
    """Resolves FUT, CONTFUT and CASH requests into contracts, as TWS does.

    Args:
        today: the market's current date (what is expired, what the front month is, how a one-digit
            contract year reads).
        serves: whether the data source has bars for an instrument key (``MESZ6``, ``EUR.USD``): the
            gateway defines only what it can price.
        registry: the instrument definitions (default: the shared futures table).
    """

    def __init__(
        self,
        today: Callable[[], date],
        serves: Callable[[str], bool],
        registry: InstrumentRegistry | None = None,
    ) -> None:
        self._today = today
        self._serves = serves
        self._registry = registry

    def registry(self) -> InstrumentRegistry:
        """The instrument registry, reading one-digit years against the market's date."""
        base = self._registry or InstrumentRegistry()
        return InstrumentRegistry(futures=base.futures, reference=self._today(), instruments=base.instruments)

    def contract(self, inst: Instrument) -> ContractInfo:
        return contract_for(inst, self._today())

    # -- resolution ------------------------------------------------------------------------------------
    def resolve_all(self, req: ContractRequest, *, include_expired: bool = False) -> list[ContractInfo]:
        """Every contract ``req`` matches (several for a futures root without a month: its chain)."""
        if req.sec_type == "CASH":
            found = self._forex(req)
            return [found] if found is not None else []
        if req.sec_type == "CONTFUT":
            front = self._front(req)
            return [replace(front, sec_type="CONTFUT")] if front is not None else []
        if req.sec_type == "FUT":
            return self._futures(req, include_expired)
        return []

    def expired(self, info: ContractInfo) -> bool:
        """Whether ``info`` is a future whose last trade date is before the market's current date."""
        last = info.last_trade_date
        return info.sec_type == "FUT" and bool(last) and last < f"{self._today():%Y%m%d}"

    def by_con_id(self, con_id: int) -> ContractInfo | None:
        """A futures contract of the current chains or a listed pair with this conId (None if none)."""
        for inst in self._candidates():
            # conIds are computed without the hours (a calendar lookup each); only the match gets them
            if contract_for(inst).con_id == con_id:
                return self.contract(inst)
        return None

    def listed(self, symbol: str) -> ContractInfo | None:
        """The contract a data-source symbol stands for (``MESZ6``, ``EUR.USD``; a continuous root such as
        ``MES`` stands for its front contract), or None for anything else (a stock)."""
        text = symbol.strip().upper()
        registry = self.registry()
        try:
            if re.fullmatch(r"[A-Z]{3}\.[A-Z]{3}", text):
                return self.contract(registry.forex(text)) if text in FOREX_PAIRS else None
            inst = registry.resolve(text)
        except UnknownInstrumentError:
            return None
        if inst.kind is not AssetClass.FUTURE:
            return None
        if inst.continuous:
            inst = registry.contract_on(inst.root, self._today())
        return self.contract(inst)

    def _candidates(self) -> Iterable[Instrument]:
        registry = self.registry()
        for root in registry.futures:
            for inst in registry.contracts_after(root, self._today(), self._chain_length(registry, root)):
                if self._has(inst):
                    yield inst
        for pair in sorted(FOREX_PAIRS):
            if self._serves(pair):
                yield registry.forex(pair)

    def _has(self, inst: Instrument) -> bool:
        """Whether the data source prices this contract: by its own key, or through its root's continuous
        series (a source offering ``MES`` offers every MES contract)."""
        return any(self._serves(key) for key in (inst.symbol, inst.root, f"{inst.root}=F"))

    @staticmethod
    def _chain_length(registry: InstrumentRegistry, root: str) -> int:
        return _CHAIN_QUARTERLY if len(registry.spec(root).months) <= 4 else _CHAIN_MONTHLY

    def _forex(self, req: ContractRequest) -> ContractInfo | None:
        pair = req.local_symbol or (f"{req.symbol}.{req.currency}" if req.symbol and req.currency else "")
        if "." not in pair and len(pair) == 6:
            pair = f"{pair[:3]}.{pair[3:]}"  # localSymbol written without the dot
        if pair not in FOREX_PAIRS or req.exchange not in ("", "IDEALPRO"):
            return None
        if (req.symbol and req.symbol != pair[:3]) or (req.currency and req.currency != pair[4:]):
            return None
        if not self._serves(pair):
            return None
        return self.contract(self.registry().forex(pair))

    def _futures(self, req: ContractRequest, include_expired: bool) -> list[ContractInfo]:
        registry = self.registry()
        today = self._today()
        if req.local_symbol:
            try:
                inst = registry.resolve(f"FUT:{req.local_symbol}")
            except UnknownInstrumentError:
                return []
            if inst.continuous:
                return []
            chain = [inst]
        else:
            root = req.symbol
            if root not in registry.futures:
                return []
            chain = self._chain(registry, root, req.last_trade_date.strip(), today)
        out: list[ContractInfo] = []
        for inst in chain:
            if inst.expiry is None or (inst.expiry < today and not include_expired):
                continue
            info = self.contract(inst)
            if self._matches(req, info) and self._has(inst):
                out.append(info)
        return out

    def _chain(self, registry: InstrumentRegistry, root: str, when: str, today: date) -> list[Instrument]:
        """The contracts of ``root`` that ``when`` (``yyyymm``, ``yyyymmdd`` or empty) designates."""
        if not when:
            return registry.contracts_after(root, today, self._chain_length(registry, root))
        month = _MONTH.match(when)
        day = _DAY.match(when)
        if month is not None:
            found = _listed_contract(registry, root, int(month.group(1)), int(month.group(2)))
            return [found] if found is not None else []
        if day is None:
            return []
        year, mon, _dom = (int(g) for g in day.groups())
        # a last trade date names its contract (crude oil's falls in the month before the contract month)
        for k in (0, 1):
            found = _listed_contract(registry, root, *_add_month(year, mon, k))
            if found is not None and found.expiry is not None and f"{found.expiry:%Y%m%d}" == when:
                return [found]
        return []

    @staticmethod
    def _matches(req: ContractRequest, info: ContractInfo) -> bool:
        """Whether the fields a request did set agree with the contract (unset ones match anything)."""
        if req.exchange not in ("", info.exchange, "GLOBEX" if info.exchange == "CME" else info.exchange):
            return False
        if req.currency not in ("", info.currency):
            return False
        if req.multiplier and _number(req.multiplier) != info.multiplier_value:
            return False
        return req.trading_class in ("", info.trading_class)

    def _front(self, req: ContractRequest) -> ContractInfo | None:
        registry = self.registry()
        root = req.symbol or req.trading_class
        if root not in registry.futures:
            return None
        inst = registry.contract_on(root, self._today())
        info = self.contract(inst)
        if not self._matches(req, info) or not self._has(inst):
            return None
        return info


def _listed_contract(registry: InstrumentRegistry, root: str, year: int, month: int) -> Instrument | None:
    """The contract of ``root`` for that month, or None when the root does not list the month."""
    if not 1 <= month <= 12:
        return None
    try:
        return registry.contract(root, year, month)
    except UnknownInstrumentError:
        return None


def _add_month(year: int, month: int, k: int) -> tuple[int, int]:
    """``(year, month)`` ``k`` months later."""
    total = year * 12 + month - 1 + k
    return total // 12, total % 12 + 1


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
