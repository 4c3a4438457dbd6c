"""Bars from CSV files: a directory of ``SYMBOL.csv`` files, or one file.

Expected columns (any case): a date column (``Date``, ``Datetime``, ``Timestamp`` or ``Time``; else the first
column), ``Open, High, Low, Close, Volume`` and optionally ``Adj Close``. Files may be gzip-compressed
(``SYMBOL.csv.gz``).

How timestamps are read — the one thing a CSV cannot tell us, so it is stated here:

* **Dates only** (``2024-01-05``, or every time at midnight): daily bars, each stamped at its session's
  close from the exchange calendar (16:00 New York, 13:00 on early-close days). A date the calendar has no
  session for is kept at 16:00 and logged.
* **Intraday times** are read as the bar's **start** by default (what most vendors and IB's own
  ``reqHistoricalData`` export write) and moved to the bar's end, the moment it became known; pass
  ``bar_end=True`` when the file already stamps bars at their end. The bar length is ``interval`` or, when
  not given, inferred from the most common spacing within a day. Bars must lie on IB's grid
  (:mod:`~copilot_quant.data.bar_grid`: hourly 09:30–10:00, 10:00–11:00 …, so the 09:30 bar ends at 10:00);
  a file on another grid (Yahoo's hourly 09:30, 10:30 …) raises :class:`~copilot_quant.errors.BarGridError`.
* **Weekly / monthly** files (``interval='1wk'``/``'1mo'``, never inferred): each row is stamped at the last
  session close of the week or month its date falls in, whether the vendor dated it by the period's first
  day (as Yahoo does) or its last.
* Naive times are in the exchange's zone (``tz``, America/New_York); times with an offset (``...-05:00``
  or ``Z``) are honoured.

Adjustment: with ``adjust=True`` (default) and an ``Adj Close`` column, Open/High/Low/Close are scaled by
``Adj Close / Close`` and Volume by the inverse, so splits and dividends don't look like price moves;
without that column the prices are used as they are (assumed already adjusted). ``adjust=False`` always
uses the raw columns.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.data.bar_grid import bar_ends_of_starts, check_ends_on_grid, check_starts_on_grid
from copilot_quant.data.base import BarProvider
from copilot_quant.data.calendars import DEFAULT_CALENDAR, daily_close_stamps, get_calendar
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.data.intervals import INTRADAY_INTERVALS, bar_duration
from copilot_quant.data.validation import check_supported_interval, normalize_symbol
from copilot_quant.errors import DataError

__all__ = ["CSVDataProvider", "read_csv_bars"]

logger = logging.getLogger(__name__)

_SUFFIXES = (".csv", ".csv.gz")
_DATE_COLUMNS = ("date", "datetime", "timestamp", "time")


def _symbol_of(path: Path) -> str:
    name = path.name
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _parse_times(values: pd.Series, where: str) -> pd.DatetimeIndex:
    """Timestamps as written: naive when the file has no offsets, aware when it has them."""
    text = values.astype(str).str.strip()
    try:
        parsed = pd.to_datetime(text, format="mixed")
    except (ValueError, TypeError):
        try:  # several UTC offsets in one column (a DST change): pandas needs utc=True for those
            parsed = pd.to_datetime(text, format="mixed", utc=True)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{where}: cannot read the date column ({exc}); write dates like 2024-01-05 or 2024-01-05 09:30."
            ) from exc
    index = pd.DatetimeIndex(parsed)
    if index.hasnans:
        raise DataError(
            f"{where}: {int(np.asarray(index.isna()).sum())} row(s) have an empty date; remove them."
        )
    return index


def _infer_interval(local: pd.DatetimeIndex, where: str) -> str:
    """The intraday interval whose length is the most common gap between bars of the same day."""
    days = local.normalize()
    same_day = np.asarray(days[1:] == days[:-1])
    gaps = np.diff(local.asi8 if local.unit == "ns" else local.as_unit("ns").asi8)[same_day]
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        raise DataError(
            f"{where}: cannot infer the bar interval (no two bars on the same day); pass interval='1d' for daily bars stamped with a time, or the intraday interval such as '5m'."
        )
    values, counts = np.unique(gaps, return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]), "ns")
    for name in sorted(INTRADAY_INTERVALS, key=bar_duration):
        if bar_duration(name) == step:
            return name
    raise DataError(
        f"{where}: bars are {step} apart, which is not a supported interval "
        f"({', '.join(sorted(INTRADAY_INTERVALS, key=bar_duration))}); resample the file first."
    )


def _period_close_stamps(days: pd.DatetimeIndex, interval: str, calendar: str) -> pd.DatetimeIndex:
    """Weekly/monthly rows stamped at the last session close of the week (Mon–Sun) or month they fall in.

    Vendors date such bars by the period's first day (Yahoo) or its last; either way the bar is only known
    once the period's last session has closed, so stamping it earlier would leak the future.
    """
    if interval == "1wk":
        period_end = days + pd.to_timedelta(6 - days.day_of_week, unit="D")
    else:
        period_end = days + pd.offsets.MonthEnd(0)
    closes = get_calendar(calendar).closes
    sessions = pd.DatetimeIndex(closes.index)
    last = sessions.searchsorted(period_end, side="right") - 1
    if (last < 0).any():
        raise DataError(
            f"{interval} bars dated before the {calendar} calendar starts (1990); drop those rows."
        )
    return pd.DatetimeIndex(closes.iloc[last]).tz_convert("UTC").as_unit("ns")


def _grid_stamps(
    times: pd.DatetimeIndex, interval: str, bar_end: bool, calendar: str, where: str
) -> pd.DatetimeIndex:
    """Intraday times (UTC) as bar ends on IB's grid (:mod:`~copilot_quant.data.bar_grid`): a start moves to
    its bar's end (09:30 → 10:00 in hourly bars); times on another grid raise
    :class:`~copilot_quant.errors.BarGridError` rather than mix two grids."""
    values = times.as_unit("ns").asi8
    step = bar_duration(interval).value
    if bar_end:
        check_ends_on_grid(values, interval, step, calendar, where)
        return times
    check_starts_on_grid(values, interval, step, calendar, where)
    return pd.DatetimeIndex(bar_ends_of_starts(values, step, calendar).view("datetime64[ns]")).tz_localize(
        "UTC"
    )


def read_csv_bars(
    path: str | Path,
    *,
    interval: str | None = None,
    adjust: bool = True,
    bar_end: bool = False,
    tz: str = EXCHANGE_TZ,
    calendar: str = DEFAULT_CALENDAR,
) -> tuple[pd.DataFrame, str]:
    """Read one CSV file into ``(bars, interval)``; see the module docstring for how times are read.

    The frame has a tz-aware UTC index and the file's OHLCV columns (not yet validated: providers pass it
    through :func:`~copilot_quant.data.validation.validate_bars`).
    """
    file = Path(path)
    where = f"CSV file {file}"
    if interval is not None:
        check_supported_interval(interval)
    try:
        table = pd.read_csv(file)
    except FileNotFoundError as exc:
        raise DataError(f"{where} does not exist; check the path.") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataError(
            f"{where} cannot be read as CSV ({exc}); check that it is a comma-separated text file."
        ) from exc
    lookup = {str(c).strip().lower(): c for c in table.columns}
    date_col = next(
        (lookup[c] for c in _DATE_COLUMNS if c in lookup), table.columns[0] if len(table.columns) else None
    )
    if date_col is None or table.empty:
        raise DataError(f"{where} has no rows; it needs a header and at least one bar.")
    times = _parse_times(table[date_col], where)
    frame = table.drop(columns=[date_col])

    # The wall-clock time as written (in the file's own zone when it states one) decides daily vs intraday.
    wall = times.tz_localize(None) if times.tz is not None else times
    dates_only = bool((wall == wall.normalize()).all())
    if interval is None:
        interval = "1d" if dates_only else _infer_interval(wall, where)
    if interval in INTRADAY_INTERVALS:
        if dates_only:
            raise DataError(
                f"{where} holds dates without times, so it cannot be {interval!r} bars; use interval='1d'."
            )
        try:
            stamps = (
                times
                if times.tz is not None
                else times.tz_localize(tz, ambiguous="infer", nonexistent="raise")
            )
        except (ValueError, TypeError) as exc:  # pytz-style ambiguity errors derive from ValueError
            raise DataError(
                f"{where}: some times do not exist or are ambiguous in {tz} (a DST change: {exc}); "
                "write the times with their UTC offset, e.g. 2024-11-03 01:30-04:00."
            ) from exc
        index = _grid_stamps(pd.DatetimeIndex(stamps).tz_convert("UTC"), interval, bar_end, calendar, where)
    elif interval == "1d":
        index = daily_close_stamps(wall.normalize(), calendar)
    else:
        index = _period_close_stamps(wall.normalize(), interval, calendar)

    lower = {str(c).strip().lower(): c for c in frame.columns}
    adj = lower.get("adj close", lower.get("adj_close", lower.get("adjclose")))
    if adjust and adj is not None:
        close_col = lower.get("close")
        if close_col is None:
            raise DataError(
                f"{where}: has 'Adj Close' but no 'Close' column; add Close or pass adjust=False."
            )
        factor = pd.to_numeric(frame[adj], errors="coerce") / pd.to_numeric(frame[close_col], errors="coerce")
        for name in ("open", "high", "low", "close"):
            if name in lower:
                frame[lower[name]] = pd.to_numeric(frame[lower[name]], errors="coerce") * factor
        if "volume" in lower:
            frame[lower["volume"]] = pd.to_numeric(frame[lower["volume"]], errors="coerce") / factor
    if adj is not None:
        frame = frame.drop(columns=[adj])
    frame.index = index
    return frame, interval


class CSVDataProvider(BarProvider):
    """Bars from ``SYMBOL.csv`` files in a directory, or from one file; see the module docstring.

    Args:
        path: a directory of ``SYMBOL.csv`` / ``SYMBOL.csv.gz`` files, or one CSV file.
        symbol: the symbol a single file holds (default: the file name, e.g. ``AAPL.csv`` → ``AAPL``).
        interval: the files' bar interval; ``None`` infers it per file (dates only → ``'1d'``).
        adjust: scale prices by ``Adj Close / Close`` when that column exists (default ``True``).
        bar_end: intraday times are bar *end* times (default ``False``: bar start, moved to the end).
        tz: zone of naive times in the files.
        calendar: exchange calendar for daily bars' session closes.

    Daily files also serve ``'1wk'`` and ``'1mo'`` (aggregated). Files are read on first use and kept in memory;
    call :meth:`clear_cache` after changing them.
    """

    source = "csv"

    def __init__(
        self,
        path: str | Path,
        symbol: str | None = None,
        interval: str | None = None,
        *,
        adjust: bool = True,
        bar_end: bool = False,
        tz: str = EXCHANGE_TZ,
        calendar: str = DEFAULT_CALENDAR,
    ) -> None:
        super().__init__()
        self.path = Path(path).expanduser()
        self.interval = check_supported_interval(interval) if interval is not None else None
        self.adjust = adjust
        self.bar_end = bar_end
        self.tz = tz
        self.calendar = calendar
        self._files = self._find_files(symbol)
        self._intervals: dict[str, str] = {}
        # A file read only to infer its interval, kept until its bars are asked for: reading it again
        # would parse it twice (and log each warning about it, such as non-session dates, twice).
        self._read_ahead: dict[str, pd.DataFrame] = {}

    def _find_files(self, symbol: str | None) -> dict[str, Path]:
        if self.path.is_dir():
            if symbol is not None:
                raise DataError(
                    f"symbol={symbol!r} only applies to a single CSV file; {self.path} is a directory whose "
                    "files are named SYMBOL.csv."
                )
            files: dict[str, Path] = {}
            for file in sorted(self.path.iterdir()):
                if file.is_file() and file.name.lower().endswith(_SUFFIXES):
                    files.setdefault(normalize_symbol(_symbol_of(file)), file)
            if not files:
                raise DataError(f"No SYMBOL.csv files in {self.path}; put one CSV file per symbol there.")
            return files
        if self.path.is_file():
            return {normalize_symbol(symbol or _symbol_of(self.path)): self.path}
        raise DataError(
            f"CSV path {self.path} does not exist; pass a CSV file or a directory of SYMBOL.csv files."
        )

    def symbols(self) -> list[str]:
        """Symbols with a CSV file, sorted."""
        return sorted(self._files)

    def interval_of(self, symbol: str) -> str:
        """The interval of ``symbol``'s file: the one given, or inferred from the file (reads it once)."""
        name = self._require_symbol(symbol)
        if self.interval is not None:
            return self.interval
        if name not in self._intervals:
            self._read_ahead[name] = self._read(name)
        return self._intervals[name]

    def native_intervals(self, symbol: str) -> frozenset[str]:
        """The interval the file holds."""
        return frozenset({self.interval_of(symbol)})

    def _read(self, symbol: str) -> pd.DataFrame:
        frame, interval = read_csv_bars(
            self._files[symbol],
            interval=self.interval,
            adjust=self.adjust,
            bar_end=self.bar_end,
            tz=self.tz,
            calendar=self.calendar,
        )
        self._intervals[symbol] = interval
        return frame

    def _load(self, symbol: str, interval: str) -> pd.DataFrame:
        ahead = self._read_ahead.pop(symbol, None)
        return ahead if ahead is not None else self._read(symbol)

    def files(self) -> dict[str, Path]:
        """Symbol → file path."""
        return dict(self._files)

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """Span and file of ``symbol``."""
        info = super().get_ticker_info(symbol)
        info.update(path=str(self._files[info["symbol"]]), adjusted=self.adjust)
        return info

    def clear_cache(self) -> None:
        """Forget files read so far (re-read them on next use)."""
        super().clear_cache()
        self._intervals.clear()
        self._read_ahead.clear()

    def __repr__(self) -> str:
        return f"CSVDataProvider({str(self.path)!r})"
