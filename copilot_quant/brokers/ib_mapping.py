"""Translation tables between the project's vocabulary and IB's: intervals, bars, orders, statuses.

IB stays at this edge: nothing outside ``copilot_quant.brokers`` sees an ib_async object or a camelCase
name. Bars coming back from IB are restamped to the project convention (see
:mod:`copilot_quant.backtest.interfaces`):

* IB sends daily bars as *dates*; they are stamped at that session's close in UTC (16:00 New York, 13:00
  on early-close days), the moment the bar became known.
* IB stamps intraday bars at their *start*; they are moved to their *end* (start + bar length, clipped at
  the session close for a short last bar).
* Weekly and monthly bars are built from IB's daily bars by the same aggregation the backtest uses, so
  their stamps match the backtest exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from ib_async import LimitOrder, MarketOrder, StopLimitOrder, StopOrder
from ib_async import Order as IBOrder

from copilot_quant.backtest.interfaces import BAR_COLUMNS, SUPPORTED_INTERVALS
from copilot_quant.backtest.orders import Order, OrderStatus, OrderType, TimeInForce
from copilot_quant.data.bar_grid import bar_ends_of_starts
from copilot_quant.data.calendars import DEFAULT_CALENDAR, daily_close_stamps
from copilot_quant.data.intervals import INTRADAY_INTERVALS, bar_duration
from copilot_quant.data.resample import resample_daily
from copilot_quant.errors import DataError

__all__ = [
    "IB_BAR_SIZE",
    "bar_stamps",
    "bar_values",
    "bars_to_frame",
    "bracket_links",
    "duration_string",
    "empty_bars",
    "ib_status",
    "to_ib_order",
]

#: Project interval -> the IB bar size requested for it (weekly/monthly are aggregated from daily bars).
IB_BAR_SIZE: dict[str, str] = {
    "1m": "1 min",
    "2m": "2 mins",
    "5m": "5 mins",
    "15m": "15 mins",
    "30m": "30 mins",
    "1h": "1 hour",
    "1d": "1 day",
    "1wk": "1 day",
    "1mo": "1 day",
}

#: IB order status -> project status (partial fills are derived from the filled quantity).
_IB_STATUS: dict[str, OrderStatus] = {
    "PendingSubmit": OrderStatus.SUBMITTED,
    "ApiPending": OrderStatus.SUBMITTED,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "ValidationError": OrderStatus.SUBMITTED,  # a warning on a live order: it is still working
    "PendingCancel": OrderStatus.SUBMITTED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
    # Not final: a held order (a short sale waiting for a locate, whyHeld=locate) can be reactivated and
    # fill. An order IB really refused also gets an error code, which rejects it.
    "Inactive": OrderStatus.SUBMITTED,
}

_TIF = {
    TimeInForce.DAY: "DAY",
    TimeInForce.GTC: "GTC",
    TimeInForce.OPG: "OPG",
    TimeInForce.IOC: "IOC",
    TimeInForce.GTD: "GTD",
}
_ACTION = {"buy": "BUY", "sell": "SELL"}


def check_ib_interval(interval: str) -> str:
    """``interval`` if IB has a bar size for it, else :class:`DataError` listing the ones it has.

    Stricter than :func:`copilot_quant.data.validation.check_supported_interval`, which accepts every
    interval the offline feeds can resample to.
    """
    if interval not in IB_BAR_SIZE or interval not in SUPPORTED_INTERVALS:
        raise DataError(f"unsupported interval {interval!r} for IB data; use one of {', '.join(IB_BAR_SIZE)}")
    return interval


# The former name, still imported by the live engine, the live data adapter and the live CLI.
check_interval = check_ib_interval


def duration_string(start: pd.Timestamp | None, end: pd.Timestamp, interval: str) -> str:
    """IB ``durationStr`` covering ``[start, end]`` (a default lookback when ``start`` is None)."""
    if start is None:
        return "2 D" if interval in INTRADAY_INTERVALS else "1 Y"
    span = max(end - start, pd.Timedelta(seconds=1))
    if interval in INTRADAY_INTERVALS and span <= pd.Timedelta(days=1):
        return f"{max(60, math.ceil(span.total_seconds()) + 60)} S"
    days = math.ceil(span / pd.Timedelta(days=1)) + 1
    if days <= 365:
        return f"{days} D"
    return f"{math.ceil(days / 365)} Y"


def empty_bars() -> pd.DataFrame:
    """A bar frame with no rows, the right columns and a UTC index."""
    return pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in BAR_COLUMNS},
        index=pd.DatetimeIndex([], tz="UTC", name="timestamp").as_unit("ns"),
    )


def _stamp_intraday(
    starts: Iterable[Any], interval: str, calendar: str = DEFAULT_CALENDAR
) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex([pd.Timestamp(s) for s in starts])
    if index.tz is None:  # formatDate=2 gives UTC; anything naive is read as UTC too
        index = index.tz_localize("UTC")
    index = index.tz_convert("UTC").as_unit("ns")
    # IB's clock grid: the 09:30 hourly bar ends at 10:00, a session's last bar at the close.
    ends = bar_ends_of_starts(index.asi8, bar_duration(interval).value, calendar)
    return pd.DatetimeIndex(ends.view("datetime64[ns]")).tz_localize("UTC")


def bar_stamps(dates: Iterable[Any], interval: str, calendar: str = DEFAULT_CALENDAR) -> pd.DatetimeIndex:
    """The project stamps (UTC close times) of IB bar ``date`` fields: session closes for daily dates (also
    the daily rows weekly/monthly bars are built from), the end of IB's clock slot (cut at the close) intraday.
    ``calendar`` is the instrument's (a future's CME Globex close, a pair's 17:00 New York), so live bars
    carry the stamps the backtest's data has."""
    labels = list(dates)
    if interval in INTRADAY_INTERVALS:
        return _stamp_intraday(labels, interval, calendar)
    days = pd.DatetimeIndex([pd.Timestamp(d.date() if isinstance(d, datetime) else d) for d in labels])
    return daily_close_stamps(days, calendar)


