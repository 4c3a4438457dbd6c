"""Checks every provider runs before bars reach an engine: bad data is an error or a logged repair.

:func:`validate_bars` enforces the project's bar convention (tz-aware UTC index, sorted and unique, float
``Open, High, Low, Close, Volume``). What it does with each problem, so nothing changes silently:

===============================================  =====================================================
Problem                                          Outcome
===============================================  =====================================================
a required column missing                        :class:`DataError` naming the missing and found columns
column names in another case (``close``)         renamed (no log: pure spelling)
naive or non-datetime index                      :class:`DataError` (providers localize before this)
unsorted timestamps                              sorted, logged as a warning
exact duplicate rows                             dropped, logged as a warning
duplicate timestamps with different values       :class:`DataError` (which row is right is unknowable)
rows whose prices are *all* NaN (vendor holes)   dropped, logged as a warning
a row with *some* NaN prices                     :class:`DataError`
NaN volume                                       set to 0, logged as a warning
infinite values, non-positive prices             :class:`DataError`
negative volume                                  :class:`DataError`
High < Low                                       :class:`DataError`
Open/Close outside [Low, High]                   High/Low widened to include them, logged as a warning
===============================================  =====================================================

With ``strict=True`` every "logged" repair becomes a :class:`DataError` instead.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from copilot_quant.errors import DataError
from copilot_quant.model.bars import BAR_COLUMNS, SUPPORTED_INTERVALS

__all__ = [
    "check_supported_interval",
    "empty_bars",
    "normalize_symbol",
    "validate_bars",
]

logger = logging.getLogger(__name__)

_SYMBOL_RE = re.compile(r"^[A-Z0-9^][A-Z0-9.\-^=_ ]{0,31}$")
_PRICES = ("Open", "High", "Low", "Close")


def check_supported_interval(interval: str) -> str:
    """``interval`` if it is one of :data:`SUPPORTED_INTERVALS`, else a :class:`DataError` listing them."""
    if interval not in SUPPORTED_INTERVALS:
        raise DataError(f"Unsupported interval {interval!r}; use one of: {', '.join(SUPPORTED_INTERVALS)}.")
    return interval


def normalize_symbol(symbol: str) -> str:
    """Upper-case, stripped ticker; rejects empty names and characters that cannot be a ticker or file name."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise DataError(f"Symbol must be a non-empty string such as 'AAPL', got {symbol!r}.")
    cleaned = symbol.strip().upper()
    if not _SYMBOL_RE.match(cleaned):
        raise DataError(
            f"Symbol {symbol!r} has characters a ticker cannot have; use letters, digits and . - ^ = _ only."
        )
    return cleaned


def empty_bars() -> pd.DataFrame:
    """A frame with no rows in the bar convention (UTC index, float OHLCV columns)."""
    return pd.DataFrame(
        {c: pd.Series([], dtype="float64") for c in BAR_COLUMNS},
        index=pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns"),
    )


def _first(index: pd.Index, mask: object, limit: int = 3) -> str:
    picked = index[np.asarray(mask, dtype=bool)][:limit]
    return ", ".join(str(t) for t in picked)


def _repair(strict: bool, message: str, *args: object) -> None:
    """Log a repair, or refuse it in strict mode."""
    if strict:
        raise DataError((message % args) + " (strict mode refuses repairs; fix the source data.)")
    logger.warning(message, *args)


def _canonical_columns(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    lookup = {str(c).strip().lower().replace("_", " "): c for c in frame.columns}
    rename = {}
    missing = []
    for name in BAR_COLUMNS:
        found = lookup.get(name.lower())
        if found is None:
            missing.append(name)
        elif found != name:
            rename[found] = name
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)}; found {[str(c) for c in frame.columns]}. "
            f"Bars need {', '.join(BAR_COLUMNS)} (any case)."
        )
    return frame.rename(columns=rename) if rename else frame


