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
  closes included); intraday bars lie inside regular hours on IB's clock grid
  (:mod:`~copilot_quant.data.bar_grid`: hourly bars 09:30–10:00, 10:00–11:00 …) and are stamped at bar end
  (the first bar of a session starts at the open, the last ends at the close). No bar exists outside a session.
* **Valid OHLC.** Prices are positive, ``High >= max(Open, Close)``, ``Low <= min(Open, Close)``.
* **Prices an exchange would print.** Every price is on the cent grid (at least 0.01) and every volume a
  whole number of shares.
* **Fast.** Daily bars never need minute bars, and minute bars are made only for the sessions asked for:
  twenty years of days or a month of minutes take milliseconds, a million minutes well under a second.

The series starts with the first session opening at or after ``start``. With ``periods`` it holds exactly
``periods`` bars of ``interval`` (and the same time span at any other interval); without it, it runs to the
requested end date, or to now.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import zlib
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.data.bar_grid import bar_ends_in_sessions
from copilot_quant.data.base import BarProvider
from copilot_quant.data.calendars import DEFAULT_CALENDAR, exchange_tz_name, get_calendar, session_bounds
from copilot_quant.data.continuous import RollRule, assemble, session_labels
from copilot_quant.data.dates import DateLike, slice_range, to_utc
from copilot_quant.data.intervals import DERIVED_FROM_DAILY, INTRADAY_INTERVALS, bar_duration
from copilot_quant.data.resample import aggregate_bars, resample_daily
from copilot_quant.data.synthetic_markets import MarketTerms, bid_grid, on_tick_grid, quote_frames, terms_for
from copilot_quant.data.synthetic_paths import (
    SESSION_MINUTES,
    BarArrays,
    WalkModel,
    daily_bars,
    minute_bars,
)
from copilot_quant.data.validation import check_supported_interval, normalize_symbol, validate_bars
from copilot_quant.errors import DataError
from copilot_quant.model.instruments import AssetClass, Instrument, InstrumentRegistry

__all__ = ["SyntheticDataProvider"]

logger = logging.getLogger(__name__)

