"""Performance metrics as pure functions of a returns or equity series.

Conventions (the same as empyrical-reloaded, which a test checks them against):

* ``returns`` are simple, non-cumulative per-bar returns; NaNs are ignored.
* Annualization uses ``periods_per_year``, the number of bars in a year at the series' frequency.
  :func:`infer_periods_per_year` derives it from a DatetimeIndex (daily 252, hourly 252×7, minute
  252×390, weekly 52, monthly 12 …) so intraday or weekly backtests are not annualized as if daily.
* Volatility and Sharpe use the sample standard deviation (``ddof=1``); Sortino divides the annualized
  mean by the annualized root-mean-square of the below-zero returns.
* **Drawdowns are negative fractions**: ``-0.25`` means the equity stood 25 % below its running peak.
  ``max_drawdown`` is the most negative value (``0.0`` when equity never fell).
* The CAGR spans ``len(returns) / periods_per_year`` years.

Every function returns ``nan`` when the input cannot define the metric (too short, zero variance, no
losing trades for a profit factor of gains over losses …) rather than a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DrawdownStats",
    "annualized_return",
    "annualized_volatility",
    "calmar_ratio",
    "drawdown_series",
    "exposure",
    "infer_periods_per_year",
    "max_drawdown",
    "max_drawdown_stats",
    "profit_factor",
    "returns_from_equity",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "win_rate",
]

TRADING_DAYS_PER_YEAR = 252
_DAY = pd.Timedelta(days=1)
_NAN = float("nan")
_ZERO_STD = 1e-14  # a per-bar return deviation below this is floating-point noise around a constant


def _clean(returns: pd.Series | np.ndarray | Iterable[float]) -> np.ndarray:
    values = np.asarray(returns, dtype="float64")
    return values[~np.isnan(values)]


# ----------------------------------------------------------------------------------------- frequency
def infer_periods_per_year(index: pd.Index, default: float = TRADING_DAYS_PER_YEAR) -> float:
    """Bars per year for a bar index, from the typical spacing of its timestamps.

    Intraday bars: the median number of bars per trading day (New York dates) × 252, so a 1-minute series
    gives 98,280, 5-minute 19,656 and hourly bars 252 × bars-per-session. Daily bars (spacing one to four
    calendar days, weekends and holidays included) give 252; weekly 52; monthly 12; quarterly 4;
    yearly 1. ``default`` is returned for an index that is too short or not datetime-like.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return float(default)
    steps = np.diff(index.as_unit("ns").asi8)  # pandas 3 indexes may be in us or s: normalise
    steps = steps[steps > 0]
    if len(steps) == 0:
        return float(default)
    step = pd.Timedelta(int(np.median(steps)), unit="ns")
    if step < pd.Timedelta(hours=20):
        local = index.tz_convert("America/New_York") if index.tz is not None else index
        per_day = pd.Series(1, index=local.normalize()).groupby(level=0).size()
        if len(per_day) >= 3:  # first/last days are often partial: use a median
            bars_per_day = float(per_day.median())
        else:  # a day or two of data: assume a regular 6.5-hour session
            bars_per_day = max(pd.Timedelta(hours=6, minutes=30) / step, 1.0)
        return bars_per_day * TRADING_DAYS_PER_YEAR
    if step <= 4 * _DAY:
        return float(TRADING_DAYS_PER_YEAR)
    if step <= 10 * _DAY:
        return 52.0
    if step <= 45 * _DAY:
        return 12.0
    if step <= 120 * _DAY:
        return 4.0
    return 1.0


# ------------------------------------------------------------------------------------------- returns
def returns_from_equity(equity: pd.Series, initial: float | None = None) -> pd.Series:
    """Per-bar simple returns of an equity curve.

    With ``initial`` (the starting capital) the first bar's return is measured against it, so costs paid
    on the first bar count; without it the first return is 0.
    """
    values = equity.astype("float64")
    rets = values.pct_change()
    if len(values):
        first = values.iloc[0] / initial - 1.0 if initial else 0.0
        rets.iloc[0] = first
    return rets


def total_return(returns: pd.Series | np.ndarray) -> float:
    """Compounded return over the whole series (``0.25`` = +25 %)."""
    values = _clean(returns)
    if len(values) == 0:
        return _NAN
    return float(np.prod(1.0 + values) - 1.0)


def annualized_return(returns: pd.Series | np.ndarray, periods_per_year: float) -> float:
    """CAGR: the constant yearly return that compounds to the same total over ``len/periods`` years."""
    values = _clean(returns)
    if len(values) == 0:
        return _NAN
    years = len(values) / periods_per_year
    growth = float(np.prod(1.0 + values))
    if growth <= 0:
        return -1.0
    return growth ** (1.0 / years) - 1.0


def annualized_volatility(returns: pd.Series | np.ndarray, periods_per_year: float) -> float:
    """Sample standard deviation of the returns × √periods_per_year."""
    values = _clean(returns)
    if len(values) < 2:  # a sample deviation needs two points
        return _NAN
    return float(np.std(values, ddof=1) * math.sqrt(periods_per_year))


