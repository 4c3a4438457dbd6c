"""What a symbol stands for: a stock, a futures contract (or a continuous future) or a forex pair.

A strategy keeps writing plain strings; :class:`InstrumentRegistry` turns them into :class:`Instrument`
values that every layer (backtest accounting, the simulated gateway, the live adapters) reads alike:

============  ==========================================================================================
``"AAPL"``    a US stock on SMART in USD — anything the registry does not know as a future or a pair,
              so the guide's code is unchanged
``"ESZ6"``    one futures contract: root + IB month code + year (one digit, the decade nearest the
              reference date, or two/four digits: ``"ESZ26"``, ``"ESZ2026"``)
``"ES"``      the continuous future of a root in :data:`FUTURE_SPECS` (``"ES=F"`` too, as Yahoo
              writes it); orders for it trade the front contract of the day (:meth:`contract_on`)
``"EUR.USD"`` a forex pair on IDEALPRO, as IB's localSymbol writes it (base.quote)
``"STK:CL"``  an explicit kind, for a stock whose ticker collides with a futures root (``CL`` is
              Colgate as a stock, crude oil as a future); ``FUT:`` and ``CASH:`` also work
============  ==========================================================================================

The futures table holds IB's/CME's contract terms (multiplier, tick, listed months, last-trade rule);
margins are configurable defaults for simulation, not IB's live requirements, which change daily.
Expiry rules use weekdays as business days (exchange holidays are not in this bottom layer; the data
layer's calendars refine sessions, not expiry dates).

This module is on the bottom floor: standard library only. Calendars are named here (``calendar``) and
resolved in :mod:`copilot_quant.data.calendars`.
"""

from __future__ import annotations

import calendar as _cal
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from copilot_quant.errors import ConfigError

__all__ = [
    "FOREX_MARGIN_RATE",
    "FUTURE_SPECS",
    "MONTH_CODES",
    "AssetClass",
    "FutureSpec",
    "Instrument",
    "InstrumentRegistry",
    "UnknownInstrumentError",
    "multiplier_of",
]


class UnknownInstrumentError(ConfigError):
    """A symbol names a futures contract or pair the registry cannot define."""


class AssetClass(StrEnum):
    """The kind of instrument, valued as IB's ``secType``."""

    STOCK = "STK"
    FUTURE = "FUT"
    FOREX = "CASH"


#: IB's (and CME's) futures month codes, January to December.
MONTH_CODES = "FGHJKMNQUVXZ"
_QUARTERLY = "HMUZ"


def _weekdays_back(day: date, n: int) -> date:
    """The weekday ``n`` weekdays before ``day`` (``n == 0``: ``day`` itself, moved back to a weekday)."""
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    while n > 0:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _next_weekday(day: date) -> date:
    """The first weekday after ``day``."""
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _last_weekday_of_month(year: int, month: int) -> date:
    return _weekdays_back(date(year, month, _cal.monthrange(year, month)[1]), 0)


def third_friday(year: int, month: int) -> date:
    """Equity index futures (ES, NQ and their micros) stop trading on the contract month's 3rd Friday."""
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def crude_last_trade(year: int, month: int) -> date:
    """NYMEX CL: three business days before the 25th of the month *before* the contract month (if the
    25th is not a business day, three before the business day preceding it)."""
    prior = date(year, month, 1) - timedelta(days=1)
    day25 = date(prior.year, prior.month, 25)
    return _weekdays_back(_weekdays_back(day25, 0), 3)


def third_last_business_day(year: int, month: int) -> date:
    """COMEX GC: the third-last business day of the contract month."""
    return _weekdays_back(_last_weekday_of_month(year, month), 2)


def seventh_before_last_business_day(year: int, month: int) -> date:
    """CBOT treasury futures (ZN): seven business days before the contract month's last business day."""
    return _weekdays_back(_last_weekday_of_month(year, month), 7)


@dataclass(frozen=True, slots=True)
class FutureSpec:
    """A futures product: the terms every contract of the root shares."""

    root: str
    exchange: str
    multiplier: float
    tick_size: float
    months: str
    last_trade: Callable[[int, int], date]
    description: str
    currency: str = "USD"
    calendar: str = "CME_GLOBEX"  # resolved by data.calendars: 17:00-16:00 Chicago
    #: simulation defaults per contract (USD); IB's real requirements vary, set your own in the registry
    initial_margin: float = 0.0
    maintenance_margin: float = 0.0


