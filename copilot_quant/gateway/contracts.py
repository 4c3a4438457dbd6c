"""What the simulated gateway knows about tradable instruments: US stocks on SMART in USD.

:class:`ContractInfo` is the gateway's definition of one stock (what ``reqContractDetails`` answers and what
orders, executions and positions refer to). conIds are stable: the well-known symbols use IB's real conIds,
every other symbol gets a deterministic hash, so a conId cached by a client survives gateway restarts.

:class:`ContractRequest` is the ``contract12`` block every request carries (see the protocol notes §3);
:func:`parse_contract12` reads it and :meth:`ContractRegistry.resolve` maps it to a :class:`ContractInfo`
the way TWS does (by conId if given, else by symbol, checking secType/currency/exchange).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from copilot_quant.data.calendars import is_trading_day, session_close, session_open
from copilot_quant.gateway.wire import FieldReader

if TYPE_CHECKING:
    from copilot_quant.gateway.instrument_contracts import InstrumentContracts

__all__ = [
    "WELL_KNOWN",
    "ContractInfo",
    "ContractRegistry",
    "ContractRequest",
    "con_id_for",
    "parse_contract12",
    "session_hours",
]

logger = logging.getLogger(__name__)

#: Real IB conIds, primary exchanges and names of symbols users are likely to type (SMART/USD stocks).
WELL_KNOWN: dict[str, tuple[int, str, str]] = {
    "AAPL": (265598, "NASDAQ", "APPLE INC"),
    "MSFT": (272093, "NASDAQ", "MICROSOFT CORP"),
    "IBM": (8314, "NYSE", "INTL BUSINESS MACHINES CORP"),
    "GOOG": (208813720, "NASDAQ", "ALPHABET INC-CL C"),
    "GOOGL": (208813719, "NASDAQ", "ALPHABET INC-CL A"),
    "AMZN": (3691937, "NASDAQ", "AMAZON.COM INC"),
    "META": (107113386, "NASDAQ", "META PLATFORMS INC-CLASS A"),
    "FB": (107113386, "NASDAQ", "META PLATFORMS INC-CLASS A"),
    "TSLA": (76792991, "NASDAQ", "TESLA INC"),
    "NVDA": (4815747, "NASDAQ", "NVIDIA CORP"),
    "SPY": (756733, "ARCA", "SPDR S&P 500 ETF TRUST"),
    "QQQ": (320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1"),
}
_ETFS = frozenset({"SPY", "QQQ"})
# Hashed conIds live in a range no well-known conId above uses, so the two can never collide.
_HASH_BASE = 500_000_000
_HASH_SPAN = 1_000_000_000


def con_id_for(symbol: str) -> int:
    """The stable conId of ``symbol``: IB's real one for well-known symbols, else a deterministic hash."""
    known = WELL_KNOWN.get(symbol.upper())
    if known is not None:
        return known[0]
    return _HASH_BASE + zlib.crc32(symbol.upper().encode()) % _HASH_SPAN


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """One stock as the gateway defines it (the fields ``contractDetails`` and order messages carry)."""

    con_id: int
    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    primary_exchange: str = "NASDAQ"
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""
    min_tick: float = 0.01
    long_name: str = ""
    time_zone_id: str = "US/Eastern"
    trading_hours: str = ""
    liquid_hours: str = ""
    stock_type: str = "COMMON"
    multiplier: str = ""
    order_types: str = "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,DAY,GTC,LMT,MKT,STP,STPLMT,WHATIF"
    valid_exchanges: str = "SMART,NASDAQ,NYSE,ARCA,BATS,IEX"
    market_rule_ids: str = "26,26,26,26,26,26"
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    #: For futures and forex, IB's own ``symbol`` (``MES``, ``EUR``) when it differs from the gateway's key
    #: :attr:`symbol` (the instrument key every layer uses: ``MESZ6``, ``EUR.USD``); empty for stocks.
    ib_symbol: str = ""
    #: A future's last trade date (``yyyymmdd``) and contract month (``yyyymm``); empty otherwise.
    last_trade_date: str = ""
    contract_month: str = ""
    #: Simulation margins per contract (futures), in :attr:`currency`; 0 for stocks and forex.
    initial_margin: float = 0.0
    maintenance_margin: float = 0.0

    @property
    def wire_symbol(self) -> str:
        """The ``symbol`` field every message carries (IB's symbol: ``MES`` for ``MESZ6``)."""
        return self.ib_symbol or self.symbol

    @property
    def multiplier_value(self) -> float:
        """The contract multiplier as a number (1 when the contract has none)."""
        try:
            return float(self.multiplier) if self.multiplier else 1.0
        except ValueError:
            return 1.0

    @classmethod
    def for_symbol(cls, symbol: str) -> ContractInfo:
        """The default definition of ``symbol`` (well-known details where the gateway has them)."""
        name = symbol.upper()
        con_id, primary, long_name = WELL_KNOWN.get(name, (con_id_for(name), "NASDAQ", f"{name} (SIMULATED)"))
        return cls(
            con_id=con_id,
            symbol=name,
            primary_exchange=primary,
            local_symbol=name,
            trading_class="NMS" if primary == "NASDAQ" else name,
            long_name=long_name,
            stock_type="ETF" if name in _ETFS else "COMMON",
        )

    def with_hours(self, trading_hours: str, liquid_hours: str) -> ContractInfo:
        return replace(self, trading_hours=trading_hours, liquid_hours=liquid_hours)