def validate_bars(
    frame: pd.DataFrame, symbol: str = "?", source: str = "data", *, strict: bool = False
) -> pd.DataFrame:
    """``frame`` checked and brought to the bar convention; see the module docstring for each rule.

    Returns a new frame with exactly the columns ``Open, High, Low, Close, Volume`` (float64) and a sorted,
    unique, tz-aware UTC ``DatetimeIndex`` (nanoseconds). Raises :class:`DataError` for data that cannot be
    trusted.
    """
    where = f"{source} {symbol}"
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame of bars, got {type(frame).__name__}.")
    frame = _canonical_columns(frame, where)
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"{where}: the index must be a DatetimeIndex of bar timestamps, got {type(index).__name__}; "
            "set the date column as index (e.g. df.set_index('Date'))."
        )
    if index.tz is None:
        raise DataError(
            f"{where}: timestamps are naive; localize them first (e.g. index.tz_localize('America/New_York')) "
            "so that no bar is read in the wrong time zone."
        )
    try:
        out = frame.loc[:, list(BAR_COLUMNS)].astype("float64")
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: OHLCV columns must be numeric ({exc}); clean the source data.") from exc
    out.index = index.tz_convert("UTC").as_unit("ns").rename("timestamp")
    if out.index.hasnans:
        raise DataError(
            f"{where}: {int(np.asarray(out.index.isna()).sum())} row(s) have no timestamp (NaT); remove them."
        )

    if not out.index.is_monotonic_increasing:
        _repair(strict, "%s: timestamps were not in order; sorted them.", where)
        out = out.sort_index(kind="stable")

    dup = out.index.duplicated(keep="first")
    if dup.any():
        exact = out.reset_index().duplicated(keep="first").to_numpy()
        if (dup & ~exact).any():
            raise DataError(
                f"{where}: {int((dup & ~exact).sum())} timestamp(s) appear twice with different values "
                f"(first: {_first(out.index, dup & ~exact)}); remove the wrong rows from the source."
            )
        _repair(
            strict,
            "%s: dropped %d exact duplicate row(s) (first: %s).",
            where,
            int(dup.sum()),
            _first(out.index, dup),
        )
        out = out[~dup]

    prices = out.loc[:, list(_PRICES)].to_numpy()
    nan = np.isnan(prices)
    all_nan = nan.all(axis=1)
    if all_nan.any():
        _repair(
            strict,
            "%s: dropped %d row(s) without any price (first: %s).",
            where,
            int(all_nan.sum()),
            _first(out.index, all_nan),
        )
        out = out[~all_nan]
        prices = prices[~all_nan]
        nan = nan[~all_nan]
    if nan.any():
        rows = nan.any(axis=1)
        raise DataError(
            f"{where}: {int(rows.sum())} row(s) have some but not all prices missing "
            f"(first: {_first(out.index, rows)}); fill or remove them in the source."
        )
    volume = out["Volume"].to_numpy()
    if np.isnan(volume).any():
        _repair(strict, "%s: %d bar(s) had no volume; set to 0.", where, int(np.isnan(volume).sum()))
        out["Volume"] = out["Volume"].fillna(0.0)
        volume = out["Volume"].to_numpy()
    if not np.isfinite(prices).all() or not np.isfinite(volume).all():
        raise DataError(f"{where}: infinite values in the bars; fix the source data.")
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        raise DataError(
            f"{where}: {int(bad.sum())} bar(s) have zero or negative prices (first: {_first(out.index, bad)}); "
            "prices must be positive."
        )
    if (volume < 0).any():
        raise DataError(f"{where}: negative volume at {_first(out.index, volume < 0)}; volume must be >= 0.")
    open_, high, low, close = prices.T
    inverted = high < low
    if inverted.any():
        raise DataError(
            f"{where}: High < Low in {int(inverted.sum())} bar(s) (first: {_first(out.index, inverted)}); "
            "the columns may be swapped or the data corrupt."
        )
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    outside = (high < top) | (low > bottom)
    if outside.any():
        _repair(
            strict,
            "%s: widened High/Low of %d bar(s) whose Open or Close lay outside [Low, High] (first: %s).",
            where,
            int(outside.sum()),
            _first(out.index, outside),
        )
        out["High"] = np.maximum(high, top)
        out["Low"] = np.minimum(low, bottom)
    return out
