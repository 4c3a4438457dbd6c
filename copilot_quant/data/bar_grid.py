"""IB's intraday bar grid — the one place it is computed (backtest data, the simulated gateway, live stamps).

IB builds intraday bars on the clock, not from the session open: an ``interval`` bar covers one slot of a
grid of whole multiples of the interval counted from midnight in the exchange's time zone, cut by the
session. The first bar of a session starts at the open, the last ends at the close. An NYSE session's
hourly bars are therefore 09:30–10:00, 10:00–11:00, …, 15:00–16:00 (seven bars, the first half an hour
long; ib_insync's ``bar_data`` notebook shows a TSLA hourly series starting 09:30, then 10:00, 11:00 …);
an IDEALPRO pair's day (17:15 New York open) starts with 17:15–18:00. CME Globex opens and closes on the
hour, so its grid and its session's coincide. Sources and the decision: README, "Intraday bar grid".

Every intraday interval the project supports divides an hour and every calendar here is a whole number of
hours off UTC, but the slot is still taken in the exchange's own time (the offset of each instant), so the
rule reads as IB states it. Bars are stamped at their end, the project's convention: the end of a slot, or
the session's close for the last bar of a session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from copilot_quant.data.calendars import exchange_tz_name, market_open_span, session_spans_of
from copilot_quant.errors import BarGridError

__all__ = [
    "bar_end_at",
    "bar_ends_in_sessions",
    "bar_ends_of_starts",
    "bar_starts_of_ends",
    "check_ends_on_grid",
    "check_starts_on_grid",
    "clock_slot_ns",
]


def _offsets_ns(instants_ns: np.ndarray, tz: str) -> np.ndarray:
    """The exchange zone's UTC offset (ns) at each instant (int64 ns UTC)."""
    utc = pd.DatetimeIndex(np.asarray(instants_ns, dtype=np.int64).view("datetime64[ns]")).tz_localize("UTC")
    return np.asarray(utc.tz_convert(tz).tz_localize(None).asi8) - utc.asi8


def clock_slot_ns(instants_ns: np.ndarray, step_ns: int, tz: str) -> np.ndarray:
    """Start (int64 ns UTC) of the ``step_ns``-long clock slot holding each instant: the instant's wall-clock
    time in ``tz`` floored to a whole multiple of the step counted from midnight."""
    values = np.asarray(instants_ns, dtype=np.int64)
    offsets = _offsets_ns(values, tz)
    local = values + offsets
    return local - local % step_ns - offsets


def bar_ends_in_sessions(opens_ns: np.ndarray, closes_ns: np.ndarray, step_ns: int, tz: str) -> np.ndarray:
    """Bar-end stamps (int64 ns UTC) of every ``step_ns`` bar of each session ``[open, close)``, in order:
    the clock slots' ends inside it, then the close (the first bar starts at the open, the last ends at
    the close, both possibly shorter than a step)."""
    opens = np.asarray(opens_ns, dtype=np.int64)
    closes = np.asarray(closes_ns, dtype=np.int64)
    if not len(opens):
        return np.empty(0, dtype=np.int64)
    first = clock_slot_ns(opens, step_ns, tz)
    counts = -((first - closes) // step_ns)  # ceil((close - first slot start) / step)
    session = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.minimum(first[session] + (k + 1) * step_ns, closes[session])


def bar_ends_of_starts(starts_ns: np.ndarray, step_ns: int, calendar: str) -> np.ndarray:
    """The stamps (int64 ns UTC) of bars IB dates by their start: the end of the start's clock slot,
    clipped at the close of the session it belongs to (the short last bar of a session ends there)."""
    starts = np.asarray(starts_ns, dtype=np.int64)
    ends = clock_slot_ns(starts, step_ns, exchange_tz_name(calendar)) + step_ns
    _, closes = session_spans_of(starts + 1, calendar)
    return np.minimum(ends, closes)


def bar_starts_of_ends(ends_ns: np.ndarray, step_ns: int, calendar: str) -> np.ndarray:
    """When bars stamped at ``ends_ns`` (their ends, int64 ns UTC) started, as IB dates them: the start of
    their clock slot, or their session's open for the short first bar of a session. ``step_ns`` may be any
    length dividing a day (IB's 2-, 3-, 4- and 8-hour sizes count from midnight too)."""
    ends = np.asarray(ends_ns, dtype=np.int64)
    slots = clock_slot_ns(ends - 1, step_ns, exchange_tz_name(calendar))
    opens, _ = session_spans_of(ends, calendar)
    # A bar outside every session (a market simulated around the clock) just starts at its slot.
    return np.where(opens < ends, np.maximum(slots, opens), slots)


def bar_end_at(
    t: pd.Timestamp, step: pd.Timedelta, calendar: str, *, around_clock: bool = False
) -> pd.Timestamp:
    """The end of the ``step`` bar forming at instant ``t`` (always after ``t``).

    In a session: the end of ``t``'s clock slot, clipped at the close. Between sessions: the first bar of
    the next session. ``around_clock``: the market never closes, so just the end of ``t``'s slot in the
    calendar's zone.
    """
    step_ns = int(step.value)
    tz = exchange_tz_name(calendar)
    value = int(t.value)
    if around_clock:
        return pd.Timestamp(int(clock_slot_ns(np.array([value]), step_ns, tz)[0]) + step_ns, tz="UTC")
    _, end, is_open = market_open_span(value, calendar)
    if is_open:
        close = end
    else:  # ``end`` is the next open; its session's first bar
        value = end
        close = int(session_spans_of(np.array([end], dtype=np.int64), calendar)[1][0])
    slot_end = int(clock_slot_ns(np.array([value]), step_ns, tz)[0]) + step_ns
    return pd.Timestamp(min(slot_end, close), tz="UTC")


def check_starts_on_grid(
    starts_ns: np.ndarray, interval: str, step_ns: int, calendar: str, where: str
) -> None:
    """Refuse bars dated by their start unless each start is a clock-slot start or its session's open."""
    starts = np.asarray(starts_ns, dtype=np.int64)
    _raise_off_grid(starts, bar_starts_of_ends(bar_ends_of_starts(starts, step_ns, calendar), step_ns, calendar),
                    interval, "start", where)  # fmt: skip


def check_ends_on_grid(ends_ns: np.ndarray, interval: str, step_ns: int, calendar: str, where: str) -> None:
    """Refuse bars stamped at their end unless each end is a clock-slot end or its session's close."""
    ends = np.asarray(ends_ns, dtype=np.int64)
    _raise_off_grid(ends, bar_ends_of_starts(bar_starts_of_ends(ends, step_ns, calendar), step_ns, calendar),
                    interval, "end", where)  # fmt: skip


def _raise_off_grid(values: np.ndarray, on_grid: np.ndarray, interval: str, edge: str, where: str) -> None:
    off = values != on_grid
    if not off.any():
        return
    first = pd.Timestamp(int(values[off][0]), tz="UTC").tz_convert("America/New_York")
    raise BarGridError(
        f"{where}: {int(off.sum())} {interval} bar(s) do not {edge} on IB's bar grid (first: {first:%Y-%m-%d %H:%M} "
        "New York). IB's intraday bars are clock slots cut by the session (hourly: 09:30-10:00, 10:00-11:00 "
        "... 15:00-16:00); these follow another grid (Yahoo's hourly bars run 09:30-10:30 ...), so a backtest "
        "on them would trade other bars than IB serves live. Use a finer interval (30m, 5m or 1m bars: a "
        f"{interval} request is then aggregated on IB's grid) or IB's own bars (copilot-quant data download)."
    )