def bar_values(bar: Any) -> tuple[float, float, float, float, float]:
    """``(Open, High, Low, Close, Volume)`` of one IB bar, as floats (a missing volume is NaN)."""
    return float(bar.open), float(bar.high), float(bar.low), float(bar.close), _volume(bar.volume)


def bars_to_frame(bars: Iterable[Any], interval: str, calendar: str = DEFAULT_CALENDAR) -> pd.DataFrame:
    """ib_async ``BarData`` (or anything with ``date, open, high, low, close, volume``) -> project frame.

    NaN or unset volumes are kept as NaN (a bar is never dropped for a missing size).
    """
    rows = list(bars)
    if not rows:
        return empty_bars()
    data = {
        "Open": [float(r.open) for r in rows],
        "High": [float(r.high) for r in rows],
        "Low": [float(r.low) for r in rows],
        "Close": [float(r.close) for r in rows],
        "Volume": [_volume(r.volume) for r in rows],
    }
    index = bar_stamps([r.date for r in rows], interval, calendar)
    frame = pd.DataFrame(data, index=index.rename("timestamp"), dtype="float64")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    if interval in ("1wk", "1mo"):
        frame = resample_daily(frame, interval)
    return frame


def _volume(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) and v >= 0 else math.nan


def is_date_only(value: Any) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


#: ib_async's ``Order``: every field at its default, copied into each new order (see :func:`_ib_order`).
_DEFAULTS = vars(IBOrder())
#: Its fields whose default is made per order (lists, the soft-dollar tier): never shared between orders.
_PER_ORDER = tuple(
    (f.name, f.default_factory)
    for f in dataclasses.fields(IBOrder)
    if f.default_factory is not dataclasses.MISSING
)


def _ib_order(cls: type[IBOrder], **values: Any) -> IBOrder:
    """``cls(...)`` as its ``__init__`` builds it — every field at its default, then ``values`` — without the
    generated ``__init__``'s ~140 assignments: the same object (type, fields, fresh lists) for a few of its
    microseconds, on the path from a bar to its order."""
    ib_order: IBOrder = object.__new__(cls)
    state = ib_order.__dict__
    state.update(_DEFAULTS)
    for name, factory in _PER_ORDER:
        state[name] = factory()
    state.update(values)
    return ib_order


