"""Exchange trading sessions from ``exchange_calendars``: opens, closes, holidays, early closes.

Everything returned is tz-aware UTC (the project's internal time); inputs follow :mod:`copilot_quant.data.dates`
(naive values are read in the exchange's zone, ``None`` means now). A session is open on the half-open
interval ``[open, close)``: at 16:00:00 New York time the NYSE is closed.

``exchange_calendars`` builds a calendar from 2006 by default; we build each one once from 1990 to ten years
ahead and cache it, because building costs ~100 ms and every provider needs it.

Use :class:`MarketHours` for the common questions::

    hours = MarketHours()            # NYSE
    hours.is_open()                  # now, holidays and early closes included
    hours.next_open('2024-12-24 14:00')   # 2024-12-26 14:30 UTC (early close at 13:00 on the 24th)

Futures and forex have their own sessions (:mod:`~copilot_quant.data.calendar_rules`): ``CME_GLOBEX``
(17:00–16:00 Chicago with the daily maintenance break) and ``FX`` (IDEALPRO: 17:15–17:00 New York, Sunday
evening to Friday).
:func:`calendar_for` gives any instrument its hours, so every layer asks the same question the same way::

    calendar_for(registry.resolve("MESZ6")).is_open("2026-12-07 16:30")   # False: maintenance break (CT)
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import numpy as np
import pandas as pd

from copilot_quant.data.calendar_rules import CUSTOM_CALENDARS
from copilot_quant.data.dates import EXCHANGE_TZ, DateLike, resolve_range, to_utc
from copilot_quant.errors import ConfigError, DataError
from copilot_quant.model.instruments import Instrument

__all__ = [
    "DEFAULT_CALENDAR",
    "MarketHours",
    "calendar_for",
    "closing_session_of",
    "daily_close_stamps",
    "exchange_timezone",
    "exchange_tz_name",
    "get_calendar",
    "is_market_open",
    "is_trading_day",
    "market_open_span",
    "next_session_close",
    "next_session_open",
    "previous_session_close",
    "session_bounds",
    "session_close",
    "session_close_ns",
    "session_closes",
    "session_closing_after",
    "session_open",
    "session_spans_of",
    "sessions_by_day",
    "whole_session_range",
]

logger = logging.getLogger(__name__)

#: The NYSE, the exchange every US stock's regular session follows.
DEFAULT_CALENDAR = "XNYS"
_FIRST_DAY = "1990-01-01"
_YEARS_AHEAD = 10


@contextlib.contextmanager
def _quiet_pandas_deprecations() -> Iterator[None]:
    """exchange_calendars 4.13 uses pandas APIs that pandas 3.1 deprecates; that is not our users' concern."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@functools.lru_cache(maxsize=16)
def get_calendar(name: str = DEFAULT_CALENDAR) -> xc.ExchangeCalendar:
    """The (cached) exchange calendar ``name`` covering 1990 to ten years ahead: an ISO MIC such as
    ``'XNYS'``, or one of this project's ``'CME_GLOBEX'`` and ``'FX'``."""
    last_day = f"{datetime.now(UTC).year + _YEARS_AHEAD}-12-31"
    try:
        with _quiet_pandas_deprecations():
            custom = CUSTOM_CALENDARS.get(name)
            if custom is not None:
                return custom(start=_FIRST_DAY, end=last_day)
            return xc.get_calendar(name, start=_FIRST_DAY, end=last_day)
    except xc.errors.InvalidCalendarName as exc:
        raise ConfigError(
            f"Unknown exchange calendar {name!r}; use an ISO MIC code such as 'XNYS' (NYSE), 'XNAS', 'XLON', "
            f"or {', '.join(repr(n) for n in CUSTOM_CALENDARS)}."
        ) from exc


