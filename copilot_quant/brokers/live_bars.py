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
Building even that frame costs ≈0.3 ms of pandas work on a cold CPU (between bars pandas' code leaves the
CPU's caches), so the engine asks for the next one ahead (:meth:`LiveBars.prepare`, after a bar's orders
went out): the frame of every bar held then, the forming one included (or, for a replay's complete daily
bars, the next session's bar, its values still to come), which the next :meth:`~LiveBars.frame` of exactly
those rows hands out once, after copying in the rows written since (the bar's final values) — the same
frame, built earlier; the window then costs ≈0.02 ms on the bar's path (``benchmarks/probe_live.py``).
Rows are written and stamps searched through flat memoryviews of the arrays: numpy's indexing costs
microseconds per call on a cold CPU, a memoryview's item a few bytecodes.

Weekly and monthly streams store IB's daily rows and aggregate them when read, with the backtest's rules.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.interfaces import BAR_COLUMNS
from copilot_quant.brokers.ib_mapping import bar_stamps, bar_values, empty_bars
from copilot_quant.data.calendars import (
    DEFAULT_CALENDAR,
    session_close_ns,
    session_closing_after,
    sessions_by_day,
)
from copilot_quant.data.resample import period_keys, period_last_close, period_start, resample_daily
from copilot_quant.errors import ConfigError, DataError

__all__ = ["LiveBars"]

#: The frames' columns, built once: a pandas Index of strings costs ~0.1 ms to build, on every bar.
_COLUMNS = pd.Index(list(BAR_COLUMNS))

#: Values per bar (the row layout of the store's values).
_WIDTH = len(BAR_COLUMNS)
assert _WIDTH == 5, "LiveBars._write writes Open, High, Low, Close, Volume"

#: Rows a search for a stamp steps back from the newest before it bisects (see LiveBars._rows_through).
_WALK = 8

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


#: Whether this pandas builds a bar frame as a view of the values it is given (checked on first use).
_VIEWS: list[bool] = []


def _frames_view_values(frame: pd.DataFrame, values: np.ndarray) -> bool:
    """Whether ``frame`` (from :func:`_build_frame`) shows later writes into ``values`` (as pandas does
    today: a 2-D float array is taken without a copy when asked)."""
    if not _VIEWS:
        _VIEWS.append(bool(np.shares_memory(frame.to_numpy(), values)))
    return _VIEWS[0]


def _build_frame(stamps: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """The bar frame of ``stamps`` (int64 ns UTC) and ``values`` (rows of :data:`BAR_COLUMNS`), a view of
    ``values`` (callers pass a copy of their own)."""
    index = pd.DatetimeIndex(stamps.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    return pd.DataFrame(values, index=index, columns=_COLUMNS, copy=False)


@dataclass(slots=True)
class _Ready:
    """A frame built ahead (:meth:`LiveBars.prepare`) of the first ``rows`` rows, a view of ``values``;
    ``guessed``: its last row is a bar still to come, stamped ``last``."""

    rows: int
    layout: int
    values: np.ndarray
    frame: pd.DataFrame
    guessed: bool
    last: int


class LiveBars:
    """Bars of one ``(symbol, interval)`` stream, newest wins on equal stamps, at most ``size`` kept.

    Thread-safe: one writer (:meth:`upsert`) and any number of readers may run at once.
    """

    __slots__ = (
        "_cells",
        "_generation",
        "_last",
        "_layout",
        "_lock",
        "_low",
        "_memo",
        "_n",
        "_ready",
        "_stamp_cells",
        "_stamps",
        "_values",
        "calendar",
        "interval",
        "size",
    )

    def __init__(self, interval: str, size: int = 100_000, calendar: str = DEFAULT_CALENDAR) -> None:
        if size < 1:
            raise ConfigError(f"a live bar store needs room for at least 1 bar, got size={size}")
        self.interval = interval
        #: The instrument's exchange calendar: bars are stamped at its session closes.
        self.calendar = calendar
        self.size = int(size)
        self._stamps = np.empty(64, dtype="int64")
        self._values = np.empty((64, _WIDTH), dtype="float64")
        self._views()
        self._n = 0
        self._last: int | None = None  # the newest row's stamp (a Python int: no numpy scalar per update)
        self._memo: dict[Any, int] = {}
        self._lock = threading.Lock()
        # The frame built ahead (see prepare): bumped whenever a held row moves (an insert or a trim), which
        # makes a frame built before unusable; the lowest row written since that frame's copy was taken.
        self._ready: _Ready | None = None
        self._layout = 0
        self._low = 0
        self._generation = 0
        if self._stored_interval == "1d":
            sessions_by_day(calendar)  # built now, not on the first new day's bar (on its way to an order)

    def __len__(self) -> int:
        return self._n

    # ------------------------------------------------------------------ writing
    def upsert(self, bars: Sequence[Any]) -> None:
        """Add ib_async ``BarData`` rows (anything with ``date, open, high, low, close, volume``), in order."""
        if not bars:
            return
        memo = self._memo
        try:  # the common case: the forming bar updated, its label stamped before
            stamps = [memo[b.date] for b in bars]
        except KeyError:
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

    def _views(self) -> None:
        # Flat views of the arrays: a row written or a stamp read through one is a few bytecodes, where
        # numpy's indexing costs microseconds on a cold CPU (every bar update writes one row).
        self._stamp_cells = self._stamps.data
        self._cells = self._values.data.cast("B").cast("d")

    def _write(self, i: int, row: tuple[float, float, float, float, float]) -> None:
        cells, k = self._cells, i * _WIDTH
        cells[k], cells[k + 1], cells[k + 2], cells[k + 3], cells[k + 4] = row
        self._low = min(self._low, i)

    def _put(self, stamp: int, row: tuple[float, float, float, float, float]) -> None:
        n = self._n
        last = self._last
        if stamp == last:  # the forming bar, updated: the common case
            self._write(n - 1, row)
            return
        if last is None or stamp > last:  # a new bar (also the first)
            self._grow(n + 1)
            self._stamp_cells[n] = stamp
            self._write(n, row)
            self._last = stamp  # before the count: a reader without the lock never sees a stale newest
            self._n = n + 1
            return
        i = int(np.searchsorted(self._stamps[:n], stamp))
        if self._stamps[i] == stamp:  # a replayed bar after a reconnect: the newer row wins
            self._write(i, row)
            return
        self._grow(n + 1)  # a bar the store missed (a gap backfilled): shift the newer ones up
        self._stamps[i + 1 : n + 1] = self._stamps[i:n].copy()
        self._values[i + 1 : n + 1] = self._values[i:n].copy()
        self._stamps[i] = stamp
        self._write(i, row)
        self._n = n + 1
        self._layout += 1

    def _grow(self, needed: int) -> None:
        capacity = len(self._stamps)
        if needed <= capacity:
            return
        new = max(needed, capacity * 2)
        stamps = np.empty(new, dtype="int64")
        values = np.empty((new, _WIDTH), dtype="float64")
        stamps[: self._n] = self._stamps[: self._n]
        values[: self._n] = self._values[: self._n]
        self._stamps, self._values = stamps, values
        self._views()

    def _keep_last(self, count: int) -> None:
        drop = self._n - count
        self._stamps[:count] = self._stamps[drop : self._n].copy()
        self._values[:count] = self._values[drop : self._n].copy()
        self._n = count
        self._layout += 1

    # ------------------------------------------------------------------ reading
    def last_stamp(self) -> pd.Timestamp | None:
        """The stamp of the newest row (complete or still forming), or ``None`` while empty."""
        ns = self.last_stamp_ns()
        return None if ns is None else pd.Timestamp(ns, tz="UTC")

    def last_stamp_ns(self) -> int | None:
        """:meth:`last_stamp` as int64 ns since the epoch."""
        return self._last  # one read of an int: no lock needed

    def stamps(self, cutoff_ns: int | None = None, after_ns: int | None = None) -> np.ndarray:
        """The bars' stamps (int64 ns UTC, ascending): those complete by ``cutoff_ns``, or all if ``None``;
        only those stamped after ``after_ns`` if given.

        For weekly and monthly stores these are the stamps of the aggregated bars (each period's last
        daily stamp), and a period counts as complete only once its last session has closed.
        """
        periods = self.interval in _PERIODS
        with self._lock:
            n = self._n if cutoff_ns is None else self._complete_rows(cutoff_ns)
            lo = 0 if after_ns is None or periods else self._rows_through(after_ns, n)
            stamps = self._stamps[lo:n].copy()
        if not periods or n == 0:
            return stamps
        keys = period_keys(pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC"), self.interval)
        stamps = stamps[np.r_[keys[1:] != keys[:-1], True]]
        return stamps if after_ns is None else stamps[stamps > after_ns]

    def _rows_through(self, ns: int, n: int) -> int:
        """How many of the first ``n`` rows are stamped at or before ``ns`` (under the lock). The engine asks
        about the newest bars: a few steps back from row ``n``, else a binary search."""
        cells = self._stamp_cells
        i, stop = n, max(n - _WALK, 0)
        while i > stop and cells[i - 1] > ns:
            i -= 1
        if i > 0 and cells[i - 1] > ns:
            i = int(np.searchsorted(self._stamps[:i], ns, side="right"))
        return i

    def _complete_rows(self, cutoff_ns: int) -> int:
        """How many leading rows are complete by ``cutoff_ns`` (under the lock).

        A daily or intraday row is complete once its stamp (its close) is reached. A weekly or monthly bar
        is not complete at its latest day: the rows of a period whose last session closes after
        ``cutoff_ns`` are left out, so no partial week or month is ever taken for a finished one.
        """
        n = self._rows_through(cutoff_ns, self._n)
        if n == 0 or self.interval not in _PERIODS:
            return n
        last = pd.Timestamp(int(self._stamps[n - 1]), tz="UTC")
        if period_last_close(last, self.interval).value <= cutoff_ns:
            return n
        start = period_start(last, self.interval).value
        return int(np.searchsorted(self._stamps[:n], start, side="left"))

    def frame(self, cutoff: pd.Timestamp | int | None = None) -> pd.DataFrame:
        """A new DataFrame of the bars complete by ``cutoff`` (a Timestamp or int64 ns; see :meth:`stamps`),
        or of all bars held, the forming one included, if ``None``.

        Same columns, dtypes, index name and time zone as :func:`~copilot_quant.brokers.ib_mapping.bars_to_frame`.
        """
        if cutoff is None or isinstance(cutoff, int | np.integer):
            cutoff_ns = cutoff
        else:
            cutoff_ns = pd.Timestamp(cutoff).value
        with self._lock:
            n = self._n if cutoff_ns is None else self._complete_rows(int(cutoff_ns))
            # the frame built ahead is for the engine's next window (a cut-off): get_latest_bar keeps off it
            frame = None if cutoff_ns is None else self._take_ready(n)
            if frame is None:
                stamps = self._stamps[:n].copy()
                values = self._values[:n].copy()
        if frame is None:
            if n == 0:
                return empty_bars()
            frame = _build_frame(stamps, values)
        if self.interval in _PERIODS:
            frame = resample_daily(frame, self.interval)
        return frame

    def _fits(self, ready: _Ready | None, n: int) -> bool:
        """Whether ``ready`` is the frame of the first ``n`` rows as they stand now, once the rows written
        since its copy are brought in (under the lock)."""
        if ready is None or ready.rows != n or ready.layout != self._layout:
            return False
        # a frame with the next bar guessed: that bar has come, at the stamp guessed
        return not ready.guessed or int(self._stamps[n - 1]) == ready.last

    def _take_ready(self, n: int) -> pd.DataFrame | None:
        """The frame built ahead, if it is the one of the first ``n`` rows (under the lock): brought up to
        date (the rows written since its copy) and handed out once."""
        ready = self._ready
        if not self._fits(ready, n):
            return None
        assert ready is not None
        self._ready = None
        low = self._low
        if low < n:
            ready.values[low:n] = self._values[low:n]
        return ready.frame

    def prepare(self, delivered_ns: int | None = None) -> int | None:
        """Build now the frame the next :meth:`frame` will most likely be asked for, off the path from a bar
        to its orders (the engine calls this after a bar's orders went out): the frame of every bar held,
        the forming one included, or — when the newest bar held is complete (stamped at or before
        ``delivered_ns``, the last bar delivered) and bars are daily — with the next session's bar too, its
        values to come (a replay publishes each bar complete, with no forming bar before it).

        That frame is handed out once, by the :meth:`frame` call with a cut-off asking for exactly its rows, with the rows
        written since copied in, as long as no row moved (a gap backfilled, a trim) and a guessed bar came
        at the stamp guessed; any other call builds its frame as always: the result is the same either way.
        Returns the stamp of that frame's last bar (the bar the engine expects next), or None.
        """
        with self._lock:
            if self._n == 0:
                return None
            if self.prepared():
                return self._ready.last if self._ready is not None else None
            n, last = self._n, self._last
            assert last is not None
            guess = self._next_bar(last) if delivered_ns is not None and last <= delivered_ns else None
            rows = n if guess is None else n + 1
            self._ready = None  # writes are tracked from here on for the new frame only
            self._low = n
            self._generation += 1
            generation, layout = self._generation, self._layout
            stamps = np.empty(rows, dtype="int64")
            values = np.empty((rows, _WIDTH), dtype="float64")
            stamps[:n] = self._stamps[:n]
            values[:n] = self._values[:n]
        if guess is not None:
            day, stamps[n] = guess
            values[n] = np.nan  # the bar's values are copied in when it comes
            self._memo.setdefault(day, int(stamps[n]))  # its label, stamped now rather than on its way
        frame = _build_frame(stamps, values)
        if not _frames_view_values(frame, values):
            return None  # this pandas copied the values: the rows written later could not be brought in
        end = int(stamps[-1])
        with self._lock:
            if self._generation == generation and self._layout == layout:
                self._ready = _Ready(rows, layout, values, frame, guess is not None, end)
        return end

    def _next_bar(self, last: int) -> tuple[date, int] | None:
        """The date label and stamp of the daily bar after the one stamped ``last`` (the next session's
        close), or None (intraday bars, the calendar's end)."""
        if self._stored_interval != "1d":
            return None
        return session_closing_after(last, self.calendar)

    def prepared(self) -> bool:
        """Whether :meth:`prepare` has nothing to build: the frame built ahead is that of every bar held,
        or of them and the next bar guessed (cheap: no pandas)."""
        ready = self._ready
        n = self._n
        if ready is None or ready.layout != self._layout:
            return False
        if ready.rows == n + 1 and ready.guessed:
            return True
        return ready.rows == n and (not ready.guessed or ready.last == self._last)

    def __repr__(self) -> str:
        return f"LiveBars({self.interval}, {self._n} bars, last={self.last_stamp()})"