#: The futures the registry knows out of the box (CME Group contract specifications).
FUTURE_SPECS: dict[str, FutureSpec] = {
    spec.root: spec
    for spec in (
        FutureSpec("ES", "CME", 50.0, 0.25, _QUARTERLY, third_friday, "E-mini S&P 500", initial_margin=25_000, maintenance_margin=22_700),
        FutureSpec("MES", "CME", 5.0, 0.25, _QUARTERLY, third_friday, "Micro E-mini S&P 500", initial_margin=2_500, maintenance_margin=2_270),
        FutureSpec("NQ", "CME", 20.0, 0.25, _QUARTERLY, third_friday, "E-mini Nasdaq-100", initial_margin=35_000, maintenance_margin=31_800),
        FutureSpec("MNQ", "CME", 2.0, 0.25, _QUARTERLY, third_friday, "Micro E-mini Nasdaq-100", initial_margin=3_500, maintenance_margin=3_180),
        FutureSpec("CL", "NYMEX", 1000.0, 0.01, MONTH_CODES, crude_last_trade, "Crude Oil (WTI)", initial_margin=6_500, maintenance_margin=5_900),
        FutureSpec("GC", "COMEX", 100.0, 0.10, "GJMQVZ", third_last_business_day, "Gold", initial_margin=16_500, maintenance_margin=15_000),
        FutureSpec("ZN", "CBOT", 1000.0, 1 / 64, _QUARTERLY, seventh_before_last_business_day, "10-Year T-Note", initial_margin=2_300, maintenance_margin=2_100),
    )
}  # fmt: skip

#: The share of a forex position's notional held as margin (initial and maintenance alike): IB asks about
#: 3 % for the major IDEALPRO pairs. The one default of the backtest's account and the simulated gateway's.
FOREX_MARGIN_RATE = 0.03

#: Roots whose bare form is a well-known US stock ticker: bare means the stock, ``ROOT=F`` the future.
_STOCK_FIRST = frozenset({"CL"})

_FOREX_RE = re.compile(r"^([A-Z]{3})\.([A-Z]{3})$")
_EXPIRY_RE = re.compile(r"^([FGHJKMNQUVXZ])(\d{1,2}|\d{4})$")
_KINDS = {"STK": AssetClass.STOCK, "FUT": AssetClass.FUTURE, "CASH": AssetClass.FOREX}


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable thing, or a continuous futures series.

    ``symbol`` is the key used everywhere (bars, orders, positions, the journal). ``root`` is the stock
    ticker, the futures root or the forex base currency; ``currency`` is what prices are quoted in.
    A trade's value is ``quantity × price × multiplier`` in ``currency``.
    """

    symbol: str
    kind: AssetClass
    root: str
    exchange: str = "SMART"
    currency: str = "USD"
    multiplier: float = 1.0
    tick_size: float = 0.01
    expiry: date | None = None
    calendar: str = "XNYS"
    continuous: bool = False
    initial_margin: float = 0.0
    maintenance_margin: float = 0.0
    description: str = ""
    #: a futures contract's month as IB's ``lastTradeDateOrContractMonth`` writes it (``"202612"``);
    #: differs from the expiry's month where trading stops the month before (CL)
    contract_month: str = ""

    @property
    def last_trade_date(self) -> str:
        """IB's ``YYYYMMDD`` form of :attr:`expiry` (``""`` for anything without one)."""
        return self.expiry.strftime("%Y%m%d") if self.expiry is not None else ""

    @property
    def base_currency(self) -> str:
        """For a forex pair, the currency bought by a buy (``EUR`` in ``EUR.USD``); else ``currency``."""
        return self.root if self.kind is AssetClass.FOREX else self.currency

    @property
    def sec_type(self) -> str:
        return self.kind.value

    def notional(self, quantity: float, price: float) -> float:
        """Signed value of ``quantity`` at ``price``, in :attr:`currency`."""
        return quantity * price * self.multiplier

    def round_price(self, price: float) -> float:
        """``price`` on this instrument's tick grid (nearest tick)."""
        ticks = round(price / self.tick_size)
        return round(ticks * self.tick_size, 10)