_DAY_NS = 86_400_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=16)
def _bounds(name: str) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Session labels plus their UTC opens and closes as int64 ns arrays (for fast searchsorted)."""
    cal = get_calendar(name)
    opens = pd.DatetimeIndex(cal.opens).tz_convert("UTC").as_unit("ns")
    closes = pd.DatetimeIndex(cal.closes).tz_convert("UTC").as_unit("ns")
    return cal.sessions, opens.as_unit("ns").asi8.copy(), closes.as_unit("ns").asi8.copy()


def exchange_timezone(calendar: str = DEFAULT_CALENDAR) -> tzinfo:
    """The time zone the exchange keeps its hours in (America/New_York for the NYSE)."""
    return ZoneInfo(str(get_calendar(calendar).tz))


def exchange_tz_name(calendar: str = DEFAULT_CALENDAR) -> str:
    """IANA name of the exchange's time zone (``'America/New_York'`` for the NYSE)."""
    return EXCHANGE_TZ if calendar == DEFAULT_CALENDAR else str(get_calendar(calendar).tz)


def _instant(ts: DateLike | None, calendar: str) -> pd.Timestamp:
    """``ts`` as UTC (naive → exchange zone, ``None`` → now), checked against the calendar's span."""
    value = pd.Timestamp.now(tz="UTC") if ts is None else to_utc(ts, exchange_tz_name(calendar))
    _, opens, closes = _bounds(calendar)
    if value.value < opens[0] or value.value > closes[-1]:
        first = pd.Timestamp(opens[0], tz="UTC").date()
        last = pd.Timestamp(closes[-1], tz="UTC").date()
        raise DataError(
            f"{value} is outside the {calendar} calendar ({first} to {last}); pick a time inside it."
        )
    return value


def _label(day: DateLike, calendar: str) -> pd.Timestamp:
    """The calendar date meant by ``day`` (an aware value is converted to the exchange's zone first)."""
    ts = pd.Timestamp(day)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(exchange_tz_name(calendar)).tz_localize(None)
    return ts.normalize()


def _session_index(day: DateLike, calendar: str) -> int:
    sessions, _, _ = _bounds(calendar)
    label = _label(day, calendar)
    i = int(sessions.searchsorted(label))
    if i >= len(sessions) or sessions[i] != label:
        following = sessions[i].date() if i < len(sessions) else "none"
        raise DataError(
            f"{label.date()} is not a {calendar} trading session (weekend or holiday); next session: {following}."
        )
    return i


def is_trading_day(day: DateLike | None = None, calendar: str = DEFAULT_CALENDAR) -> bool:
    """Whether the exchange holds a session on ``day`` (``None``: today in the exchange's zone)."""
    if day is None:
        day = pd.Timestamp.now(tz=exchange_tz_name(calendar))
    sessions, _, _ = _bounds(calendar)
    label = _label(day, calendar)
    i = int(sessions.searchsorted(label))
    return bool(i < len(sessions) and sessions[i] == label)


