"""Historical bars as HMDS serves them: parse IB's bar sizes, durations and end times, cut the data at the
market clock (no bar that has not closed yet is ever returned) and format bar dates the way TWS does.

IB dates a bar by its **start**: daily bars as ``yyyymmdd``, intraday bars as ``yyyymmdd hh:mm:ss
US/Eastern`` (formatDate 1) or epoch seconds (formatDate 2). The project stamps bars at their end, so the
start is derived from IB's clock grid (:mod:`~copilot_quant.data.bar_grid`): the start of the bar's clock
slot, or the session's open for the short first bar of a session (hourly: 09:30, 10:00, 11:00 …).
Coarser sizes are aggregated from the replayed or stored bars on the same grid.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from copilot_quant.data.bar_grid import bar_starts_of_ends, clock_slot_ns
from copilot_quant.data.calendars import exchange_tz_name, session_bounds, session_open, session_spans_of
from copilot_quant.data.intervals import bar_duration
from copilot_quant.errors import DataError
from copilot_quant.gateway.market import Bar, MarketReplay
from copilot_quant.gateway.messages.errors import Code
from copilot_quant.gateway.messages.historical import HistoricalBar
from copilot_quant.model.ports import IDataFeed

__all__ = [
    "BarSize",
    "HistoryError",
    "HistoryService",
    "format_bar_date",
    "parse_bar_size",
    "parse_duration",
    "parse_end_time",
]

logger = logging.getLogger(__name__)

_EASTERN = ZoneInfo("America/New_York")
_TWS_ZONE = "US/Eastern"

VALID_WHAT_TO_SHOW = frozenset(
    {
        "TRADES",
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "ADJUSTED_LAST",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
        "SCHEDULE",
    }
)
_SERVED_WHAT_TO_SHOW = frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"})
#: Bars of the quote rather than of the trades.
_QUOTE_SIDES = frozenset({"MIDPOINT", "BID", "ASK", "BID_ASK"})
_EPOCH = pd.Timestamp(0, tz="UTC")


class HistoryError(Exception):
    """A historical request that TWS would answer with an error message (``code``: 162 or 321)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class BarSize:
    """An IB bar size: ``kind`` is 'secs', 'intraday', '1d', '1wk' or '1mo'.

    ``source`` is the data interval fetched to build it; ``step`` the bar length for intraday sizes.
    """

    text: str
    kind: str
    source: str | None
    step: pd.Timedelta | None = None


_UNIT = re.compile(
    r"^\s*(\d+)\s*(sec|secs|min|mins|hour|hours|day|days|week|weeks|wk|month|months|M)\s*$", re.I
)
_VALID = {
    "sec": {1, 5, 10, 15, 30},
    "min": {1, 2, 3, 5, 10, 15, 20, 30},
    "hour": {1, 2, 3, 4, 8},
    "day": {1},
    "week": {1},
    "month": {1},
}
# The finest data interval each intraday size is aggregated from (its length must be a multiple).
_MIN_SOURCE = {1: "1m", 2: "2m", 3: "1m", 5: "5m", 10: "5m", 15: "15m", 20: "5m", 30: "30m"}


def parse_bar_size(text: str) -> BarSize:
    """``'5 mins'`` → a :class:`BarSize`; :class:`HistoryError` 321 for sizes IB does not accept."""
    match = _UNIT.match(text or "")
    if match is None:
        raise HistoryError(
            Code.VALIDATION, f"Error validating request.-'bK' : cause - Invalid bar size {text!r}"
        )
    n = int(match.group(1))
    unit = match.group(2).lower()
    unit = {"secs": "sec", "mins": "min", "hours": "hour", "days": "day", "weeks": "week", "wk": "week"}.get(
        unit, unit
    )
    unit = {"months": "month", "m": "month"}.get(unit, unit)
    if n not in _VALID.get(unit, set()):
        raise HistoryError(
            Code.VALIDATION, f"Error validating request.-'bK' : cause - Invalid bar size {text!r}"
        )
    if unit == "sec":
        return BarSize(text, "secs", None, pd.Timedelta(seconds=n))
    if unit == "min":
        return BarSize(text, "intraday", _MIN_SOURCE[n], pd.Timedelta(minutes=n))
    if unit == "hour":
        return BarSize(text, "intraday", "1h", pd.Timedelta(hours=n))
    return BarSize(
        text,
        {"day": "1d", "week": "1wk", "month": "1mo"}[unit],
        {"day": "1d", "week": "1wk", "month": "1mo"}[unit],
    )


_DURATION = re.compile(r"^\s*(\d+)\s*([SDWMY])\s*$")


