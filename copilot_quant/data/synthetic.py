"""Seeded synthetic bars for any ticker: one random path per symbol on the real exchange calendar, seen the
same way at every interval.

Use it for tests, benchmarks and demos that must not depend on files or the network::

    feed = SyntheticDataProvider(seed=7)                         # any symbol, bars from 2015-01-02
    feed = SyntheticDataProvider(['X'], periods=1_000_000, interval='1m')   # a million minute bars

Properties:

* **One market at every interval.** A symbol has one path (the model is in
  :mod:`~copilot_quant.data.synthetic_paths`): its minute bars aggregate exactly to its hourly and daily bars
  (first open, highest high, lowest low, last close, summed volume, by :mod:`~copilot_quant.data.resample`'s
  rules), and weekly and monthly bars aggregate the daily ones. A backtest on daily bars and one on minute
  bars trade the same market.
* **Deterministic, whatever the window.** A bar depends only on ``seed``, the symbol, ``start`` and the model
  parameters: two requests agree wherever they overlap, and a longer series begins with the shorter one.
* **Honest timestamps.** UTC, like every provider. Daily bars are stamped at each session's close (early
  closes included); intraday bars lie inside regular hours, aligned to the open and stamped at bar end (the
  last bar of a session may be shorter and ends at the close). No bar exists outside a session.
* **Valid OHLC.** Prices are positive, ``High >= max(Open, Close)``, ``Low <= min(Open, Close)``.
* **Fast.** Daily bars never need minute bars, and minute bars are made only for the sessions asked for:
  twenty years of days or a month of minutes take milliseconds, a million minutes well under a second.

The series starts with the first session opening at or after ``start``. With ``periods`` it holds exactly
``periods`` bars of ``interval`` (and the same time span at any other interval); without it, it runs to the
requested end date, or to now.
"""

from __future__ import annotations

import logging
import math
import zlib

import numpy as np
import pandas as pd

from copilot_quant.data.base import BarProvider
from copilot_quant.data.calendars import DEFAULT_CALENDAR, get_calendar, session_bounds
from copilot_quant.data.dates import DateLike, slice_range, to_utc
from copilot_quant.data.intervals import DERIVED_FROM_DAILY, INTRADAY_INTERVALS, bar_duration
from copilot_quant.data.resample import aggregate_bars, resample_daily
from copilot_quant.data.synthetic_paths import (
    SESSION_MINUTES,
    BarArrays,
    WalkModel,
    daily_bars,
    minute_bars,
)
from copilot_quant.data.validation import check_supported_interval, normalize_symbol, validate_bars
from copilot_quant.errors import DataError

__all__ = ["SyntheticDataProvider"]

logger = logging.getLogger(__name__)

_MINUTE_NS = 60 * 10**9
_START_PRICE_TAG = 99  # generator tag of the per-symbol start price (kept from the first version)