@dataclass(slots=True)
class InstrumentRegistry:
    """Resolves what a strategy writes into :class:`Instrument` values.

    Args:
        futures: the futures products known (defaults to :data:`FUTURE_SPECS`).
        reference: the date a one-digit contract year is read against (``"ESZ6"`` is the 2020s decade
            year nearest it); a backtest passes its first bar's date, live runs pass today.
        instruments: explicit definitions that win over every rule (e.g. a custom stock).
    """

    futures: Mapping[str, FutureSpec] = field(default_factory=lambda: dict(FUTURE_SPECS))
    reference: date = field(default_factory=date.today)
    instruments: dict[str, Instrument] = field(default_factory=dict)

    def register(self, instrument: Instrument) -> None:
        self.instruments[instrument.symbol] = instrument

    def resolve(self, symbol: str) -> Instrument:
        """The instrument ``symbol`` names (see the module docstring for the forms)."""
        text = symbol.strip().upper()
        known = self.instruments.get(text)
        if known is not None:
            return known
        kind_prefix, _, rest = text.partition(":")
        if rest and kind_prefix in _KINDS:
            return self._of_kind(_KINDS[kind_prefix], rest)
        if _FOREX_RE.match(text):
            return self.forex(text)
        if text.endswith("=F") and text[:-2] in self.futures:
            return self.continuous(text[:-2])
        if text in self.futures and text not in _STOCK_FIRST:
            return self.continuous(text)
        contract = self._contract_named(text)
        return contract if contract is not None else self.stock(text)

    def resolve_all(self, symbols: Iterable[str]) -> list[Instrument]:
        return [self.resolve(s) for s in symbols]

    def _of_kind(self, kind: AssetClass, text: str) -> Instrument:
        if kind is AssetClass.STOCK:
            return self.stock(text)
        if kind is AssetClass.FOREX:
            return self.forex(text)
        if text in self.futures:
            return self.continuous(text)
        contract = self._contract_named(text)
        if contract is not None:
            return contract
        raise UnknownInstrumentError(
            f"{text!r} is not a futures root or contract the registry knows; known roots: "
            f"{', '.join(sorted(self.futures))} (register others with InstrumentRegistry.futures)"
        )

    @staticmethod
    def stock(symbol: str) -> Instrument:
        return Instrument(symbol=symbol, kind=AssetClass.STOCK, root=symbol)

    @staticmethod
    def forex(pair: str) -> Instrument:
        match = _FOREX_RE.match(pair)
        if match is None:
            raise UnknownInstrumentError(
                f"a forex pair is written BASE.QUOTE, such as 'EUR.USD'; got {pair!r}"
            )
        base, quote = match.groups()
        # IDEALPRO quotes most pairs to a half pip; yen pairs have two fewer decimals
        tick = 0.005 if quote == "JPY" else 0.00005
        return Instrument(
            symbol=pair, kind=AssetClass.FOREX, root=base, exchange="IDEALPRO", currency=quote,
            tick_size=tick, calendar="FX", description=f"{base}/{quote}",
        )  # fmt: skip

    def spec(self, root: str) -> FutureSpec:
        try:
            return self.futures[root]
        except KeyError:
            raise UnknownInstrumentError(
                f"unknown futures root {root!r}; known: {', '.join(sorted(self.futures))}"
            ) from None

    def continuous(self, root: str) -> Instrument:
        """The continuous series of ``root``: research data and orders that trade the contract of the day."""
        spec = self.spec(root)
        # a root that is also a stock ticker keeps Yahoo's suffix, so the two never share a key
        symbol = f"{root}=F" if root in _STOCK_FIRST else root
        return self._future(spec, symbol=symbol, expiry=None, continuous=True)

    def contract(self, root: str, year: int, month: int) -> Instrument:
        """The ``root`` contract for ``month`` of ``year``; refuses a month the product does not list."""
        spec = self.spec(root)
        code = MONTH_CODES[month - 1]
        if code not in spec.months:
            raise UnknownInstrumentError(
                f"{root} lists only the months {', '.join(spec.months)}; {code} ({year}-{month:02d}) is not one"
            )
        return self._future(
            spec, symbol=f"{root}{code}{year % 10}", expiry=spec.last_trade(year, month),
            contract_month=f"{year:04d}{month:02d}",
        )  # fmt: skip

    def contracts_after(self, root: str, day: date, count: int = 4) -> list[Instrument]:
        """The next ``count`` contracts of ``root`` whose last trade date is on or after ``day``."""
        spec = self.spec(root)
        out: list[Instrument] = []
        year, month = day.year, day.month
        while len(out) < count:
            if MONTH_CODES[month - 1] in spec.months:
                inst = self.contract(root, year, month)
                if inst.expiry is not None and inst.expiry >= day:
                    out.append(inst)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def contract_on(self, root: str, day: date, *, roll_days: int = 5) -> Instrument:
        """The contract a continuous ``root`` trades on ``day``: the front month, rolled to the next one
        ``roll_days`` weekdays before the front's last trade date."""
        for inst in self.contracts_after(root, day, count=3):
            assert inst.expiry is not None
            # with roll_days=0 the front is traded through its last trade day; else until its roll day
            still_front = (
                day <= inst.expiry if roll_days == 0 else day < _weekdays_back(inst.expiry, roll_days)
            )
            if still_front:
                return inst
        raise AssertionError("unreachable: three listed contracts cannot all be in their roll window")

    def roll_dates(
        self, root: str, first: date, last: date, *, roll_days: int = 5
    ) -> list[tuple[date, Instrument, Instrument]]:
        """The rolls :meth:`contract_on` makes between two dates: ``(first day on the new contract, old,
        new)``, in order (weekdays, as :meth:`contract_on` counts them)."""
        rolls: list[tuple[date, Instrument, Instrument]] = []
        current = self.contract_on(root, first, roll_days=roll_days)
        while True:
            assert current.expiry is not None
            day = _weekdays_back(current.expiry, roll_days) if roll_days else _next_weekday(current.expiry)
            if day > last:
                return rolls
            following = self.contract_on(root, day, roll_days=roll_days)
            rolls.append((day, current, following))
            current = following

    def _contract_named(self, text: str) -> Instrument | None:
        """``text`` read as root + month code + year (``"MESZ6"``), if a known root starts it."""
        for root in sorted(self.futures, key=len, reverse=True):
            match = _EXPIRY_RE.match(text[len(root) :]) if text.startswith(root) else None
            if match:
                month = MONTH_CODES.index(match.group(1)) + 1
                return self.contract(root, self._year(match.group(2)), month)
        return None

    def _future(
        self,
        spec: FutureSpec,
        *,
        symbol: str,
        expiry: date | None,
        continuous: bool = False,
        contract_month: str = "",
    ) -> Instrument:
        return Instrument(
            symbol=symbol, kind=AssetClass.FUTURE, root=spec.root, exchange=spec.exchange,
            currency=spec.currency, multiplier=spec.multiplier, tick_size=spec.tick_size, expiry=expiry,
            calendar=spec.calendar, continuous=continuous, initial_margin=spec.initial_margin,
            maintenance_margin=spec.maintenance_margin, description=spec.description,
            contract_month=contract_month,
        )  # fmt: skip

    def _year(self, digits: str) -> int:
        if len(digits) == 4:
            return int(digits)
        if len(digits) == 2:
            return 2000 + int(digits)
        # the year ending in this digit nearest the reference (ties go forward)
        base = self.reference.year - self.reference.year % 10 + int(digits)
        return min((base - 10, base, base + 10), key=lambda y: (abs(y - self.reference.year), -y))


def multiplier_of(symbol: str, registry: InstrumentRegistry | None = None) -> float:
    """What one unit of ``symbol`` times its price is worth: a future's contract multiplier (5 for
    ``"MESZ6"``), 1 for a stock, a forex pair or a symbol the registry cannot read.

    For values that know only a symbol (a journaled fill); ``registry``: the run's, if it defines its own.
    """
    try:
        inst = (registry or InstrumentRegistry()).resolve(symbol)
    except ConfigError:
        return 1.0
    return inst.multiplier if inst.kind is AssetClass.FUTURE else 1.0