def parse_duration(text: str) -> tuple[int, str]:
    """``'5 D'`` → ``(5, 'D')``; units S, D, W, M, Y."""
    match = _DURATION.match(text or "")
    if match is None or int(match.group(1)) <= 0:
        raise HistoryError(
            Code.VALIDATION,
            f"Error validating request.-'bK' : cause - Historical data query duration {text!r} is invalid; "
            "use '<integer> <unit>' with unit S, D, W, M or Y.",
        )
    return int(match.group(1)), match.group(2)


def parse_end_time(text: str, now: pd.Timestamp) -> pd.Timestamp:
    """endDateTime as ib_async sends it (``yyyymmdd hh:mm:ss UTC``, other zones, ``yyyymmdd-hh:mm:ss`` in
    UTC, or a bare date/time in exchange time); empty = ``now``. Never later than ``now``."""
    text = (text or "").strip()
    if not text:
        return now
    try:
        if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", text):
            ts = pd.Timestamp(pd.to_datetime(text, format="%Y%m%d-%H:%M:%S")).tz_localize("UTC")
        else:
            parts = text.split(" ")
            zone: str | None = None
            if len(parts) >= 3 or (len(parts) == 2 and not re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", parts[1])):
                zone = parts[-1]
                parts = parts[:-1]
            naive = pd.Timestamp(pd.to_datetime(" ".join(parts)))
            ts = naive.tz_localize(ZoneInfo(zone) if zone else _EASTERN)
            if len(parts) == 1:  # a bare date means the end of that day
                ts = ts + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    except (ValueError, KeyError) as exc:
        raise HistoryError(
            Code.VALIDATION,
            f"Error validating request.-'bK' : cause - invalid end date/time {text!r} ({exc})",
        ) from None
    return min(ts.tz_convert("UTC"), now)


def window_start(end: pd.Timestamp, n: int, unit: str, calendar: str = "XNYS") -> pd.Timestamp:
    """Start of the duration window ending at ``end`` (bars ending after it are included).

    ``D`` counts trading sessions (``'5 D'`` of daily bars is five bars), the others are calendar spans.
    """
    if unit == "S":
        return end - pd.Timedelta(seconds=n)
    if unit == "D":
        opens, _ = session_bounds(end - pd.Timedelta(days=2 * n + 10), end + pd.Timedelta(days=1), calendar)
        opens = opens[opens < end]
        if len(opens) == 0:
            return end - pd.Timedelta(days=n)
        return opens[max(0, len(opens) - n)]
    if unit == "W":
        return end - pd.Timedelta(weeks=n)
    if unit == "M":
        return end - pd.DateOffset(months=n)
    return end - pd.DateOffset(years=n)


def format_bar_date(start: pd.Timestamp, end: pd.Timestamp, kind: str, format_date: int) -> str:
    """A bar's date as TWS writes it (see the module docstring)."""
    if kind == "1d":
        return f"{end.tz_convert(_EASTERN):%Y%m%d}"
    if kind == "1wk":
        day = end.tz_convert(_EASTERN).normalize()
        return f"{day - pd.Timedelta(days=day.weekday()):%Y%m%d}"
    if kind == "1mo":
        return f"{end.tz_convert(_EASTERN):%Y%m01}"
    if format_date == 2:
        return str(int(start.timestamp()))
    return f"{start.tz_convert(_EASTERN):%Y%m%d %H:%M:%S} {_TWS_ZONE}"


def _window_text(ts: pd.Timestamp) -> str:
    return f"{ts.tz_convert(_EASTERN):%Y%m%d %H:%M:%S} {_TWS_ZONE}"


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    start: str
    end: str
    bars: list[HistoricalBar]


class HistoryService:
    """Answers historical requests from the data feed plus the bars the market replay has produced."""

    def __init__(self, feed: IDataFeed, market: MarketReplay, calendar: str = "XNYS") -> None:
        self.feed = feed
        self.market = market
        self.calendar = calendar

    def query(
        self, symbol: str, *, end: str, duration: str, bar_size: str, what: str, format_date: int
    ) -> HistoryAnswer:
        """Bars of ``symbol`` as a reqHistoricalData with these (IB-format) settings returns them."""
        size = parse_bar_size(bar_size)
        n, unit = parse_duration(duration)
        what = what.upper()
        if what not in VALID_WHAT_TO_SHOW:
            raise HistoryError(
                Code.VALIDATION, f"Error validating request.-'bK' : cause - whatToShow {what!r}"
            )
        if format_date not in (1, 2):
            raise HistoryError(
                Code.VALIDATION, f"Error validating request: formatDate must be 1 or 2, not {format_date}"
            )
        if what not in _SERVED_WHAT_TO_SHOW:
            raise HistoryError(
                Code.HMDS, f"HMDS query returned no data: {symbol}@SMART {what} is not simulated"
            )
        now = self.market.now
        end_time = parse_end_time(end, now)
        lo = window_start(end_time, n, unit, self.calendar)
        frame, starts = self.frame(symbol, size, lo, end_time, what=what)
        if frame.empty:
            raise HistoryError(Code.HMDS, f"HMDS query returned no data: {symbol}@SMART {what}")
        bars = _to_bars(
            frame,
            starts,
            kind=size.kind,
            format_date=format_date,
            what=what,
            grid=lambda p: self.market.side_price(p, "TRADES", None, symbol),
        )
        return HistoryAnswer(_window_text(lo), _window_text(end_time), bars)

    def frame(
        self, symbol: str, size: BarSize, lo: pd.Timestamp, end: pd.Timestamp, *, what: str = "TRADES"
    ) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
        """Bars of ``symbol`` ending in ``(lo, end]`` at ``size`` (never after the clock), with their starts.

        ``what`` MIDPOINT, BID or ASK: each source bar's prices are first turned into that side of its
        quote, with the bar's own spread (:meth:`MarketReplay.frame_widths`, the widths the market quoted
        it at), then cut and aggregated — a BID bar of 5 minutes is the bid's range over its minutes."""
        if size.source is None:
            raise HistoryError(
                Code.HMDS, f"HMDS query returned no data: {symbol}@SMART has no bars under 1 min"
            )
        end = min(end, self.market.now)
        source = size.source
        replay = self.market.interval
        if (
            size.kind == "intraday"
            and size.step is not None
            and replay != "1d"
            and size.step % _interval_length(replay) == pd.Timedelta(0)
        ):
            # Serve intraday sizes from the replayed stream so history and live prices agree.
            source = replay
        if source == replay:
            data = self.market.replayed_frame(symbol)
        else:
            try:
                data = self.feed.get_historical_data(symbol, lo, end, source)
            except DataError as exc:
                raise HistoryError(
                    Code.HMDS, f"HMDS query returned no data: {symbol}@SMART ({exc})"
                ) from None
        if what in _QUOTE_SIDES and not data.empty:
            data = self._quoted(data, what, symbol)
        data = data[(data.index > lo) & (data.index <= end)]
        if data.empty:
            return data, pd.DatetimeIndex([], tz="UTC")
        starts = self._starts(pd.DatetimeIndex(data.index), source)
        if size.kind == "intraday" and size.step is not None and size.step != _interval_length(source):
            data, starts = _aggregate(data, size.step, self.calendar)
        return data, starts

    def _quoted(self, data: pd.DataFrame, what: str, symbol: str) -> pd.DataFrame:
        """``data`` (trade bars of ``symbol``, oldest first) as ``what`` bars (:meth:`MarketReplay.quoted_bar`),
        each at its own spread, on ``symbol``'s own tick grid."""
        widths = self.market.frame_widths(data, symbol)
        values = data[["Open", "High", "Low", "Close"]].to_numpy(dtype=float)
        rows = []
        for (o, h, lo, c), width in zip(values, widths, strict=True):
            bar = Bar(symbol, _EPOCH, _EPOCH, float(o), float(h), float(lo), float(c), 0.0, int(width))
            shown = self.market.quoted_bar(bar, what)
            rows.append((shown.open, shown.high, shown.low, shown.close))
        out = data.copy()
        out[["Open", "High", "Low", "Close"]] = np.array(rows, dtype=float).reshape(-1, 4)
        return out

    def _starts(self, ends: pd.DatetimeIndex, interval: str) -> pd.DatetimeIndex:
        if interval in ("1d", "1wk", "1mo"):
            return ends
        values = bar_starts_of_ends(ends.as_unit("ns").asi8, _interval_length(interval).value, self.calendar)
        return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")

    def head_timestamp(self, symbol: str, format_date: int) -> str:
        """The start of the earliest bar available for ``symbol`` (its first daily session)."""
        try:
            daily = self.feed.get_historical_data(symbol, None, self.market.now, "1d")
        except DataError as exc:
            raise HistoryError(Code.HMDS, f"HMDS query returned no data: {symbol}@SMART ({exc})") from None
        if daily.empty:
            raise HistoryError(Code.HMDS, f"HMDS query returned no data: {symbol}@SMART")
        first = daily.index[0]
        start = first
        with contextlib.suppress(DataError):
            start = session_open(first.tz_convert(_EASTERN).normalize().tz_localize(None), self.calendar)
        if format_date == 2:
            return str(int(start.timestamp()))
        return f"{start.tz_convert(_EASTERN):%Y%m%d %H:%M:%S} {_TWS_ZONE}"

    def update_bar(
        self, bar: Bar, size: BarSize, forming: HistoricalBar | None, format_date: int
    ) -> HistoricalBar:
        """The keepUpToDate bar after ``bar`` happened: a new bar, or ``forming`` extended when ``bar`` falls
        into the same bucket of ``size``."""
        label = self.bucket_label(bar, size, format_date)
        if forming is not None and forming.date == label:
            volume = forming.volume + bar.volume
            return HistoricalBar(
                label,
                forming.open,
                max(forming.high, bar.high),
                min(forming.low, bar.low),
                bar.close,
                volume,
                round((forming.wap * forming.volume + _wap(bar) * bar.volume) / volume, 6)
                if volume
                else bar.close,
                forming.count + _count(bar.volume),
            )
        return HistoricalBar(
            label, bar.open, bar.high, bar.low, bar.close, bar.volume, _wap(bar), _count(bar.volume)
        )

    def bucket_label(self, bar: Bar, size: BarSize, format_date: int) -> str:
        if size.kind in ("1d", "1wk", "1mo"):
            return format_bar_date(bar.start, bar.end, size.kind, format_date)
        step = size.step or pd.Timedelta(minutes=1)
        # The bucket of ``size`` holding the bar: its clock slot, cut at the session's open (data/bar_grid.py).
        start = bar_starts_of_ends(np.array([bar.end.value], dtype=np.int64), step.value, self.calendar)[0]
        return format_bar_date(pd.Timestamp(int(start), tz="UTC"), bar.end, "intraday", format_date)


def _interval_length(interval: str) -> pd.Timedelta:
    return bar_duration(interval)


def _aggregate(
    data: pd.DataFrame, step: pd.Timedelta, calendar: str
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Group bars into IB's ``step`` buckets: clock slots (data/bar_grid.py), never across two sessions;
    each bucket is dated as IB dates it, by its slot's start or the session's open (a short first bucket)."""
    ends = pd.DatetimeIndex(data.index).as_unit("ns").asi8
    slot = clock_slot_ns(ends - 1, step.value, exchange_tz_name(calendar))
    _, session = session_spans_of(ends, calendar)
    change = (slot[1:] != slot[:-1]) | (session[1:] != session[:-1])
    bucket = np.cumsum(np.r_[0, change])
    first = np.r_[0, np.flatnonzero(change) + 1]
    grouped = data.groupby(bucket)
    out = pd.DataFrame(
        {
            "Open": grouped["Open"].first(),
            "High": grouped["High"].max(),
            "Low": grouped["Low"].min(),
            "Close": grouped["Close"].last(),
            "Volume": grouped["Volume"].sum(),
        }
    )
    last = np.r_[first[1:] - 1, len(ends) - 1]
    out.index = _utc_index(pd.Index(ends[last].view("datetime64[ns]")))
    starts = bar_starts_of_ends(ends[first], step.value, calendar)
    return out, _utc_index(pd.Index(starts.view("datetime64[ns]")))


def _utc_index(index: pd.Index) -> pd.DatetimeIndex:
    stamps = pd.DatetimeIndex(index)
    return stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")


def _wap(bar: Bar) -> float:
    return round((bar.high + bar.low + bar.close) / 3.0, 6)


def _count(volume: float) -> int:
    return max(1, int(volume // 100)) if math.isfinite(volume) else 1


def _to_bars(
    frame: pd.DataFrame,
    starts: pd.DatetimeIndex,
    *,
    kind: str,
    format_date: int,
    what: str,
    grid: Callable[[float], float],
) -> list[HistoricalBar]:
    values = frame[["Open", "High", "Low", "Close", "Volume"]].to_numpy(dtype=float)
    quote_bars = what in ("MIDPOINT", "BID", "ASK", "BID_ASK")
    out: list[HistoricalBar] = []
    for start, end, row in zip(starts, frame.index, values, strict=True):
        # on the symbol's tick grid (``grid``), as IB prints (quote sides are already, a midpoint on the
        # half-tick)
        o, h, lo, c = (float(x) if what in _QUOTE_SIDES else grid(float(x)) for x in row[:4])
        v = round(float(row[4]), 6)
        if not np.isfinite([o, h, lo, c]).all():
            continue
        date = format_bar_date(start, end, kind, format_date)
        if quote_bars:
            out.append(HistoricalBar(date, o, h, lo, c, -1, -1.0, -1))
        else:
            volume = v if math.isfinite(v) else 0.0
            out.append(HistoricalBar(date, o, h, lo, c, volume, round((h + lo + c) / 3.0, 6), _count(volume)))
    return out
