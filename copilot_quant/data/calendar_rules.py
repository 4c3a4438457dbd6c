"""Session rules for futures and forex that ``exchange_calendars`` does not ship as such.

Both are thin subclasses of ``exchange_calendars`` classes, so holidays, early closes, DST and every query
(``is_open_on_minute``, ``next_open`` …) still come from the library; only the hours differ.

``CME_GLOBEX`` — CME Group's Globex futures (ES, MES, NQ, CL, GC, ZN …): a session runs from 17:00
Chicago time on the previous day to 16:00, Sunday to Friday; the hour 16:00–17:00 every weekday is the
daily maintenance break, i.e. the gap between two sessions. ``exchange_calendars``' own ``CMES`` calendar
runs 17:00 to 17:00 (no break); its holidays (New Year, Good Friday, Christmas) and its 12:00 halts on US
holidays (Thanksgiving, July 4 …) are kept as they are.

``FX`` — spot forex on IB's IDEALPRO, whose published hours are "Sunday – Friday: 17:15 – 17:00 ET"
(interactivebrokers.com ``/en/index.php?f=1562&p=global``): the Monday session opens Sunday 17:15 New York
time and the Friday session closes Friday 17:00; between two weekdays the 17:00–17:15 quarter hour around
the forex day's roll is closed. No holidays: interbank forex keeps quoting on US holidays, if thinly.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

from exchange_calendars.exchange_calendar import ExchangeCalendar, HolidayCalendar
from exchange_calendars.exchange_calendar_cmes import CMESExchangeCalendar

__all__ = ["CUSTOM_CALENDARS", "ForexCalendar", "GlobexCalendar"]


class GlobexCalendar(CMESExchangeCalendar):
    """CME Globex: 17:00 (previous day) to 16:00 Chicago; the 16:00–17:00 maintenance break between sessions."""

    name = "CME_GLOBEX"
    close_times = ((None, time(16)),)


class ForexCalendar(ExchangeCalendar):
    """Spot forex on IDEALPRO: 17:15 (previous day) to 17:00 New York, Sunday evening to Friday."""

    name = "FX"
    tz = ZoneInfo("America/New_York")
    open_times = ((None, time(17, 15)),)
    close_times = ((None, time(17)),)

    @property
    def open_offset(self) -> int:
        return -1  # a session opens at 17:15 the day before its label

    @property
    def regular_holidays(self) -> HolidayCalendar:
        return HolidayCalendar([])


#: Calendar names resolved here before ``exchange_calendars``' own names.
CUSTOM_CALENDARS: dict[str, type[ExchangeCalendar]] = {
    GlobexCalendar.name: GlobexCalendar,
    ForexCalendar.name: ForexCalendar,
}
