"""Facts about bar intervals: which are intraday and how long an intraday bar lasts."""

from __future__ import annotations

import pandas as pd

from copilot_quant.data.validation import check_supported_interval
from copilot_quant.errors import DataError
from copilot_quant.model.bars import SUPPORTED_INTERVALS

__all__ = ["DERIVED_FROM_DAILY", "INTRADAY_INTERVALS", "bar_duration", "is_intraday"]

#: Intervals shorter than a session; their bars are stamped at bar end within regular hours.
INTRADAY_INTERVALS: frozenset[str] = frozenset({"1m", "2m", "5m", "15m", "30m", "1h"})

#: Intervals every provider that holds daily bars can aggregate from them.
DERIVED_FROM_DAILY: tuple[str, ...] = ("1wk", "1mo")


def is_intraday(interval: str) -> bool:
    """Whether ``interval`` is shorter than a session (``'1m'`` … ``'1h'``)."""
    return check_supported_interval(interval) in INTRADAY_INTERVALS


def bar_duration(interval: str) -> pd.Timedelta:
    """Length of one intraday bar (``'5m'`` → 5 minutes); daily and longer bars follow the calendar."""
    if not is_intraday(interval):
        raise DataError(f"{interval!r} bars follow the session calendar and have no fixed duration.")
    return pd.Timedelta(SUPPORTED_INTERVALS[interval])