class SyntheticDataProvider(BarProvider):
    """Seeded geometric-random-walk bars, one path per symbol at every interval; see the module docstring.

    Args:
        symbols: symbols it serves; ``None`` serves any ticker asked for.
        seed: random seed; together with the symbol it fixes the path.
        start: the series begins with the first session opening at or after it (naive = New York time).
        periods: number of bars of ``interval``; ``None`` = up to the requested end (or now).
        interval: the interval ``periods`` counts.
        annual_drift, annual_volatility: the random walk's yearly drift and volatility.
        start_price: the first session's open; ``None`` picks one per symbol between 20 and 500 (seeded).
        daily_volume: average share volume of a full session (half days and minutes get their share).
    """

    source = "synthetic"

    def __init__(
        self,
        symbols: list[str] | None = None,
        seed: int = 42,
        start: DateLike = "2015-01-02",
        periods: int | None = None,
        interval: str = "1d",
        *,
        annual_drift: float = 0.07,
        annual_volatility: float = 0.25,
        start_price: float | None = None,
        daily_volume: float = 1_000_000.0,
        calendar: str = DEFAULT_CALENDAR,
    ) -> None:
        super().__init__()
        check_supported_interval(interval)
        if periods is not None and periods < 1:
            raise DataError(f"periods must be a positive number of bars, got {periods}.")
        if annual_volatility < 0 or not math.isfinite(annual_volatility):
            raise DataError(f"annual_volatility must be finite and >= 0, got {annual_volatility}.")
        if start_price is not None and not start_price > 0:
            raise DataError(f"start_price must be positive, got {start_price}.")
        if daily_volume < 0 or not math.isfinite(daily_volume):
            raise DataError(f"daily_volume must be finite and >= 0, got {daily_volume}.")
        self.calendar = calendar
        self.seed = int(seed)
        self.start = to_utc(start, self._tz)
        self.periods = periods
        self.interval = interval
        self.annual_drift = float(annual_drift)
        self.annual_volatility = float(annual_volatility)
        self.start_price = start_price
        self.daily_volume = float(daily_volume)
        self._model = WalkModel(self.annual_drift, self.annual_volatility, self.daily_volume)
        self._fixed = None if symbols is None else sorted({normalize_symbol(s) for s in symbols})
        self._served: set[str] = set()
        self._days: dict[str, BarArrays] = {}  # each symbol's longest daily path so far (prefix-stable)
        self._end = None if periods is None else self._end_of_periods(periods)

    # -- BarProvider hooks -------------------------------------------------------------------------------
    def symbols(self) -> list[str]:
        """The configured symbols; with ``symbols=None``, those generated so far (any ticker is served)."""
        return list(self._fixed) if self._fixed is not None else sorted(self._served)

    @property
    def serves_any_symbol(self) -> bool:
        """Whether any ticker is generated on request (``symbols=None``)."""
        return self._fixed is None

    def _require_symbol(self, symbol: str) -> str:
        if self._fixed is not None:
            return super()._require_symbol(symbol)
        name = normalize_symbol(symbol)
        self._served.add(name)
        return name

    def native_intervals(self, symbol: str) -> frozenset[str]:
        # All served directly (intraday ones aggregate whole sessions of minutes), so a series cut at ``periods``
        # or at now ends with complete bars at every interval, never with a partial hour.
        return frozenset(INTRADAY_INTERVALS | {"1d"})

    def _load(self, symbol: str, interval: str) -> pd.DataFrame:
        # Only reached with ``periods`` (a fixed series); open-ended series go through ``_range``.
        end = self._end if self._end is not None else pd.Timestamp.now(tz="UTC")
        return self._window(symbol, interval, None, end)

    def bars(self, symbol: str, interval: str = "1d") -> pd.DataFrame:
        """The whole series of ``symbol``: ``periods`` bars, or from ``start`` up to now."""
        if self._end is not None:
            return super().bars(symbol, interval)
        check_supported_interval(interval)
        return self._range(self._require_symbol(symbol), interval, None, None)

    def _range(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None
    ) -> pd.DataFrame:
        if self._end is not None:
            return super()._range(symbol, interval, lo, hi)
        if interval in DERIVED_FROM_DAILY:
            daily = self._range(symbol, "1d", None, hi)
            return slice_range(resample_daily(daily, interval, self._tz), lo, hi)
        until = hi if hi is not None else pd.Timestamp.now(tz="UTC")
        frame = self._window(symbol, interval, lo, until)
        return validate_bars(frame, symbol=symbol, source=self.source)

    def clear_cache(self) -> None:
        """Forget the series generated so far (they are regenerated identically on request)."""
        super().clear_cache()
        self._days.clear()

    # -- sessions and stamps --------------------------------------------------------------------------------
    def stamps(
        self, interval: str, end: pd.Timestamp | None = None, count: int | None = None
    ) -> pd.DatetimeIndex:
        """UTC bar-end times from ``start``: through ``end`` (default now), or the first ``count`` of them."""
        check_supported_interval(interval)
        if interval not in INTRADAY_INTERVALS and interval != "1d":
            raise DataError(f"Synthetic {interval!r} bars are aggregated from daily ones; ask for '1d'.")
        if count is None:
            until = end if end is not None else pd.Timestamp.now(tz="UTC")
            stamps = self._stamps_until(interval, until)
            return stamps[: int(stamps.searchsorted(until, side="right"))]
        per_session = 1 if interval == "1d" else math.ceil(SESSION_MINUTES * _MINUTE_NS / _step(interval))
        last_close = get_calendar(self.calendar).closes.iloc[-1]
        days = math.ceil(count / per_session * 1.03) + 10
        while True:
            horizon = self.start + pd.Timedelta(days=days * 7 / 5 + 10)
            stamps = self._stamps_until(interval, horizon)
            if len(stamps) >= count:
                return stamps[:count]
            if horizon > last_close:
                raise DataError(
                    f"{count} {interval} bars from {self.start.date()} run past the end of the {self.calendar} "
                    f"calendar ({last_close.date()}); use an earlier start or fewer periods."
                )
            days *= 2

    def _stamps_until(self, interval: str, until: pd.Timestamp) -> pd.DatetimeIndex:
        """Bar-end times of every session of the series that opens before ``until``."""
        opens, closes = self._sessions(until)
        ends = closes if interval == "1d" else _intraday_ends(opens, closes, _step(interval))
        return _utc_index(ends)

    def _sessions(self, until: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
        """Opens and closes (int64 ns) of the series' sessions: opening at or after ``start``, before ``until``."""
        if until <= self.start:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        opens, closes = session_bounds(self.start, until + pd.Timedelta(days=1), self.calendar)
        open_ns, close_ns = opens.as_unit("ns").asi8, closes.as_unit("ns").asi8
        keep = (open_ns >= self.start.value) & (open_ns < until.value)
        return open_ns[keep], close_ns[keep]

    def _end_of_periods(self, periods: int) -> pd.Timestamp:
        stamps = self.stamps(self.interval, count=periods)
        if len(stamps) < periods:
            raise DataError(f"Cannot fit {periods} bars after {self.start}; use an earlier start.")
        return stamps[-1]

    # -- generation -----------------------------------------------------------------------------------------
    def _window(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, until: pd.Timestamp
    ) -> pd.DataFrame:
        """Raw bars of ``symbol`` at ``interval`` stamped in ``[lo, until]`` (not validated)."""
        opens, closes = self._sessions(until)
        days = self._daily(symbol, opens, closes)
        if interval == "1d":
            frame = _frame(days, closes)
        else:
            # Minutes of whole sessions only from the first one reaching ``lo``; coarser bars aggregate them.
            first = 0 if lo is None else int(np.searchsorted(closes, lo.value, side="left"))
            name = normalize_symbol(symbol)
            minutes = minute_bars(
                self._model, self._key(name), days.take(slice(first, None)), _minutes(opens, closes)[first:],
                closes[first:],
            )  # fmt: skip
            frame = _frame(minutes, _intraday_ends(opens[first:], closes[first:], _MINUTE_NS))
            frame = aggregate_bars(frame, "1m", interval, self.calendar)
        return slice_range(frame, lo, until)

    def _daily(self, symbol: str, opens: np.ndarray, closes: np.ndarray) -> BarArrays:
        """Daily bars of the first ``len(opens)`` sessions of the series (cached; the path is prefix-stable)."""
        name = normalize_symbol(symbol)
        cached = self._days.get(name)
        if cached is None or len(cached) < len(opens):
            cached = daily_bars(
                self._model, self._key(name), _minutes(opens, closes), self._first_price(name)
            )
            self._days[name] = cached
        return cached.take(slice(0, len(opens)))

    def _key(self, name: str) -> tuple[int, int]:
        return self.seed, zlib.crc32(name.encode())

    def _first_price(self, name: str) -> float:
        if self.start_price is not None:
            return float(self.start_price)
        rng = np.random.default_rng([*self._key(name), _START_PRICE_TAG])
        return float(rng.uniform(20.0, 500.0))

    def __repr__(self) -> str:
        return (
            f"SyntheticDataProvider(symbols={self._fixed}, seed={self.seed}, start='{self.start.date()}', "
            f"periods={self.periods}, interval='{self.interval}')"
        )


def _step(interval: str) -> int:
    return int(bar_duration(interval).value)


def _minutes(opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Whole minutes of each session, a started minute counting as one."""
    return -((opens - closes) // _MINUTE_NS)


def _intraday_ends(opens: np.ndarray, closes: np.ndarray, step: int) -> np.ndarray:
    """Bar-end times (int64 ns) of ``step``-long bars aligned to each open; the last one ends at the close."""
    counts = -((opens - closes) // step)  # ceil((close - open) / step)
    session = np.repeat(np.arange(len(counts)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    k = np.arange(int(counts.sum()), dtype=np.int64) - first
    return np.minimum(opens[session] + (k + 1) * step, closes[session])


def _utc_index(ends: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ends.astype("datetime64[ns]"), name="timestamp").tz_localize("UTC")


def _frame(bars: BarArrays, ends: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"Open": bars.open, "High": bars.high, "Low": bars.low, "Close": bars.close, "Volume": bars.volume},
        index=_utc_index(ends),
    )
