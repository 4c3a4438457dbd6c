"""A backtest run's bars: which symbols, loaded from where, and the closes of a benchmark it does not trade.

The engine (:mod:`copilot_quant.backtest.engine`) calls these once per run, before the bar loops: the symbols
asked for (``symbol_list``), the bar frame (``load_bars``: the given frame cut to the range, else the data
provider's), the symbols the frame is for (``frame_symbols``), the day a one-digit contract year is read
against (``reference_day``) and a benchmark's closes (``benchmark_closes``, reporting only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from copilot_quant.data.dates import slice_range
from copilot_quant.data.intervals import bar_duration, is_intraday
from copilot_quant.errors import ConfigError, CopilotQuantError, DataError
from copilot_quant.model.ports import IDataFeed

__all__ = [
    "PriorPrices",
    "benchmark_closes",
    "frame_symbols",
    "load_bars",
    "prior_prices",
    "reference_day",
    "symbol_list",
]

log = logging.getLogger(__name__)

#: Open, high, low and close of the bars before a run's start, each ``(bars, symbols)`` (NaN: none).
PriorPrices = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_OHLC = ("Open", "High", "Low", "Close")


def load_bars(
    provider: IDataFeed | None,
    names: list[str],
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    interval: str,
    *,
    data: pd.DataFrame | None,
) -> pd.DataFrame:
    """The run's bars: ``data`` cut to ``[lo, hi]`` when given, else ``provider``'s for ``names``."""
    if data is not None:
        frame = data
        if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is not None:
            frame = slice_range(frame.tz_convert("UTC"), lo, hi)
        return frame
    if provider is None:
        raise ConfigError(
            "no data: pass data_provider=... to BacktestEngine (e.g. SampleDataProvider()) "
            "or a bar frame as run(..., data=frame)"
        )
    if not names:
        raise ConfigError("no symbols to backtest; pass symbols=['AAPL'] to run()")
    if len(names) == 1:
        return provider.get_historical_data(names[0], lo, hi, interval)
    return provider.get_multiple_symbols(names, lo, hi, interval)


def prior_prices(
    provider: IDataFeed | None,
    symbols: list[str],
    lo: pd.Timestamp,
    interval: str,
    keep: int,
    *,
    data: pd.DataFrame | None,
    on_grid: Callable[[pd.DataFrame], pd.DataFrame] = lambda frame: frame,
) -> PriorPrices | None:
    """The last ``keep`` bars of each of ``symbols`` before ``lo``, for the spread estimate of a run that
    starts at ``lo``: the width of its first bars is estimated from the bars before them, as the gateway
    does when its replay starts there — without them a date-range run would quote one tick for its first
    ``window`` bars. None when there are none (the data starts at ``lo``, or the source cannot say).

    Only the spread reads these bars; the strategy and the fills never see them (no look-ahead: they are
    all before the run's first bar)."""
    if len(symbols) != 1 and data is None and provider is None:
        return None
    # enough calendar to hold ``keep`` bars: sessions, weekends and holidays in between
    span = bar_duration(interval) * keep * 3 + pd.Timedelta(days=10) if is_intraday(interval) else None
    start = lo - (span if span is not None else pd.Timedelta(days=keep * 3 + 10))
    try:
        frame = load_bars(provider, symbols, start, lo - pd.Timedelta(1, "ns"), interval, data=data)
    except CopilotQuantError as exc:
        log.debug("no bars before %s for the spread estimate: %s", lo, exc)
        return None
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None or not len(frame):
        return None
    frame = on_grid(frame[frame.index < lo])
    columns = []
    for symbol in symbols:
        rows = _symbol_prices(frame, symbol, single=len(symbols) == 1)
        columns.append(rows[-keep:] if rows is not None else np.full((0, 4), np.nan))
    if not any(len(c) for c in columns):
        return None
    out = np.full((4, keep, len(symbols)), np.nan)
    for k, rows in enumerate(columns):  # right-aligned: each symbol's last bars end at the last row
        if len(rows):
            out[:, keep - len(rows) :, k] = rows.T
    return out[0], out[1], out[2], out[3]


def _symbol_prices(frame: pd.DataFrame, symbol: str, *, single: bool) -> np.ndarray | None:
    """``symbol``'s complete OHLC rows, ``(bars, 4)``, from a flat (one symbol) or (Metric, Symbol) frame."""
    if isinstance(frame.columns, pd.MultiIndex):
        if any((m, symbol) not in frame.columns for m in _OHLC):
            return None
        values = np.column_stack([frame[(m, symbol)].to_numpy(dtype=float) for m in _OHLC])
    elif single and all(m in frame.columns for m in _OHLC):
        values = frame[list(_OHLC)].to_numpy(dtype=float)
    else:
        return None
    return values[np.isfinite(values).all(axis=1)]


def benchmark_closes(
    provider: IDataFeed | None,
    symbol: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp | None,
    interval: str,
) -> pd.Series:
    """A benchmark symbol the run does not trade: its closes from the data provider (reporting only)."""
    if provider is None:
        raise ConfigError(
            f"benchmark {symbol!r} is not one of the run's symbols and there is no data_provider to load "
            "it from; pass data_provider=... to BacktestEngine, benchmark='buy_and_hold' or benchmark=None"
        )
    try:
        bars = provider.get_historical_data(symbol, lo, hi, interval)
    except DataError as exc:  # say it is the benchmark that could not be loaded, not a traded symbol
        raise type(exc)(f"benchmark {symbol}: {exc}") from exc
    closes = bars["Close"].astype("float64")
    if isinstance(closes.index, pd.DatetimeIndex) and closes.index.tz is not None:
        closes = closes.tz_convert("UTC")
    return closes


def frame_symbols(frame: pd.DataFrame, names: list[str]) -> list[str]:
    """The symbols a run's bars are for: the ones asked for, else the frame's."""
    if names:
        return names
    if isinstance(frame.columns, pd.MultiIndex):
        return list(dict.fromkeys(frame.columns.get_level_values(1)))
    return []


def reference_day(lo: pd.Timestamp | None, frame: pd.DataFrame) -> date:
    """The day a one-digit contract year is read against: the run's start."""
    if lo is not None:
        return lo.date()
    if len(frame) and isinstance(frame.index, pd.DatetimeIndex):
        return frame.index[0].date()
    return datetime.now(UTC).date()


def symbol_list(symbols: Sequence[str] | str | None) -> list[str]:
    """``run(symbols=...)`` as a list of upper-case tickers, duplicates dropped; a blank one is refused."""
    if symbols is None:
        return []
    if isinstance(symbols, str):
        symbols = [symbols]
    names = [str(s).strip().upper() for s in symbols]
    if any(not s for s in names):
        raise ConfigError(f"symbols must be non-empty tickers such as 'AAPL', got {list(symbols)!r}")
    return list(dict.fromkeys(names))