_MINUTE_NS = 60 * 10**9
_TICK = 0.01  # price grid of the generated stocks
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
        calendar: the exchange calendar of stocks (futures and pairs follow their instrument's).
        registry: reads symbols as stocks, futures contracts (``ESZ6``), continuous futures (``MES``) or
            forex pairs (``EUR.USD``); see :mod:`~copilot_quant.data.synthetic_markets` for how each is drawn.
        roll_days: a continuous future's bars are its contract of the day's, rolled this many weekdays
            before expiry (as the registry's ``contract_on``); back-adjusted series:
            :func:`~copilot_quant.data.continuous.continuous_series`.
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
        registry: InstrumentRegistry | None = None,
        roll_days: int = 5,
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
        self.registry = registry if registry is not None else InstrumentRegistry()
        self.roll_rule = RollRule(days_before_expiry=roll_days)
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
        ends = closes if interval == "1d" else _intraday_ends(opens, closes, _step(interval), self.calendar)
        return _utc_index(ends)

    def _sessions(self, until: pd.Timestamp, calendar: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Opens and closes (int64 ns) of the series' sessions: opening at or after ``start``, before ``until``."""
        if until <= self.start:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        opens, closes = session_bounds(self.start, until + pd.Timedelta(days=1), calendar or self.calendar)
        open_ns, close_ns = opens.as_unit("ns").asi8, closes.as_unit("ns").asi8
        keep = (open_ns >= self.start.value) & (open_ns < until.value)
        return open_ns[keep], close_ns[keep]

    def _end_of_periods(self, periods: int) -> pd.Timestamp:
        stamps = self.stamps(self.interval, count=periods)
        if len(stamps) < periods:
            raise DataError(f"Cannot fit {periods} bars after {self.start}; use an earlier start.")
        return stamps[-1]

    # -- generation -----------------------------------------------------------------------------------------
    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """The base fields, with a future's or pair's own currency, calendar, multiplier and tick."""
        info = super().get_ticker_info(symbol)
        instrument = self.instrument(symbol)
        if instrument.kind is not AssetClass.STOCK:
            info.update(
                currency=instrument.currency, calendar=instrument.calendar, sec_type=instrument.sec_type,
                multiplier=instrument.multiplier, tick_size=instrument.tick_size,
            )  # fmt: skip
        return info

    def quote_bars(
        self,
        symbol: str,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        interval: str = "1d",
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(bid, ask)`` bars of a forex pair: half a tick under and over the midpoints it serves."""
        instrument = self.instrument(symbol)
        if instrument.kind is not AssetClass.FOREX:
            raise DataError(
                f"{symbol} is not a forex pair; bid/ask bars are served for pairs such as EUR.USD."
            )
        return quote_frames(
            self.get_historical_data(symbol, start_date, end_date, interval), instrument.tick_size
        )

    def calendar_of(self, symbol: str) -> str:
        """The calendar of ``symbol``'s instrument: the provider's for a stock, CME Globex for a future,
        IDEALPRO's 24/5 for a pair."""
        return terms_for(self.instrument(symbol)).calendar or self.calendar

    def instrument(self, symbol: str) -> Instrument:
        """What ``symbol`` stands for (a stock unless the registry reads it as a future or a pair)."""
        return self.registry.resolve(normalize_symbol(symbol))

    def _window(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, until: pd.Timestamp
    ) -> pd.DataFrame:
        """Raw bars of ``symbol`` at ``interval`` stamped in ``[lo, until]`` (not validated).

        A contract's one-digit year (``MESZ6``) is read in the decade of the window asked for (2016 for a
        window in 2016), so a backtest of any year gets its own contracts under IB's local symbols.
        """
        if lo is None:
            return self._bars_of(self.instrument(symbol), interval, lo, until)
        registry = dataclasses.replace(self.registry, reference=lo.date())
        return self._bars_of(registry.resolve(normalize_symbol(symbol)), interval, lo, until)

    def _bars_of(
        self, instrument: Instrument, interval: str, lo: pd.Timestamp | None, until: pd.Timestamp
    ) -> pd.DataFrame:
        if instrument.continuous:
            return self._continuous(instrument, interval, lo, until)
        terms = terms_for(instrument)
        calendar = terms.calendar or self.calendar
        model = self._model_of(terms)
        opens, closes = self._sessions(until, calendar)
        days = self._daily(terms, model, opens, closes)
        if instrument.kind is AssetClass.FUTURE:
            labels = _labels(closes, calendar)
            kept = terms.kept_sessions(labels)
            opens, closes = opens[kept], closes[kept]
            days = terms.transform(days.take(kept), labels[kept], self.registry)
        if interval == "1d":
            frame = _frame(days, closes, terms)
        else:
            # Minutes of whole sessions only from the first one reaching ``lo``; coarser bars aggregate them.
            first = 0 if lo is None else int(np.searchsorted(closes, lo.value, side="left"))
            minutes = minute_bars(
                model, self._key(terms.path), days.take(slice(first, None)), _minutes(opens, closes)[first:],
                closes[first:],
            )  # fmt: skip
            frame = _frame(
                minutes, _intraday_ends(opens[first:], closes[first:], _MINUTE_NS, calendar), terms
            )
            frame = aggregate_bars(frame, "1m", interval, calendar)
        return slice_range(frame, lo, until)

    def _continuous(
        self, instrument: Instrument, interval: str, lo: pd.Timestamp | None, until: pd.Timestamp
    ) -> pd.DataFrame:
        """The contract of each session's bars, unadjusted (the prices its orders trade at)."""
        first = (lo if lo is not None else self.start).date()
        chain = self.registry.contracts_after(instrument.root, first, count=2)
        while chain[-2].expiry is not None and chain[-2].expiry < until.date():
            chain = self.registry.contracts_after(instrument.root, first, count=len(chain) * 2)
        frames = {inst: self._bars_of(inst, interval, lo, until) for inst in chain}
        return assemble(instrument, self.registry, frames, rule=self.roll_rule, adjustment="none").bars

    def _model_of(self, terms: MarketTerms) -> WalkModel:
        if terms.kind is AssetClass.STOCK:
            return self._model
        volume = 0.0 if terms.kind is AssetClass.FOREX else self.daily_volume
        return WalkModel(
            self.annual_drift * terms.vol_scale, self.annual_volatility * terms.vol_scale, volume,
            terms.session_minutes,
        )  # fmt: skip

    def _daily(
        self, terms: MarketTerms, model: WalkModel, opens: np.ndarray, closes: np.ndarray
    ) -> BarArrays:
        """Daily bars of the first ``len(opens)`` sessions of a path (cached; the path is prefix-stable)."""
        name = terms.path
        cached = self._days.get(name)
        if cached is None or len(cached) < len(opens):
            price = self._first_price(name) if terms.start_price is None else terms.start_price
            if self.start_price is not None:
                price = float(self.start_price)
            cached = daily_bars(model, self._key(name), _minutes(opens, closes), price)
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


def _intraday_ends(opens: np.ndarray, closes: np.ndarray, step: int, calendar: str) -> np.ndarray:
    """Bar-end times (int64 ns) of ``step``-long bars of each session, on IB's clock grid."""
    return bar_ends_in_sessions(opens, closes, step, exchange_tz_name(calendar))


def _utc_index(ends: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ends.astype("datetime64[ns]"), name="timestamp").tz_localize("UTC")


def _labels(closes: np.ndarray, calendar: str) -> pd.DatetimeIndex:
    """Session dates (naive, in the exchange's zone) of sessions closing at ``closes`` (int64 ns)."""
    if len(closes) == 0:
        return pd.DatetimeIndex([])
    return session_labels(_utc_index(closes), calendar)


def _frame(bars: BarArrays, ends: np.ndarray, terms: MarketTerms) -> pd.DataFrame:
    """The bars as a frame, prices on the instrument's grid as an exchange prints them: the cent for a
    stock, the contract's tick for a future, a pair's midpoint (half a tick above its bid on the grid).

    Rounding is monotone, so rounded minutes still aggregate exactly to the rounded days (the first open,
    highest high, lowest low and last close of rounded values are the rounded aggregates) and OHLC stays
    valid; volumes are whole shares (contracts) already.
    """
    if terms.kind is AssetClass.STOCK:
        grid = _cent_grid
    elif terms.kind is AssetClass.FUTURE:
        grid = functools.partial(on_tick_grid, tick=terms.tick)
    else:
        grid = functools.partial(_midpoint_grid, tick=terms.tick)
    prices = {
        name: grid(values)
        for name, values in (
            ("Open", bars.open),
            ("High", bars.high),
            ("Low", bars.low),
            ("Close", bars.close),
        )
    }
    return pd.DataFrame({**prices, "Volume": bars.volume}, index=_utc_index(ends))


def _cent_grid(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(values, 2), _TICK)


def _midpoint_grid(values: np.ndarray, tick: float) -> np.ndarray:
    return np.round(bid_grid(values, tick) + tick / 2.0, 10)
