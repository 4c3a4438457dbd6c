"""Chart helpers every report shares: which points of a long line to draw, bar times as the page's x
values, and drawdown axis ticks that never repeat a label."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from copilot_quant.backtest.metrics import TRADING_DAYS_PER_YEAR, infer_periods_per_year
from copilot_quant.data.dates import EXCHANGE_TZ

__all__ = [
    "MAX_CHART_POINTS",
    "chart_times",
    "closed_market_breaks",
    "display_positions",
    "drawdown_ticks",
    "is_daily",
]

#: Points per chart line above which the line is thinned (equity, drawdown, and one symbol's price).
MAX_CHART_POINTS = 5_000
#: Intervals at most on the drawdown axis (its panel is short).
_DRAWDOWN_TICKS = 4


def is_daily(index: pd.Index) -> bool:
    """Whether bars on ``index`` are daily or coarser (252 trading days a year or fewer)."""
    return infer_periods_per_year(index) <= TRADING_DAYS_PER_YEAR


def display_positions(values: np.ndarray, max_points: int) -> np.ndarray:
    """Positions of ``values`` worth drawing, in order: from the first to the last value that is not NaN.

    All of them when there are at most ``max_points``. Otherwise the values are cut into spans of
    ``ceil(2n / max_points)`` and each span keeps its lowest and highest value (so every peak and trough
    of the drawn line is a real one, and the global extremes survive), plus the first and last value and
    the first NaN of every gap at least a span long (so missing bars still break the line): about
    ``max_points`` positions.
    """
    present = np.flatnonzero(~np.isnan(values))
    if not len(present):
        return present
    first, last = int(present[0]), int(present[-1])
    values = values[first : last + 1]
    n = len(values)
    if n <= max_points:
        return np.arange(first, last + 1)
    span = math.ceil(2 * n / max(max_points, 2))
    missing = np.isnan(values)
    padded = np.concatenate([values, np.full((-n) % span, np.nan)]).reshape(-1, span)
    valid = ~np.isnan(padded)
    has_value = valid.any(axis=1)
    base = np.arange(len(padded)) * span
    lows = base + np.argmin(np.where(valid, padded, np.inf), axis=1)
    highs = base + np.argmax(np.where(valid, padded, -np.inf), axis=1)
    keep = np.zeros(n, dtype=bool)
    keep[lows[has_value]] = True
    keep[highs[has_value]] = True
    keep[[0, n - 1]] = True
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    gap_starts, gap_ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep[gap_starts[gap_ends - gap_starts >= span]] = True
    return first + np.flatnonzero(keep)


def drawdown_ticks(depth: float, ticks: int = _DRAWDOWN_TICKS) -> tuple[float, str] | None:
    """Tick spacing and d3 tick format for a drawdown axis reaching ``depth`` (a fraction, ``-0.008`` = -0.8 %).

    The spacing is the smallest 1, 2, 2.5 or 5 x 10^k percent step giving at most ``ticks`` intervals (so at
    least ``ticks / 2`` of them), and the format has exactly the decimals that step needs, so every tick label
    differs (a fixed ``.0%`` prints ``-1%`` at both -0.6 % and -0.8 %). ``None`` when there is no drawdown.
    """
    if not math.isfinite(depth) or depth >= 0:
        return None
    rough = -depth * 100 / max(ticks, 1)  # the smallest step in percent that keeps to ``ticks`` intervals
    exponent = math.floor(math.log10(rough))
    mantissa = next((m for m in (1, 2, 2.5, 5) if m * 10.0**exponent >= rough * (1 - 1e-9)), None)
    if mantissa is None:
        mantissa, exponent = 1, exponent + 1
    decimals = max(0, -exponent + (1 if mantissa == 2.5 else 0))
    step = round(mantissa * 10.0**exponent, decimals)  # in percent
    return step / 100, f".{decimals}%"


def chart_times(index: pd.Index, daily: bool) -> np.ndarray:
    """Bar times as the page's x values: New York wall-clock text, the date alone for daily bars.

    plotly.js ignores time zones, and short text is about a third of the size of ISO stamps with offsets.
    """
    if not isinstance(index, pd.DatetimeIndex):
        return np.asarray(index)
    local = index.tz_convert(EXCHANGE_TZ) if index.tz is not None else index
    if daily:
        fmt = "%Y-%m-%d"
    elif (local.second != 0).any() or (local.microsecond != 0).any():
        fmt = "%Y-%m-%d %H:%M:%S"
    else:
        fmt = "%Y-%m-%d %H:%M"
    return np.asarray(local.strftime(fmt), dtype=object)


def closed_market_breaks(index: pd.Index) -> list[dict[str, object]]:
    """plotly ``rangebreaks`` that hide the time the market was closed on an intraday chart: nights
    (between the latest and the earliest bar time of day, New York), weekends and weekdays without a bar
    (holidays). On a date axis these would otherwise take most of the width, with the price line drawn
    straight across them. Empty for daily bars, which have no such gaps worth hiding."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2 or is_daily(index):
        return []
    local = index.tz_convert(EXCHANGE_TZ) if index.tz is not None else index
    step = pd.Timedelta(int(np.median(np.diff(local.as_unit("ns").asi8))), unit="ns")
    hours = (local - local.normalize()) / pd.Timedelta(hours=1)
    opens = float(hours.min()) - step / pd.Timedelta(hours=1)  # a bar is stamped at its end
    closes = float(hours.max())
    breaks: list[dict[str, object]] = [{"bounds": ["sat", "mon"]}]
    if closes - opens < 24 - 1e-9 and opens >= 0:
        breaks.append({"bounds": [closes, opens], "pattern": "hour"})
    days = pd.DatetimeIndex(local.normalize().unique())
    days = days.tz_localize(None) if days.tz is not None else days
    missing = pd.bdate_range(days[0], days[-1]).difference(days)
    if len(missing):
        breaks.append({"values": [d.strftime("%Y-%m-%d") for d in missing]})
    return breaks
