"""What every bar provider shares: symbol and interval checks, date ranges, validation, aggregation.

A concrete provider says which symbols it knows (:meth:`BarProvider.symbols`), which intervals it holds
for a symbol (:meth:`BarProvider.native_intervals`) and how to load one symbol's whole series at such an
interval (:meth:`BarProvider._load`). This base class turns that into the full
:class:`~copilot_quant.backtest.interfaces.IDataFeed` contract, identically for every source:
validated frames (:func:`~copilot_quant.data.validation.validate_bars`), naive dates read in exchange time,
inclusive ranges, coarser intervals aggregated from finer held ones (:mod:`~copilot_quant.data.resample`),
:class:`UnknownSymbolError` for unknown symbols and :class:`DataError` for intervals the source cannot serve.

Loaded series are kept in memory per (symbol, interval); providers are not thread-safe while loading.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any

import pandas as pd

from copilot_quant.data.calendars import DEFAULT_CALENDAR, exchange_tz_name, whole_session_range
from copilot_quant.data.dates import DateLike, resolve_range, slice_range
from copilot_quant.data.intervals import INTRADAY_INTERVALS
from copilot_quant.data.resample import aggregate_bars, aggregation_source
from copilot_quant.data.validation import check_supported_interval, normalize_symbol, validate_bars
from copilot_quant.errors import DataError, UnknownSymbolError
from copilot_quant.model.bars import SUPPORTED_INTERVALS, combine_symbols
from copilot_quant.model.ports import IDataFeed

__all__ = ["BarProvider"]

logger = logging.getLogger(__name__)


class BarProvider(IDataFeed):
    """Base class of the historical bar providers; see the module docstring."""

    #: Exchange calendar the provider's daily bars follow.
    calendar: str = DEFAULT_CALENDAR
    #: Short name used in messages and ``get_ticker_info`` (``'sample'``, ``'csv'`` …).
    source: str = "data"

    def __init__(self) -> None:
        self._series_cache: dict[tuple[str, str], pd.DataFrame] = {}

    # -- what a concrete provider supplies -------------------------------------------------------------
    @abstractmethod
    def symbols(self) -> list[str]:
        """The symbols this provider can serve, sorted."""

    def native_intervals(self, symbol: str) -> frozenset[str]:
        """Intervals held for ``symbol`` as such; coarser ones are aggregated from them."""
        return frozenset({"1d"})

    def servable_intervals(self, symbol: str) -> list[str]:
        """Intervals :meth:`get_historical_data` can serve for ``symbol``: held ones and coarser aggregates."""
        native = self.native_intervals(symbol)
        return [
            iv for iv in SUPPORTED_INTERVALS if iv in native or aggregation_source(iv, native) is not None
        ]

    @abstractmethod
    def _load(self, symbol: str, interval: str) -> pd.DataFrame:
        """The full series of a known ``symbol`` at one of its native intervals (validated by the caller)."""

    # -- the IDataFeed contract --------------------------------------------------------------------------
    def get_historical_data(
        self,
        symbol: str,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Bars of ``symbol`` in the inclusive ``[start_date, end_date]``, per the ``IDataFeed`` contract.

        Naive dates are New York time; an end date at midnight includes that day. Intraday bars of a date
        range are its dates' whole sessions, in the symbol's own calendar
        (:func:`~copilot_quant.data.calendars.whole_session_range`): a future's range ending on a Sunday
        stops at Friday's close, one starting on a Tuesday begins at Monday's 17:00 Chicago open. Returns a
        new frame the caller may modify.
        """
        check_supported_interval(interval)
        name = self._require_symbol(symbol)
        lo, hi = resolve_range(start_date, end_date, self._tz)
        if interval in INTRADAY_INTERVALS:
            lo, hi = whole_session_range(lo, hi, self.calendar_of(name), self._tz)
        frame = self._range(name, interval, lo, hi)
        if frame.empty:
            logger.info("%s: no %s bars for %s between %s and %s.", self.source, interval, name, lo, hi)
        return frame.copy()

    def get_multiple_symbols(
        self,
        symbols: list[str],
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Bars of several symbols with ``(Metric, Symbol)`` columns; unknown symbols raise before loading."""
        names = [self._require_symbol(symbol) for symbol in symbols]
        return combine_symbols(
            {name: self.get_historical_data(name, start_date, end_date, interval) for name in names}
        )

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """``symbol``, ``source``, intervals held, and first/last bar and bar count of the daily series."""
        name = self._require_symbol(symbol)
        info: dict[str, Any] = {
            "symbol": name,
            "source": self.source,
            "currency": "USD",
            "calendar": self.calendar,
            "intervals": sorted(self.native_intervals(name)),
        }
        if "1d" in self.native_intervals(name):
            daily = self.bars(name, "1d")
            info.update(
                bars=len(daily),
                first=daily.index[0] if len(daily) else None,
                last=daily.index[-1] if len(daily) else None,
            )
        return info

    def calendar_of(self, symbol: str) -> str:
        """The exchange calendar ``symbol``'s sessions follow (the provider's, unless it knows better)."""
        return self.calendar

    # -- helpers shared by subclasses --------------------------------------------------------------------
    @property
    def _tz(self) -> str:
        return exchange_tz_name(self.calendar)

    def _require_symbol(self, symbol: str) -> str:
        name = normalize_symbol(symbol)
        known = self.symbols()
        if name not in known:
            shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
            raise UnknownSymbolError(f"{self.source} has no data for {name!r}. Available: {shown or 'none'}.")
        return name

    def bars(self, symbol: str, interval: str = "1d") -> pd.DataFrame:
        """The whole validated series of ``symbol`` at ``interval`` (cached; do not modify it)."""
        check_supported_interval(interval)
        name = self._require_symbol(symbol)
        key = (name, interval)
        cached = self._series_cache.get(key)
        if cached is not None:
            return cached
        native = self.native_intervals(name)
        if interval in native:
            frame = validate_bars(self._load(name, interval), symbol=name, source=self.source)
        else:
            source = aggregation_source(interval, native)
            if source is None:
                raise DataError(
                    f"{self.source} has no {interval!r} bars for {name}; available: "
                    f"{', '.join(self.servable_intervals(name))}."
                )
            frame = aggregate_bars(self.bars(name, source), source, interval, self.calendar)
        self._series_cache[key] = frame
        return frame

    def _range(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> pd.DataFrame:
        """Bars of a known symbol in ``[lo, hi]``; providers that generate or fetch on demand override this."""
        return slice_range(self.bars(symbol, interval), lo, hi)

    def clear_cache(self) -> None:
        """Forget the series loaded so far (e.g. after the files on disk changed)."""
        self._series_cache.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