def session_close(day: DateLike, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """UTC close of the session held on ``day`` (18:00 UTC on NYSE early-close days in winter)."""
    return pd.Timestamp(_session_ns(day, calendar)[1], tz="UTC")


def session_close_ns(day: DateLike, calendar: str = DEFAULT_CALENDAR) -> int:
    """:func:`session_close` as int64 nanoseconds since the epoch (UTC): a dict lookup for a plain ``date``."""
    return _session_ns(day, calendar)[1]


def session_closing_after(ns: int, calendar: str = DEFAULT_CALENDAR) -> tuple[date, int] | None:
    """The first session closing strictly after ``ns`` (int64 ns UTC): its date and its close (int64 ns);
    None past the calendar's end. No pandas: for a caller on a latency-sensitive thread."""
    _, _, closes = _bounds(calendar)
    i = int(np.searchsorted(closes, ns, side="right"))
    if i >= len(closes):
        return None
    return date.fromordinal(int(_session_ordinals(calendar)[i])), int(closes[i])


@functools.lru_cache(maxsize=16)
def _session_ordinals(calendar: str) -> np.ndarray:
    """Each session's date as a proleptic Gregorian ordinal, in the order of :func:`_bounds`."""
    sessions, _, _ = _bounds(calendar)
    result: np.ndarray = pd.DatetimeIndex(sessions).as_unit("ns").asi8 // _DAY_NS + _EPOCH_ORDINAL
    return result


def session_open(day: DateLike, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """UTC open of the session held on ``day``."""
    return pd.Timestamp(_session_ns(day, calendar)[0], tz="UTC")


def sessions_by_day(calendar: str = DEFAULT_CALENDAR) -> dict[date, tuple[int, int]]:
    """Every session of ``calendar``: its date → its UTC open and close (int64 ns), built once per calendar
    (a few ms; call it ahead to keep that off a latency-sensitive path)."""
    return _sessions_by_day(calendar)


@functools.lru_cache(maxsize=16)
def _sessions_by_day(calendar: str) -> dict[date, tuple[int, int]]:
    sessions, opens, closes = _bounds(calendar)
    # session labels are midnight-naive dates: whole days since the epoch, to ordinals (fast, exact)
    days = pd.DatetimeIndex(sessions).as_unit("ns").asi8 // _DAY_NS + _EPOCH_ORDINAL
    return {date.fromordinal(int(d)): (int(o), int(c)) for d, o, c in zip(days, opens, closes, strict=True)}


def _session_ns(day: DateLike, calendar: str) -> tuple[int, int]:
    """The open and close (ns UTC) of the session held on ``day``; a named :class:`DataError` if none is."""
    key = day if type(day) is date else _label(day, calendar).date()
    bounds = _sessions_by_day(calendar).get(key)
    if bounds is None:
        i = _session_index(day, calendar)  # no session that day: raises the error naming the next one
        _, opens, closes = _bounds(calendar)
        bounds = (int(opens[i]), int(closes[i]))
    return bounds


def _session_slice(start: DateLike | None, end: DateLike | None, calendar: str) -> slice:
    """Index range of the sessions whose close lies in the inclusive ``[start, end]``."""
    lo, hi = resolve_range(start, end, exchange_tz_name(calendar))
    _, _, closes = _bounds(calendar)
    i = 0 if lo is None else int(np.searchsorted(closes, lo.value, side="left"))
    j = len(closes) if hi is None else int(np.searchsorted(closes, hi.value, side="right"))
    return slice(i, j)


def session_closes(
    start: DateLike | None, end: DateLike | None, calendar: str = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    """UTC closes of every session closing in ``[start, end]`` (dates only: those days' sessions included)."""
    _, _, closes = _bounds(calendar)
    return pd.DatetimeIndex(closes[_session_slice(start, end, calendar)]).tz_localize("UTC")


def session_bounds(
    start: DateLike | None, end: DateLike | None, calendar: str = DEFAULT_CALENDAR
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """``(opens, closes)`` in UTC of the sessions closing in ``[start, end]``."""
    _, opens, closes = _bounds(calendar)
    window = _session_slice(start, end, calendar)
    return (
        pd.DatetimeIndex(opens[window]).tz_localize("UTC"),
        pd.DatetimeIndex(closes[window]).tz_localize("UTC"),
    )


def whole_session_range(
    lo: pd.Timestamp | None, hi: pd.Timestamp | None, calendar: str = DEFAULT_CALENDAR, tz: str = EXCHANGE_TZ
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Intraday bounds from :func:`~copilot_quant.data.dates.resolve_range` that never split a session.

    The rule: **a date range holds whole trading sessions, those of its dates.** A bound that is a day's edge
    in ``tz`` (``lo`` at midnight, ``hi`` at the day's last nanosecond: a date the user gave) and falls inside
    a session of ``calendar`` is moved to that session's open — back for ``lo`` (the session is the start
    date's and comes whole), back for ``hi`` (it is the next date's and stays out). A session whose evening
    opens the day before its date (CME Globex: Sunday 17:00 Chicago for Monday; IDEALPRO forex: 17:15 New
    York) is thus in a range exactly when its daily bar is — the one IB dates by that trade date — and the
    minute, hourly and daily bars of a range cover the same sessions. A bound between sessions (always, for
    the NYSE), or an explicit time of day, is kept as it is: ``end='2015-01-05 02:00'`` gives the bars up to
    02:00, as IB's ``endDateTime`` does.
    """
    _, opens, closes = _bounds(calendar)
    if lo is not None and _is_midnight(lo, tz):
        i = int(np.searchsorted(opens, lo.value, side="left")) - 1  # the last session opening before lo
        if 0 <= i < len(opens) and lo.value <= closes[i]:
            lo = pd.Timestamp(opens[i] + 1, tz="UTC")  # its bars are stamped in (open, close]
    if hi is not None and _is_midnight(hi + pd.Timedelta(1, "ns"), tz):
        i = int(np.searchsorted(opens, hi.value, side="left")) - 1
        if 0 <= i < len(opens) and hi.value < closes[i]:
            hi = pd.Timestamp(opens[i], tz="UTC")
    return lo, hi


def _is_midnight(ts: pd.Timestamp, tz: str) -> bool:
    return bool(ts == ts.tz_convert(tz).normalize())


def is_market_open(ts: DateLike | None = None, calendar: str = DEFAULT_CALENDAR) -> bool:
    """Whether the regular session is open at ``ts`` (naive: exchange time; ``None``: now).

    Weekends, holidays and early closes come from the exchange calendar; the interval is ``[open, close)``.
    """
    value = _instant(ts, calendar).value
    _, opens, closes = _bounds(calendar)
    i = int(np.searchsorted(opens, value, side="right")) - 1
    return bool(i >= 0 and value < closes[i])


def market_open_span(ns: int, calendar: str = DEFAULT_CALENDAR) -> tuple[int, int, bool]:
    """``(start, end, open)``: :func:`is_market_open` is ``open`` at every instant of ``[start, end)`` (int64 ns
    UTC), the span around ``ns`` up to the next open or close — for a caller asking at every bar, which then
    needs no pandas until the clock leaves the span. Outside the calendar: :class:`DataError`, as there.

    No pandas or numpy here either: the live engine asks on a bar's way to its orders (the risk check's "is
    data expected"), once per session for daily bars, on a CPU gone cold since the bar before — where a
    Timestamp and its time-zone conversion cost ~100 µs and even a numpy search ~40, a bisect of a list ~10."""
    opens, closes = _bound_lists(calendar)
    value = int(ns)
    if not opens[0] <= value <= closes[-1]:
        _instant(pd.Timestamp(value, tz="UTC"), calendar)  # raises its DataError, worded as everywhere
    i = bisect.bisect_right(opens, value) - 1
    if i >= 0 and value < closes[i]:
        return opens[i], closes[i], True
    start = closes[i] if i >= 0 else opens[0]
    end = opens[i + 1] if i + 1 < len(opens) else closes[-1] + 1  # past the calendar: _instant
    return start, end, False


@functools.lru_cache(maxsize=4)
def _bound_lists(name: str) -> tuple[list[int], list[int]]:
    """:func:`_bounds`' opens and closes as lists of ints, for :func:`market_open_span`'s bisect."""
    _, opens, closes = _bounds(name)
    return opens.tolist(), closes.tolist()


def next_session_open(ts: DateLike | None = None, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """The first session open strictly after ``ts`` (UTC)."""
    value = _instant(ts, calendar).value
    _, opens, _ = _bounds(calendar)
    i = int(np.searchsorted(opens, value, side="right"))
    if i >= len(opens):
        raise DataError(f"No {calendar} session opens after {ts}; the calendar ends before that.")
    return pd.Timestamp(opens[i], tz="UTC")


def next_session_close(ts: DateLike | None = None, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """The first session close strictly after ``ts`` (UTC): today's close while the market is open."""
    value = _instant(ts, calendar).value
    _, _, closes = _bounds(calendar)
    i = int(np.searchsorted(closes, value, side="right"))
    if i >= len(closes):
        raise DataError(f"No {calendar} session closes after {ts}; the calendar ends before that.")
    return pd.Timestamp(closes[i], tz="UTC")


def previous_session_close(ts: DateLike | None = None, calendar: str = DEFAULT_CALENDAR) -> pd.Timestamp:
    """The last session close at or before ``ts`` (UTC): when the latest complete daily bar became known."""
    value = _instant(ts, calendar).value
    _, _, closes = _bounds(calendar)
    i = int(np.searchsorted(closes, value, side="right")) - 1
    if i < 0:
        raise DataError(f"No {calendar} session closed at or before {ts}; the calendar starts after that.")
    return pd.Timestamp(closes[i], tz="UTC")


def closing_session_of(instants: pd.DatetimeIndex, calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """For each aware instant, the close of the session it belongs to: the first close at or after it.

    A daily bar (stamped at its close) maps to itself; an intraday bar to its session's close; an instant
    between sessions to the next session's close. This is when a DAY order working at that instant expires.
    """
    if instants.tz is None:
        raise DataError("closing_session_of needs tz-aware instants; localize them first.")
    _, _, closes = _bounds(calendar)
    values = instants.tz_convert("UTC").as_unit("ns").asi8
    pos = np.searchsorted(closes, values, side="left")
    if len(pos) and pos.max() >= len(closes):
        raise DataError(f"Some instants are after the last {calendar} session in the calendar.")
    return pd.DatetimeIndex(closes[pos]).tz_localize("UTC")


def session_spans_of(
    instants_ns: np.ndarray, calendar: str = DEFAULT_CALENDAR
) -> tuple[np.ndarray, np.ndarray]:
    """``(opens, closes)`` (int64 ns UTC) of the session each instant (int64 ns UTC) belongs to, as
    :func:`closing_session_of` picks it: the first session closing at or after the instant."""
    _, opens, closes = _bounds(calendar)
    pos = np.searchsorted(closes, instants_ns, side="left")
    if len(pos) and pos.max() >= len(closes):
        raise DataError(f"Some instants are after the last {calendar} session in the calendar.")
    return opens[pos], closes[pos]


def daily_close_stamps(days: pd.DatetimeIndex, calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """Map calendar dates (naive, or aware and converted to the exchange zone) to their session closes.

    A date the calendar has no session for keeps a 16:00 exchange-time stamp and is logged, so a stray
    row in a vendor file is visible instead of vanishing.
    """
    if len(days) == 0:
        return pd.DatetimeIndex([], tz="UTC").as_unit("ns")
    tz = exchange_tz_name(calendar)
    labels = days.tz_convert(tz).tz_localize(None) if days.tz is not None else days
    labels = labels.normalize()
    sessions, _, closes = _bounds(calendar)
    pos = sessions.searchsorted(labels)
    pos_clipped = np.minimum(pos, len(sessions) - 1)
    hit = (pos < len(sessions)) & (sessions[pos_clipped] == labels)
    out = np.where(hit, closes[pos_clipped], 0)
    if not hit.all():
        missing = labels[~hit]
        fallback = (missing + pd.Timedelta(hours=16)).tz_localize(tz).tz_convert("UTC")
        out[~hit] = fallback.as_unit("ns").asi8
        logger.warning(
            "%d date(s) are not %s sessions (first: %s); stamped at 16:00 %s.",
            len(missing),
            calendar,
            missing[0].date(),
            tz,
        )
    return pd.DatetimeIndex(out).tz_localize("UTC")


@dataclass(frozen=True, slots=True)
class MarketHours:
    """Timezone-correct market-hours questions for one exchange (holidays and early closes included).

    All methods take an optional time (naive: exchange time; ``None``: now) and return UTC timestamps.
    """

    calendar: str = DEFAULT_CALENDAR

    @property
    def timezone(self) -> tzinfo:
        """The exchange's time zone."""
        return exchange_timezone(self.calendar)

    def is_open(self, ts: DateLike | None = None) -> bool:
        """Whether the regular session is open at ``ts``."""
        return is_market_open(ts, self.calendar)

    def next_open(self, ts: DateLike | None = None) -> pd.Timestamp:
        """The next session open strictly after ``ts``."""
        return next_session_open(ts, self.calendar)

    def next_close(self, ts: DateLike | None = None) -> pd.Timestamp:
        """The next session close strictly after ``ts``."""
        return next_session_close(ts, self.calendar)

    def is_trading_day(self, day: DateLike | None = None) -> bool:
        """Whether ``day`` (default today) has a session."""
        return is_trading_day(day, self.calendar)

    def session_close(self, day: DateLike) -> pd.Timestamp:
        """The close of ``day``'s session."""
        return session_close(day, self.calendar)

    def session_open(self, day: DateLike) -> pd.Timestamp:
        """The open of ``day``'s session."""
        return session_open(day, self.calendar)


def calendar_for(instrument: Instrument) -> MarketHours:
    """The trading hours of ``instrument``: NYSE for stocks, CME Globex for futures, 24/5 for forex pairs
    (whatever :attr:`Instrument.calendar` names)."""
    return MarketHours(instrument.calendar)
