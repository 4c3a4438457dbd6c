"""Coarser bars from finer ones: minutes to hours, intraday to daily, daily to weekly and monthly.

One rule everywhere: an aggregate bar is stamped at the stamp of its *last* constituent bar, the moment it
became known, so it never reveals anything that had not happened yet. For complete groups that is the
group's natural end (16:00 for a day, the week's last session close, 11:00 for the 10:00–11:00 hour); a
trailing group the data ends inside is partial and stamped where the data stops, exactly as it looked then.

Groups: intraday buckets are IB's clock slots (:mod:`~copilot_quant.data.bar_grid`: hourly bars
09:30–10:00, 10:00–11:00, … 15:00–16:00, as IB serves them), days are exchange sessions (early closes
included), weeks run Monday–Sunday and months are calendar months, all in the exchange's time zone. The
calendar is the bars' own (``'CME_GLOBEX'`` for a future, ``'FX'`` for a pair): intraday bars that lie
between its sessions are refused with a :class:`~copilot_quant.errors.DataError`, never grouped into a
session they are not part of.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from copilot_quant.data.bar_grid import clock_slot_ns
from copilot_quant.data.calendars import (
    DEFAULT_CALENDAR,
    closing_session_of,
    exchange_tz_name,
    previous_session_close,
    session_bounds,
)
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.data.intervals import INTRADAY_INTERVALS, bar_duration
from copilot_quant.errors import DataError

__all__ = [
    "aggregate_bars",
    "aggregation_source",
    "period_keys",
    "period_last_close",
    "period_start",
    "resample_daily",
]

_PERIODS = {"1wk": "W-SUN", "1mo": "M"}
_ORDER = ("1m", "2m", "5m", "15m", "30m", "1h", "1d", "1wk", "1mo")


def _reduce(frame: pd.DataFrame, keys: np.ndarray) -> pd.DataFrame:
    """Aggregate consecutive rows with equal ``keys`` (the frame is sorted, so groups are contiguous)."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:] - 1, len(keys) - 1]
    cols = {c: frame[c].to_numpy() for c in ("Open", "High", "Low", "Close", "Volume")}
    return pd.DataFrame(
        {
            "Open": cols["Open"][starts],
            "High": np.maximum.reduceat(cols["High"], starts),
            "Low": np.minimum.reduceat(cols["Low"], starts),
            "Close": cols["Close"][ends],
            "Volume": np.add.reduceat(cols["Volume"], starts),
        },
        index=pd.DatetimeIndex(frame.index[ends], name=frame.index.name),
    )


def resample_daily(daily: pd.DataFrame, interval: str, tz: str = EXCHANGE_TZ) -> pd.DataFrame:
    """Aggregate validated daily bars to ``'1wk'`` or ``'1mo'`` (``'1d'`` returns ``daily`` unchanged)."""
    if interval == "1d":
        return daily
    if interval not in _PERIODS:
        raise DataError(f"Only daily bars can be aggregated to '1wk' or '1mo', not to {interval!r}.")
    if daily.empty:
        return daily
    return _reduce(daily, period_keys(pd.DatetimeIndex(daily.index), interval, tz))


def period_keys(stamps: pd.DatetimeIndex, interval: str, tz: str = EXCHANGE_TZ) -> np.ndarray:
    """The ``'1wk'``/``'1mo'`` period (Monday–Sunday week, calendar month, exchange time) of each aware stamp,
    as comparable integers: equal keys aggregate into one bar."""
    if interval not in _PERIODS:
        raise DataError(f"Only '1wk' and '1mo' have calendar periods, not {interval!r}.")
    return np.asarray(stamps.tz_convert(tz).tz_localize(None).to_period(_PERIODS[interval]).asi8)


def period_last_close(stamp: pd.Timestamp, interval: str, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """When the ``'1wk'``/``'1mo'`` period holding ``stamp`` is complete: its last session's close (UTC)."""
    tz = exchange_tz_name(calendar)
    period = stamp.tz_convert(tz).tz_localize(None).to_period(_PERIODS[interval])
    return previous_session_close(period.end_time, calendar)


def period_start(stamp: pd.Timestamp, interval: str, tz: str = EXCHANGE_TZ) -> pd.Timestamp:
    """Midnight (exchange time, as UTC) starting the ``'1wk'``/``'1mo'`` period that holds ``stamp``."""
    period = stamp.tz_convert(tz).tz_localize(None).to_period(_PERIODS[interval])
    return period.start_time.tz_localize(tz).tz_convert("UTC")


def aggregation_source(target: str, available: frozenset[str] | set[str]) -> str | None:
    """The best held interval to build ``target`` bars from (the coarsest that fits), or ``None``."""
    candidates = []
    for source in available:
        if source not in _ORDER or _ORDER.index(source) >= _ORDER.index(target):
            continue
        if target in INTRADAY_INTERVALS:
            if bar_duration(target) % bar_duration(source) != pd.Timedelta(0):
                continue
        elif source in ("1wk", "1mo"):
            continue
        candidates.append(source)
    return max(candidates, key=_ORDER.index) if candidates else None


def aggregate_bars(
    frame: pd.DataFrame, source: str, target: str, calendar: str = DEFAULT_CALENDAR
) -> pd.DataFrame:
    """Validated ``source`` bars aggregated to the coarser ``target`` interval (see the module docstring)."""
    if source == target or frame.empty:
        return frame
    if aggregation_source(target, {source}) != source:
        raise DataError(f"Cannot build {target!r} bars from {source!r} bars; use a finer source interval.")
    tz = exchange_tz_name(calendar)
    if target in _PERIODS:
        daily = frame if source == "1d" else aggregate_bars(frame, source, "1d", calendar)
        return resample_daily(daily, target, tz)
    # The session each bar belongs to: its bar end lies in (open, close], so the first close at or after it.
    stamps = pd.DatetimeIndex(frame.index).as_unit("ns")
    session_close = closing_session_of(stamps, calendar).as_unit("ns").asi8
    unique_closes, inverse = np.unique(session_close, return_inverse=True)
    first, last = pd.Timestamp(unique_closes[0], tz="UTC"), pd.Timestamp(unique_closes[-1], tz="UTC")
    all_opens, all_closes = session_bounds(first, last, calendar)
    where = np.searchsorted(all_closes.as_unit("ns").asi8, unique_closes)
    opens = all_opens.as_unit("ns").asi8[where][inverse]
    _check_inside_sessions(stamps, opens, source, calendar)
    if target == "1d":
        return _reduce(frame, session_close)
    # A bar's clock slot is that of its last instant (its end lies in (start, slot end]); a new group starts
    # where the slot or the session changes.
    slot = clock_slot_ns(stamps.asi8 - 1, bar_duration(target).value, tz)
    change = (slot[1:] != slot[:-1]) | (inverse[1:] != inverse[:-1])
    return _reduce(frame, np.cumsum(np.r_[0, change]))


def _check_inside_sessions(stamps: pd.DatetimeIndex, opens: np.ndarray, source: str, calendar: str) -> None:
    """Refuse bars that end by their session's open: they lie between sessions of ``calendar``, so they would
    be grouped with a session they are not part of (a future's Sunday-evening minutes read on the NYSE's)."""
    outside = stamps.asi8 <= opens
    if outside.any():
        raise DataError(
            f"{int(outside.sum())} {source} bar(s) lie outside every {calendar} session (first: "
            f"{stamps[outside][0]}); aggregate a future's or a pair's bars on its own calendar "
            f"(calendar_for(instrument).calendar, e.g. 'CME_GLOBEX' or 'FX') and leave out pre/post-market bars."
        )
