"""The bars of one live stream, kept so that an update costs microseconds, not a pandas merge.

IB's ``keepUpToDate`` stream rewrites its forming bar every few seconds and appends a bar when a new one
starts; a reconnect replays the whole lookback, overlapping what is held. :class:`LiveBars` stores the
rows in preallocated numpy arrays sorted by stamp (the project convention: the bar's close time, UTC):
an update of the last bar overwrites a row, a new bar appends one, an overlapping replay overwrites equal
stamps (the newer row wins) and inserts the rest. Stamping needs the exchange calendar, so each distinct IB
``date`` label is stamped once (in a vectorised batch) and remembered.

Only readers build pandas objects: :meth:`LiveBars.frame` returns a fresh DataFrame (a copy: callers,
strategies included, may keep or modify it) of the bars up to a cut-off, in exactly the backtest's shape.
That keeps the engine's tick-to-order path free of pandas merges (≈1.5 ms per bar before this existed).

Weekly and monthly streams store IB's daily rows and aggregate them when read, with the backtest's rules.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.interfaces import BAR_COLUMNS
from copilot_quant.brokers.ib_mapping import bar_stamps, bar_values, empty_bars
from copilot_quant.data.calendars import DEFAULT_CALENDAR, session_close_ns, sessions_by_day
from copilot_quant.data.resample import period_keys, period_last_close, period_start, resample_daily
from copilot_quant.errors import ConfigError, DataError

__all__ = ["LiveBars"]

#: The frames' columns, built once: a pandas Index of strings costs ~0.1 ms to build, on every bar.
_COLUMNS = pd.Index(list(BAR_COLUMNS))

#: Intervals aggregated from daily rows when read.
_PERIODS = ("1wk", "1mo")

#: Remembered ``date`` label → stamp entries before the memo is cleared (labels of long-gone bars).
_MEMO_LIMIT = 200_000


def _session_close_ns(label: Any, calendar: str = DEFAULT_CALENDAR) -> int:
    """Stamp of one daily bar label; a day without a session takes the batch path (which logs it)."""
    day = label.date() if isinstance(label, datetime) else label
    try:
        return session_close_ns(day, calendar)
    except DataError:
        return int(bar_stamps([label], "1d", calendar).asi8[0])


class LiveBars:
    """Bars of one ``(symbol, interval)`` stream, newest wins on equal stamps, at most ``size`` kept.

    Thread-safe: one writer (:meth:`upsert`) and any number of readers may run at once.
    """

    __slots__ = ("_lock", "_memo", "_n", "_stamps", "_values", "calendar", "interval", "size")

    def __init__(self, interval: str, size: int = 100_000, calendar: str = DEFAULT_CALENDAR) -> None:
        if size < 1:
            raise ConfigError(f"a live bar store needs room for at least 1 bar, got size={size}")
        self.interval = interval
        #: The instrument's exchange calendar: bars are stamped at its session closes.
        self.calendar = calendar
        self.size = int(size)
        self._stamps = np.empty(64, dtype="int64")
        self._values = np.empty((64, len(BAR_COLUMNS)), dtype="float64")
        self._n = 0
        self._memo: dict[Any, int] = {}
        self._lock = threading.Lock()
        if self._stored_interval == "1d":
            sessions_by_day(calendar)  # built now, not on the first new day's bar (on its way to an order)

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------ writing
    def upsert(self, bars: Sequence[Any]) -> None:
        """Add ib_async ``BarData`` rows (anything with ``date, open, high, low, close, volume``), in order."""
        if not bars:
            return
        stamps = self._stamp([b.date for b in bars])
        with self._lock:
            for stamp, bar in zip(stamps, bars, strict=True):
                self._put(stamp, bar_values(bar))
            if self._n > self.size:
                self._keep_last(self.size)

    def _stamp(self, labels: list[Any]) -> list[int]:
        memo = self._memo
        missing = [label for label in dict.fromkeys(labels) if label not in memo]
        if missing:
            if len(memo) + len(missing) > _MEMO_LIMIT:
                memo.clear()  # forget long-gone bars' labels; this batch's are all stamped afresh
                missing = list(dict.fromkeys(labels))
            if len(missing) == 1 and self._stored_interval == "1d":  # a new day's bar: one calendar lookup
                memo[missing[0]] = _session_close_ns(missing[0], self.calendar)
            else:
                stamps = bar_stamps(missing, self._stored_interval, self.calendar).asi8
                memo.update(zip(missing, (int(s) for s in stamps), strict=True))
        return [memo[label] for label in labels]

    @property
    def _stored_interval(self) -> str:
        return "1d" if self.interval in _PERIODS else self.interval

    def _put(self, stamp: int, row: tuple[float, ...]) -> None:
        n = self._n
        if n == 0 or stamp > self._stamps[n - 1]:
            self._grow(n + 1)
            self._stamps[n] = stamp
            self._values[n] = row
            self._n = n + 1
            return
        if stamp == self._stamps[n - 1]:  # the forming bar, updated: the common case
            self._values[n - 1] = row
            return
        i = int(np.searchsorted(self._stamps[:n], stamp))
        if self._stamps[i] == stamp:  # a replayed bar after a reconnect: the newer row wins
            self._values[i] = row
            return
        self._grow(n + 1)  # a bar the store missed (a gap backfilled): shift the newer ones up
        self._stamps[i + 1 : n + 1] = self._stamps[i:n].copy()
        self._values[i + 1 : n + 1] = self._values[i:n].copy()
        self._stamps[i] = stamp
        self._values[i] = row
        self._n = n + 1

    def _grow(self, needed: int) -> None:
        capacity = len(self._stamps)
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        stamps = np.empty(new, dtype="int64")
        values = np.empty((new, self._values.shape[1]), dtype="float64")
        stamps[: self._n] = self._stamps[: self._n]
        values[: self._n] = self._values[: self._n]
        self._stamps, self._values = stamps, values

    def _keep_last(self, count: int) -> None:
        drop = self._n - count
        self._stamps[:count] = self._stamps[drop : self._n].copy()
        self._values[:count] = self._values[drop : self._n].copy()
        self._n = count

    # ------------------------------------------------------------------ reading
    def last_stamp(self) -> pd.Timestamp | None:
        """The stamp of the newest row (complete or still forming), or ``None`` while empty."""
        ns = self.last_stamp_ns()
        return None if ns is None else pd.Timestamp(ns, tz="UTC")

    def last_stamp_ns(self) -> int | None:
        """:meth:`last_stamp` as int64 ns since the epoch."""
        with self._lock:
            return None if self._n == 0 else int(self._stamps[self._n - 1])

    def stamps(self, cutoff_ns: int | None = None) -> np.ndarray:
        """The bars' stamps (int64 ns UTC, ascending): those complete by ``cutoff_ns``, or all if ``None``.

        For weekly and monthly stores these are the stamps of the aggregated bars (each period's last
        daily stamp), and a period counts as complete only once its last session has closed.
        """
        with self._lock:
            n = self._n if cutoff_ns is None else self._complete_rows(cutoff_ns)
            stamps = self._stamps[:n].copy()
        if self.interval not in _PERIODS or n == 0:
            return stamps
        keys = period_keys(pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC"), self.interval)
        return stamps[np.r_[keys[1:] != keys[:-1], True]]

    def _complete_rows(self, cutoff_ns: int) -> int:
        """How many leading rows are complete by ``cutoff_ns`` (under the lock).

        A daily or intraday row is complete once its stamp (its close) is reached. A weekly or monthly bar
        is not complete at its latest day: the rows of a period whose last session closes after
        ``cutoff_ns`` are left out, so no partial week or month is ever taken for a finished one.
        """
        n = int(np.searchsorted(self._stamps[: self._n], cutoff_ns, side="right"))
        if n == 0 or self.interval not in _PERIODS:
            return n
        last = pd.Timestamp(int(self._stamps[n - 1]), tz="UTC")
        if period_last_close(last, self.interval).value <= cutoff_ns:
            return n
        start = period_start(last, self.interval).value
        return int(np.searchsorted(self._stamps[:n], start, side="left"))

    def frame(self, cutoff: pd.Timestamp | None = None) -> pd.DataFrame:
        """A new DataFrame of the bars complete by ``cutoff`` (see :meth:`stamps`), or of all bars held,
        the forming one included, if ``None``.

        Same columns, dtypes, index name and time zone as :func:`~copilot_quant.brokers.ib_mapping.bars_to_frame`.
        """
        with self._lock:
            n = self._n if cutoff is None else self._complete_rows(pd.Timestamp(cutoff).value)
            stamps = self._stamps[:n].copy()
            values = self._values[:n].copy()
        if n == 0:
            return empty_bars()
        index = pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
        frame = pd.DataFrame(values, index=index, columns=_COLUMNS, copy=False)
        if self.interval in _PERIODS:
            frame = resample_daily(frame, self.interval)
        return frame

    def __repr__(self) -> str:
        return f"LiveBars({self.interval}, {self._n} bars, last={self.last_stamp()})"
