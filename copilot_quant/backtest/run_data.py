"""A backtest run's bars: which symbols, loaded from where, and the closes of a benchmark it does not trade.

The engine (:mod:`copilot_quant.backtest.engine`) calls these once per run, before the bar loops: the symbols
asked for (``symbol_list``), the bar frame (``load_bars``: the given frame cut to the range, else the data
provider's), the symbols the frame is for (``frame_symbols``), the day a one-digit contract year is read
against (``reference_day``) and a benchmark's closes (``benchmark_closes``, reporting only).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import pandas as pd

from copilot_quant.data.dates import slice_range
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.model.ports import IDataFeed

__all__ = ["benchmark_closes", "frame_symbols", "load_bars", "reference_day", "symbol_list"]


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