def sharpe_ratio(returns: pd.Series | np.ndarray, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Annualized Sharpe ratio; ``risk_free`` is a per-bar rate subtracted from each return."""
    values = _clean(returns) - risk_free
    if len(values) < 2:
        return _NAN
    std = float(np.std(values, ddof=1))
    if not std > _ZERO_STD:  # constant returns: rounding noise must not become a huge Sharpe
        return _NAN
    return float(np.mean(values) / std * math.sqrt(periods_per_year))


def sortino_ratio(
    returns: pd.Series | np.ndarray, periods_per_year: float, required_return: float = 0.0
) -> float:
    """Annualized mean excess return over the annualized downside deviation below ``required_return``."""
    values = _clean(returns) - required_return
    if len(values) < 2:
        return _NAN
    downside = math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2))) * math.sqrt(periods_per_year)
    if downside == 0:
        return _NAN
    return float(np.mean(values) * periods_per_year / downside)


# ----------------------------------------------------------------------------------------- drawdowns
def drawdown_series(equity: pd.Series) -> pd.Series:
    """Fractional distance of equity below its running peak, ``<= 0`` everywhere."""
    values = equity.astype("float64")
    peak = values.cummax()
    return values / peak - 1.0


@dataclass(frozen=True, slots=True)
class DrawdownStats:
    """The deepest drawdown and the longest time spent below a previous peak.

    ``max_drawdown`` is a negative fraction (0 if equity never fell). ``duration_bars`` counts bars from
    the peak to the bar equity first got back to it (or to the last bar if it never did);
    ``duration`` is the same span in calendar time (``None`` without a DatetimeIndex).
    ``longest_start``/``longest_end`` are the positions of that span's peak and end bar.
    """

    max_drawdown: float
    peak: object | None
    trough: object | None
    duration_bars: int
    duration: pd.Timedelta | None
    recovered: bool
    longest_start: int = 0
    longest_end: int = 0


def max_drawdown(returns: pd.Series | np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded returns, as a negative fraction (starting value 1)."""
    values = _clean(returns)
    if len(values) == 0:
        return _NAN
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + values)))
    peaks = np.maximum.accumulate(wealth)
    return float(np.min(wealth / peaks - 1.0))


def max_drawdown_stats(equity: pd.Series) -> DrawdownStats:
    """Depth and longest duration of the drawdowns of an equity curve (see :class:`DrawdownStats`)."""
    values = equity.to_numpy(dtype="float64")
    if len(values) == 0:
        return DrawdownStats(_NAN, None, None, 0, None, True)
    peaks = np.maximum.accumulate(values)
    dd = values / peaks - 1.0
    trough_at = int(np.argmin(dd))
    peak_at = int(np.argmax(values[: trough_at + 1]))
    # Longest underwater spell: from the last high before it to the first bar back at that high.
    underwater = np.concatenate(([False], values < peaks, [False])).astype(np.int8)
    edges = np.diff(underwater)
    starts = np.flatnonzero(edges == 1)  # first bar below the peak
    ends = np.flatnonzero(edges == -1)  # first bar back at the peak (len(values) if never)
    longest, start_of_longest, end_of_longest, recovered = 0, 0, 0, True
    if len(starts):
        from_peak = np.maximum(starts - 1, 0)
        to_bar = np.minimum(ends, len(values) - 1)
        k = int(np.argmax(to_bar - from_peak))
        longest = int(to_bar[k] - from_peak[k])
        start_of_longest, end_of_longest = int(from_peak[k]), int(to_bar[k])
        recovered = bool(ends[k] < len(values))
    index = equity.index
    duration = None
    if isinstance(index, pd.DatetimeIndex):
        duration = index[end_of_longest] - index[start_of_longest] if longest else pd.Timedelta(0)
    return DrawdownStats(
        max_drawdown=float(dd[trough_at]),
        peak=index[peak_at],
        trough=index[trough_at],
        duration_bars=int(longest),
        duration=duration,
        recovered=recovered,
        longest_start=start_of_longest,
        longest_end=end_of_longest,
    )


def calmar_ratio(returns: pd.Series | np.ndarray, periods_per_year: float) -> float:
    """CAGR divided by the absolute maximum drawdown (``nan`` when there was no drawdown)."""
    dd = max_drawdown(returns)
    if not dd < 0:
        return _NAN
    return annualized_return(returns, periods_per_year) / abs(dd)


# -------------------------------------------------------------------------------- trades and exposure
def win_rate(pnl: pd.Series | np.ndarray | Iterable[float]) -> float:
    """Share of trades (or periods) with a positive result; ``nan`` when there are none."""
    values = _clean(pnl)
    if len(values) == 0:
        return _NAN
    return float(np.count_nonzero(values > 0) / len(values))


def profit_factor(pnl: pd.Series | np.ndarray | Iterable[float]) -> float:
    """Gross profit divided by gross loss; ``inf`` with gains and no losses, ``nan`` with neither."""
    values = _clean(pnl)
    gains = float(values[values > 0].sum())
    losses = float(-values[values < 0].sum())
    if losses == 0:
        return math.inf if gains > 0 else _NAN
    return gains / losses


def exposure(invested: pd.Series | np.ndarray | Iterable[float]) -> float:
    """Share of bars with a position on: ``invested`` is a per-bar gross position value or a boolean mask."""
    values = np.asarray(invested)
    if len(values) == 0:
        return _NAN
    if values.dtype != bool:
        values = np.abs(np.nan_to_num(values.astype("float64"))) > 1e-12
    return float(np.count_nonzero(values) / len(values))
