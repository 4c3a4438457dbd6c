"""Plan an IB historical download: which trading sessions are missing, and how to ask for them in chunks.

IB answers one ``reqHistoricalData`` with at most a bar-size-dependent duration. Its table of step sizes
(https://interactivebrokers.github.io/tws-api/historical_limitations.html, "Step Sizes"; the older API
guide's "Valid Duration and Bar Size Settings" agrees) allows at most:

====================  ================  ===========================
bar size              max duration      sessions per request here
====================  ================  ===========================
1 min                 1 D               1
2 mins                2 D               2
5 mins, 15 mins       1 W               5
30 mins, 1 hour       1 M               20
1 day                 1 Y               250
====================  ================  ===========================

Requests here are always a run of consecutive regular sessions (``useRTH``), ending at the last one's close
with a duration of ``"<n> D"``, where IB's HMDS (and the simulated gateway) counts ``D`` in trading
sessions. A week and a month are counted conservatively (5 and 20 sessions), so no request exceeds the
table even in a week or month without holidays.

Everything here is pure (no IB, no files): :func:`trading_sessions` lists the sessions of a range from the
exchange calendar (weekends and holidays are never "missing"), :func:`missing_mask` says which of them the
stored bars do not touch, and :func:`plan_runs` / :func:`plan_chunks` cut the missing ones into the fewest
requests the table allows (greedy per run of consecutive missing sessions, which is optimal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from copilot_quant.data.calendars import DEFAULT_CALENDAR, session_bounds
from copilot_quant.errors import DataError

__all__ = [
    "IB_DOWNLOAD_BAR_SIZE",
    "MAX_SESSIONS",
    "Chunk",
    "Session",
    "check_download_interval",
    "minimum_requests",
    "missing_mask",
    "plan_chunks",
    "plan_runs",
    "trading_sessions",
]

#: Most sessions one request may cover, per project interval (see the module docstring's table).
MAX_SESSIONS: dict[str, int] = {"1m": 1, "2m": 2, "5m": 5, "15m": 5, "30m": 20, "1h": 20, "1d": 250}

#: The IB bar size requested for each downloadable interval.
IB_DOWNLOAD_BAR_SIZE: dict[str, str] = {
    "1m": "1 min",
    "2m": "2 mins",
    "5m": "5 mins",
    "15m": "15 mins",
    "30m": "30 mins",
    "1h": "1 hour",
    "1d": "1 day",
}


def check_download_interval(interval: str) -> str:
    """``interval`` if IB bars of that size can be downloaded, else a :class:`DataError` saying which can."""
    if interval not in MAX_SESSIONS:
        hint = (
            " (download 1d: the store builds 1wk/1mo from daily bars)" if interval in ("1wk", "1mo") else ""
        )
        raise DataError(
            f"cannot download {interval!r} bars from IB{hint}; use one of {', '.join(MAX_SESSIONS)}"
        )
    return interval


@dataclass(frozen=True, slots=True)
class Session:
    """One regular trading session, its open and close in UTC."""

    open: pd.Timestamp
    close: pd.Timestamp

    @property
    def day(self) -> str:
        return f"{self.close.tz_convert('America/New_York'):%Y-%m-%d}"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One historical request: ``sessions`` (consecutive, oldest first) of ``symbol`` at ``interval``."""

    symbol: str
    interval: str
    sessions: tuple[Session, ...]

    @property
    def end(self) -> pd.Timestamp:
        """The request's endDateTime: the close of its last session."""
        return self.sessions[-1].close

    @property
    def start(self) -> pd.Timestamp:
        return self.sessions[0].open

    @property
    def duration(self) -> str:
        """IB's durationStr: the number of sessions, in trading days."""
        return f"{len(self.sessions)} D"

    @property
    def bar_size(self) -> str:
        return IB_DOWNLOAD_BAR_SIZE[self.interval]

    def describe(self) -> str:
        first, last = self.sessions[0].day, self.sessions[-1].day
        days = first if first == last else f"{first}..{last}"
        return f"{self.symbol} {self.interval} {days}"


def trading_sessions(
    start: pd.Timestamp, end: pd.Timestamp, calendar: str = DEFAULT_CALENDAR
) -> list[Session]:
    """The sessions closing in ``[start, end]`` (UTC bounds), oldest first."""
    opens, closes = session_bounds(start, end, calendar)
    return [Session(o, c) for o, c in zip(opens, closes, strict=True)]


def missing_mask(sessions: Sequence[Session], stamps: pd.DatetimeIndex) -> list[bool]:
    """Per session: True when no stored bar is stamped in ``(open, close]`` (bars are stamped at their end;
    a daily bar at the session close)."""
    if not sessions:
        return []
    if len(stamps) == 0:
        return [True] * len(sessions)
    values = np.sort(pd.DatetimeIndex(stamps).tz_convert("UTC").as_unit("ns").asi8)
    opens = np.array([s.open.as_unit("ns").value for s in sessions], dtype=np.int64)
    closes = np.array([s.close.as_unit("ns").value for s in sessions], dtype=np.int64)
    inside = np.searchsorted(values, closes, side="right") - np.searchsorted(values, opens, side="right")
    return [bool(n == 0) for n in inside]


def plan_runs(missing: Sequence[bool], max_sessions: int) -> list[tuple[int, int]]:
    """Index ranges ``[i, j)`` covering every missing position exactly once, each at most ``max_sessions``
    long and made of consecutive missing positions only."""
    if max_sessions < 1:
        raise DataError(f"max_sessions must be at least 1, got {max_sessions}")
    out: list[tuple[int, int]] = []
    i, n = 0, len(missing)
    while i < n:
        if not missing[i]:
            i += 1
            continue
        j = i
        while j < n and missing[j] and j - i < max_sessions:
            j += 1
        out.append((i, j))
        i = j
    return out


def minimum_requests(missing: Sequence[bool], max_sessions: int) -> int:
    """The fewest requests IB's duration table allows: per run of consecutive missing sessions,
    ``ceil(run / max_sessions)`` (a request covers consecutive sessions only)."""
    total, run = 0, 0
    for flag in [*missing, False]:
        if flag:
            run += 1
        elif run:
            total += math.ceil(run / max_sessions)
            run = 0
    return total


def plan_chunks(
    symbol: str, interval: str, sessions: Sequence[Session], missing: Sequence[bool]
) -> list[Chunk]:
    """The requests that fetch the ``missing`` ones of ``sessions`` (see :func:`plan_runs`)."""
    check_download_interval(interval)
    if len(sessions) != len(missing):
        raise DataError(f"{len(sessions)} sessions but {len(missing)} missing flags")
    return [
        Chunk(symbol, interval, tuple(sessions[i:j])) for i, j in plan_runs(missing, MAX_SESSIONS[interval])
    ]