def to_ib_order(order: Order, account: str | None) -> IBOrder:
    """The ib_async order for ``order``; ``orderRef`` carries our order id so fills can be traced back."""
    action = _ACTION[str(order.side)]
    qty = float(order.quantity)
    kind = OrderType(order.order_type)
    ib_order: IBOrder
    if kind is OrderType.MARKET:  # MarketOrder(action, qty)
        ib_order = _ib_order(MarketOrder, orderType="MKT", action=action, totalQuantity=qty)
    elif kind is OrderType.LIMIT:  # LimitOrder(action, qty, limit)
        limit = float(order.limit_price or 0.0)
        ib_order = _ib_order(LimitOrder, orderType="LMT", action=action, totalQuantity=qty, lmtPrice=limit)
    elif kind is OrderType.STOP:  # StopOrder(action, qty, stop)
        stop = float(order.stop_price or 0.0)
        ib_order = _ib_order(StopOrder, orderType="STP", action=action, totalQuantity=qty, auxPrice=stop)
    elif kind.is_trailing:
        ib_order = _trailing_order(order, action, qty)
    elif kind is OrderType.MARKET_ON_CLOSE:
        ib_order = IBOrder(action=action, totalQuantity=qty, orderType="MOC")
    elif kind is OrderType.LIMIT_ON_CLOSE:
        ib_order = IBOrder(
            action=action, totalQuantity=qty, orderType="LOC", lmtPrice=float(order.limit_price or 0.0)
        )
    else:
        ib_order = StopLimitOrder(
            action, qty, float(order.limit_price or 0.0), float(order.stop_price or 0.0)
        )
    ib_order.tif = _TIF[TimeInForce(order.time_in_force)]
    ib_order.orderRef = order.order_id or ""
    if order.good_till is not None:  # IB reads yyyymmdd hh:mm:ss with the zone named
        ib_order.goodTillDate = f"{order.good_till.astimezone(UTC):%Y%m%d %H:%M:%S} UTC"
    if order.oca_group:  # IB holds the group: it cancels or reduces the other members itself
        ib_order.ocaGroup = order.oca_group
        ib_order.ocaType = int(order.oca_type)
    if account:
        ib_order.account = account
    return ib_order


def bracket_links(orders: Sequence[Order]) -> list[tuple[str | None, bool]]:
    """IB's attached-order fields for ``orders`` sent in this sequence: ``(parent order id, transmit)`` each.

    A bracket goes to IB as one group (:mod:`copilot_quant.model.bracket`): its entry with
    ``transmit=False``, its exits naming it (``parentId``), all but the last with ``transmit=False``; the
    last exit transmits the whole group, so IB never holds an entry without its protection.
    """
    last_exit = {o.parent_id: i for i, o in enumerate(orders) if o.parent_id}
    entries = {str(o.order_id) for o in orders if str(o.order_id) in last_exit}
    links: list[tuple[str | None, bool]] = []
    for i, order in enumerate(orders):
        if order.parent_id:
            links.append((order.parent_id, last_exit[order.parent_id] == i))
        else:
            links.append((None, str(order.order_id) not in entries))
    return links


def _trailing_order(order: Order, action: str, qty: float) -> IBOrder:
    """IB's ``TRAIL`` / ``TRAIL LIMIT``: the trail as auxPrice (an amount) or trailingPercent, the starting
    stop as trailStopPrice (unset: IB trails the market price at submission), the limit as lmtPriceOffset."""
    limit = order.order_type is OrderType.TRAILING_STOP_LIMIT
    ib_order = IBOrder(action=action, totalQuantity=qty, orderType="TRAIL LIMIT" if limit else "TRAIL")
    if order.trail_amount is not None:
        ib_order.auxPrice = float(order.trail_amount)
    else:
        ib_order.trailingPercent = float(order.trail_percent or 0.0)
    if order.stop_price is not None:
        ib_order.trailStopPrice = float(order.stop_price)
    if limit:
        ib_order.lmtPriceOffset = float(order.limit_offset or 0.0)
    return ib_order


def ib_status(status: str, filled: float, remaining: float) -> OrderStatus:
    """Project status for an IB status string and fill progress."""
    mapped = _IB_STATUS.get(status, OrderStatus.SUBMITTED)
    if mapped is OrderStatus.SUBMITTED and filled > 0 and remaining > 0:
        return OrderStatus.PARTIALLY_FILLED
    return mapped