@dataclass(frozen=True, slots=True)
class ContractRequest:
    """The ``contract12`` block of a request, as the client sent it (empty strings for unset fields)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    def describe(self) -> str:
        """A short human description for error messages."""
        parts = [self.symbol or self.local_symbol or f"conId {self.con_id}"]
        parts += [p for p in (self.sec_type, self.exchange, self.currency) if p]
        return " ".join(parts)


def parse_contract12(reader: FieldReader) -> ContractRequest:
    """Read the 12-field contract block requests carry: conId, symbol, secType, lastTradeDate, strike,
    right, multiplier, exchange, primaryExchange, currency, localSymbol, tradingClass."""
    return ContractRequest(
        con_id=reader.int(),
        symbol=reader.str().strip().upper(),
        sec_type=reader.str().strip().upper(),
        last_trade_date=reader.str(),
        strike=reader.float(),
        right=reader.str(),
        multiplier=reader.str(),
        exchange=reader.str().strip().upper(),
        primary_exchange=reader.str().strip().upper(),
        currency=reader.str().strip().upper(),
        local_symbol=reader.str().strip().upper(),
        trading_class=reader.str(),
    )


class ContractRegistry:
    """The contracts the gateway serves, built from the data source's symbols.

    Args:
        symbols: symbols known up front (stocks; with ``today``, also futures contracts such as ``MESZ6``
            and forex pairs such as ``EUR.USD``).
        any_symbol: also define any other symbol on first request (for sources such as the synthetic
            provider that generate data for every ticker).
        accepts: with ``any_symbol``, a predicate that decides whether a new symbol can be served.
        today: the market's date; given, the registry also serves futures and forex
            (:mod:`copilot_quant.gateway.instrument_contracts`) for the keys the data source has.
    """

    def __init__(
        self,
        symbols: Iterable[str] = (),
        *,
        any_symbol: bool = False,
        accepts: Callable[[str], bool] | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._by_symbol: dict[str, ContractInfo] = {}
        self._by_con_id: dict[int, ContractInfo] = {}
        self._any = any_symbol
        self._accepts = accepts
        listed = [s.strip().upper() for s in symbols]
        self._listed = frozenset(listed)
        self._derivatives: InstrumentContracts | None = None
        if today is not None:
            from copilot_quant.gateway.instrument_contracts import InstrumentContracts  # noqa: PLC0415

            self._derivatives = InstrumentContracts(today, self.serves)
        for symbol in listed:
            self._add_listed(symbol)

    @classmethod
    def from_feed(
        cls, feed: object, symbols: Iterable[str] | None = None, *, today: Callable[[], date] | None = None
    ) -> ContractRegistry:
        """A registry for ``feed`` (any object with ``symbols()``); ``symbols`` narrows or extends it."""
        listed = list(symbols) if symbols is not None else list(_feed_symbols(feed))
        any_symbol = bool(getattr(feed, "serves_any_symbol", False)) and symbols is None
        return cls(listed, any_symbol=any_symbol, today=today)

    def expired(self, info: ContractInfo) -> bool:
        """Whether ``info`` is a futures contract past its last trade date (the market's date): IB serves
        its history only to a request whose contract sets ``includeExpired``."""
        derivatives = self._derivatives
        return derivatives is not None and derivatives.expired(info)

    def serves(self, key: str) -> bool:
        """Whether the data source has prices for an instrument key (listed, or any symbol is served)."""
        if key in self._listed or key in self._by_symbol:
            return True
        return self._any and (self._accepts is None or self._accepts(key))

    def _add_listed(self, symbol: str) -> None:
        """A data-source symbol: a futures contract or a pair when it names one, else a stock."""
        info = self._derivatives.listed(symbol) if self._derivatives is not None else None
        if info is not None:
            if info.symbol != symbol:
                logger.info("%s stands for its front contract %s at the gateway", symbol, info.symbol)
            self.remember(info)
            return
        self._add(symbol)

    def _add(self, symbol: str) -> ContractInfo:
        info = ContractInfo.for_symbol(symbol)
        existing = self._by_symbol.get(info.symbol)
        if existing is not None:
            return existing
        self._by_symbol[info.symbol] = info
        # FB and META share a conId at IB; the first one registered owns the conId lookup.
        self._by_con_id.setdefault(info.con_id, info)
        return info

    def remember(self, info: ContractInfo) -> None:
        """Know ``info`` from now on, even in a registry with a fixed list: a contract the account already
        holds, orders or traded (e.g. from a state file) stays defined, as at IB."""
        self._by_symbol.setdefault(info.symbol, info)
        self._by_con_id.setdefault(info.con_id, info)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._by_symbol)

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.by_symbol(symbol) is not None

    def __iter__(self) -> Iterator[ContractInfo]:
        return iter(self._by_symbol.values())

    def by_symbol(self, symbol: str) -> ContractInfo | None:
        name = symbol.strip().upper()
        info = self._by_symbol.get(name)
        if (
            info is None
            and self._any
            and _plausible_ticker(name)
            and (self._accepts is None or self._accepts(name))
        ):
            info = self._add(name)
        return info

    def known(self, symbol: str) -> ContractInfo | None:
        """The contract already defined under ``symbol`` (defines nothing new)."""
        return self._by_symbol.get(symbol.strip().upper())

    def by_con_id(self, con_id: int) -> ContractInfo | None:
        return self._by_con_id.get(con_id)

    def resolve(self, req: ContractRequest) -> ContractInfo | None:
        """The one contract ``req`` designates, or ``None`` when TWS would answer error 200 (no such
        contract, or an ambiguous one such as a futures root without a month)."""
        found = self.resolve_all(req)
        return found[0] if len(found) == 1 else None

    def resolve_all(self, req: ContractRequest, *, include_expired: bool = False) -> list[ContractInfo]:
        """Every contract ``req`` matches: reqContractDetails lists them all (a futures chain)."""
        derivatives = self._derivatives
        if derivatives is not None and req.sec_type in ("FUT", "CONTFUT", "CASH"):
            if req.con_id:
                return self._derivative_by_con_id(req)
            found = derivatives.resolve_all(req, include_expired=include_expired)
            for info in found:
                # a continuous future is its front contract under another secType: the market prices that
                self.remember(info if info.sec_type != "CONTFUT" else replace(info, sec_type="FUT"))
            return found
        if req.con_id and req.sec_type == "" and derivatives is not None:
            held = self._by_con_id.get(req.con_id) or derivatives.by_con_id(req.con_id)
            if held is not None and held.sec_type != "STK":
                self.remember(held)
                return [held]
        stock = self._resolve_stock(req)
        return [stock] if stock is not None else []

    def _derivative_by_con_id(self, req: ContractRequest) -> list[ContractInfo]:
        """A FUT/CONTFUT/CASH request carrying a conId (a qualified contract): the contract it names."""
        assert self._derivatives is not None
        info = self._by_con_id.get(req.con_id) or self._derivatives.by_con_id(req.con_id)
        if info is None or (req.sec_type not in ("CONTFUT", info.sec_type)):
            return []
        if req.sec_type == "CONTFUT":
            front = self._derivatives.resolve_all(req)
            return front if front and front[0].con_id == req.con_id else []
        self.remember(info)
        return [info]

    def _resolve_stock(self, req: ContractRequest) -> ContractInfo | None:
        if req.sec_type not in ("", "STK"):
            return None
        if req.currency not in ("", "USD"):
            return None
        if req.con_id:
            info = self.by_con_id(req.con_id)
            if info is None and req.symbol:
                # A conId cached before a restart: its symbol defines it again (conIds are stable).
                info = self.by_symbol(req.symbol)
                if info is not None and info.con_id != req.con_id:
                    return None
            if info is None or (req.symbol and req.symbol != info.symbol):
                return None
        else:
            name = req.symbol or req.local_symbol
            if not name:
                return None
            info = self.by_symbol(name)
            if info is None:
                return None
        if info.sec_type != "STK":
            return None  # a stock request never names a future or a pair (their keys are not tickers)
        if req.exchange not in ("", "SMART", info.primary_exchange, *info.valid_exchanges.split(",")):
            return None
        return info


def _feed_symbols(feed: object) -> list[str]:
    method = getattr(feed, "symbols", None)
    if method is None:
        return []
    return list(method() if callable(method) else method)


def _plausible_ticker(name: str) -> bool:
    return 0 < len(name) <= 12 and all(c.isalnum() or c in ".-" for c in name)


def session_hours(around: pd.Timestamp, days: int = 7, calendar: str = "XNYS") -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` strings in TWS format for the week starting at ``around``'s date.

    Format: ``20240105:0400-20240105:2000;20240106:CLOSED`` in exchange time. Trading hours include IB's
    pre/post market (04:00-20:00), liquid hours are the regular session from the exchange calendar.
    """
    tz = "America/New_York"
    start: date = around.tz_convert(tz).date()
    trading: list[str] = []
    liquid: list[str] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        stamp = day.strftime("%Y%m%d")
        if not is_trading_day(pd.Timestamp(day), calendar):
            trading.append(f"{stamp}:CLOSED")
            liquid.append(f"{stamp}:CLOSED")
            continue
        opens = session_open(pd.Timestamp(day), calendar).tz_convert(tz)
        closes = session_close(pd.Timestamp(day), calendar).tz_convert(tz)
        trading.append(f"{stamp}:0400-{stamp}:2000")
        liquid.append(f"{stamp}:{opens:%H%M}-{stamp}:{closes:%H%M}")
    return ";".join(trading), ";".join(liquid)


def always_open_hours(around: pd.Timestamp, days: int = 7) -> tuple[str, str]:
    """``(tradingHours, liquidHours)`` of a market that never closes: every New York day whole, in the
    ``20240105:0000-20240106:0000`` form TWS uses for round-the-clock products."""
    start: date = around.tz_convert("America/New_York").date()
    spans = [
        f"{start + timedelta(days=k):%Y%m%d}:0000-{start + timedelta(days=k + 1):%Y%m%d}:0000"
        for k in range(days)
    ]
    text = ";".join(spans)
    return text, text
