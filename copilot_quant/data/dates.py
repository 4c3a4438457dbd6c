"""Turning user-supplied dates into UTC instants, and cutting bar frames to a date range.

Project rules (see :mod:`copilot_quant.backtest.interfaces`): naive datetimes and plain dates are read in the
exchange time zone (America/New_York by default); an *end* at midnight means "through the end of that day";
ranges are inclusive at both ends.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from copilot_quant.errors import DataError

__all__ = ["EXCHANGE_TZ", "DateLike", "bar_label", "resolve_range", "slice_range", "to_utc"]

#: Time zone naive user input is read in (the NYSE's zone).
EXCHANGE_TZ = "America/New_York"

# A wall time inside a spring-forward gap (02:30 on the switch day) is read with the offset before the
# switch, as zoneinfo does for fold=0: 02:30 EST == 03:30 EDT. Ambiguous times take the first occurrence.
_DST_GAP = pd.Timedelta(hours=1)

DateLike: TypeAlias = str | date | datetime | pd.Timestamp | np.datetime64


def to_utc(value: DateLike, tz: str = EXCHANGE_TZ) -> pd.Timestamp:
    """``value`` as a tz-aware UTC timestamp; naive values (and plain dates) are read in ``tz``."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"Cannot read {value!r} as a date or time; use e.g. '2024-01-31', '2024-01-31 15:30' or a datetime."
        ) from exc
    if ts is pd.NaT:
        raise DataError(f"{value!r} is not a date (NaT); pass a real date such as '2024-01-31'.")
    if ts.tzinfo is None:
        try:
            ts = _localize(value, ts, tz)
        except (ValueError, TypeError) as exc:  # pragma: no cover - pandas handles the DST cases above
            raise DataError(f"Cannot place {value!r} in time zone {tz}: {exc}") from exc
    return ts.tz_convert("UTC")


def _is_midnight(value: DateLike, tz: str) -> bool:
    """Whether ``value`` is a bare date or midnight in its own zone (naive values: in ``tz``)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return True
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = _localize(value, ts, tz)
    return bool(ts == ts.normalize())


def _localize(value: DateLike, ts: pd.Timestamp, tz: str) -> pd.Timestamp:
    """A naive ``ts`` placed in ``tz``. A naive ``datetime`` is read as Python reads it with that zone
    attached (PEP 495: its ``fold`` picks the side of a DST change, so a naive value and the same value
    made aware always agree); strings and other values take the first reading of a repeated hour and move
    a missing one forward."""
    if isinstance(value, datetime) and not isinstance(value, pd.Timestamp):
        return pd.Timestamp(value.replace(tzinfo=ZoneInfo(tz)))
    return ts.tz_localize(tz, ambiguous=True, nonexistent=_DST_GAP)


def resolve_range(
    start: DateLike | None, end: DateLike | None, tz: str = EXCHANGE_TZ
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Inclusive UTC bounds for a user's ``[start, end]``.

    An ``end`` that is a date or midnight (in its own zone; naive values in ``tz``) is moved to the last
    nanosecond of that day, so ``end='2024-01-05'`` includes the bar that closed at 16:00 that day.
    Raises :class:`DataError` when ``start`` is after ``end``.
    """
    lo = to_utc(start, tz) if start is not None else None
    hi = None
    if end is not None:
        hi = to_utc(end, tz)
        if _is_midnight(end, tz):
            # Midnight in the zone the user meant, plus one day, minus 1 ns: the whole day is included.
            # Calendar-day arithmetic, so a 23- or 25-hour DST day still ends at the next local midnight.
            ts = pd.Timestamp(end)
            zone = ts.tzinfo if ts.tzinfo is not None else tz
            wall = ts.tz_localize(None) if ts.tzinfo is not None else ts  # wall-clock time in its own zone
            next_day = wall.normalize() + pd.Timedelta(days=1)
            next_midnight = next_day.tz_localize(zone, ambiguous=True, nonexistent=_DST_GAP)
            hi = (next_midnight - pd.Timedelta(1, "ns")).tz_convert("UTC")
    if lo is not None and hi is not None and lo > hi:
        raise DataError(
            f"Empty date range: start {start!s} is after end {end!s}. Swap them or widen the range."
        )
    return lo, hi


def slice_range(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    """Rows of a UTC-indexed, sorted ``frame`` with ``start <= index <= end`` (bounds from :func:`resolve_range`)."""
    if start is None and end is None:
        return frame
    index = frame.index
    if isinstance(index, pd.DatetimeIndex) and index.unit != "ns":
        index = index.as_unit("ns")  # bounds carry nanoseconds (an end date ends at 23:59:59.999999999)
    lo = 0 if start is None else int(index.searchsorted(start, side="left"))
    hi = len(index) if end is None else int(index.searchsorted(end, side="right"))
    return frame.iloc[lo:hi]


#: Bar intervals whose bars are whole sessions or longer: their time of day says nothing.
_DAILY_INTERVALS = frozenset({"1d", "1day", "d", "day", "1wk", "1w", "1mo", "1mon"})


def bar_label(stamp: DateLike | None, interval: str = "1d", tz: str = EXCHANGE_TZ) -> str:
    """A bar's time as a trader reads it: the exchange date for daily (or longer) bars, ``2024-01-05``;
    the exchange-local time otherwise, ``2024-01-05 10:30 EST``. ``'-'`` for ``None``. (Bars are stamped at
    their close in UTC, ``2024-01-05 21:00:00+00:00``, which reads as the wrong day and time.)"""
    if stamp is None:
        return "-"
    ts = pd.Timestamp(stamp)
    local = (ts.tz_localize("UTC") if ts.tzinfo is None else ts).tz_convert(tz)
    if str(interval).strip().lower().replace(" ", "") in _DAILY_INTERVALS:
        return f"{local:%Y-%m-%d}"
    return f"{local:%Y-%m-%d %H:%M %Z}"
