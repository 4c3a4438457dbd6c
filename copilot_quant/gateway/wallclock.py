"""The paper market on the wall clock: prices generated live, bars that complete in real time.

Where the replay (:class:`~copilot_quant.gateway.clock.SimClock`) moves a bar at a time when stepped or at
``speed`` bars per second, :class:`WallClockMarket` follows the real clock. Every ``tick`` (one second by
default) each tracked symbol trades once: a seeded random-walk step from its last price, on the cent grid,
with a whole-share size. Every 5 seconds the ticks of the window just ended go out as 5-second bars (the
real-time bars and keepUpToDate updates clients see), and at every end of the chosen bar interval the
interval's bars join the market's history (``reqHistoricalData`` returns them from then on; the bar still
forming is never returned).

Hours: ``"always"`` (the default) trades around the clock, every day, so a paper order fills at any hour;
sessions are New York calendar days (DAY orders expire at midnight). ``"exchange"`` follows the NYSE
calendar: ticks only in regular sessions, no trading on holidays, DAY orders expire at the close, and a
market order placed while closed waits for the open, as at IB.

Order of events at each instant ``t``: first the windows and bars that end at or before ``t`` are closed
and published, then the trades at ``t``. A client that sees a trade stamped ``t`` (tick 45) or a current
time of ``t`` (``reqCurrentTime`` answers :attr:`WallClockMarket.now`, the last instant processed) can
therefore rely on every bar ending at or before ``t`` being complete.

Everything runs on the gateway loop; :meth:`WallClockMarket.catch_up` is the whole market logic and takes
explicit instants, so tests drive it without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from copilot_quant.data.bar_grid import bar_end_at
from copilot_quant.data.calendars import (
    is_market_open,
    next_session_close,
)
from copilot_quant.data.intervals import bar_duration
from copilot_quant.errors import ConfigError
from copilot_quant.gateway.market import Bar, MarketReplay

__all__ = ["DEFAULT_TICK", "HOURS", "REAL_TIME_BAR", "WallClockMarket", "live_bar_end"]

logger = logging.getLogger(__name__)

#: Trading-hours settings of the wall-clock market.
HOURS: Final = ("always", "exchange")
#: Time between two trades of a symbol.
DEFAULT_TICK: Final = pd.Timedelta(seconds=1)
#: Length of a real-time bar (IB's only real-time bar size).
REAL_TIME_BAR: Final = pd.Timedelta(seconds=5)
_EASTERN: Final = "America/New_York"
#: Daily volatility of the walk (a regular session's worth), and the average shares traded per second.
_DAILY_VOL: Final = 0.02
_SESSION_SECONDS: Final = 390 * 60
_SHARES_PER_SECOND: Final = 40.0
#: After a longer stall (a suspended laptop) the market jumps to the present instead of replaying it.
_MAX_CATCH_UP: Final = 600
_GRID: Final = 0.01


def live_bar_end(t: pd.Timestamp, interval: str, hours: str, calendar: str = "XNYS") -> pd.Timestamp:
    """The end of the ``interval`` bar that is forming at instant ``t`` (always after ``t``).

    Intraday bars are on IB's clock grid (:mod:`~copilot_quant.data.bar_grid`): around the clock, slots
    counted from midnight (a daily bar is a New York day); on exchange hours the same slots cut by the
    session (hourly: 09:30–10:00, 10:00–11:00 …, the last one ending at the close), and a closed market's
    next bar is the first one after the next open.
    """
    if interval == "1d":
        if hours == "always":
            return (t.tz_convert(_EASTERN).normalize() + pd.Timedelta(days=1)).tz_convert("UTC")
        return next_session_close(t, calendar)
    return bar_end_at(t, bar_duration(interval), calendar, around_clock=hours == "always")


@dataclass(slots=True)
class _Forming:
    """A bar being built from trades."""

    start: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float

    def add(self, price: float, size: float) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size

    def bar(self, symbol: str, end: pd.Timestamp) -> Bar:
        return Bar(symbol, self.start, end, self.open, self.high, self.low, self.close, self.volume)


class WallClockMarket:
    """Drives a :class:`MarketReplay` on the wall clock (see the module docstring).

    Args:
        market: the market whose quotes, listeners and history the live prices go to; its interval is
            the bar interval that completes in real time.
        hours: ``"always"`` or ``"exchange"``.
        tick: time between two trades of a symbol.
        seed: seed of the walk (with the symbol and the instant it fixes each trade).
        calendar: exchange calendar for ``hours="exchange"``.
    """

    def __init__(
        self,
        market: MarketReplay,
        *,
        hours: str = "always",
        tick: pd.Timedelta = DEFAULT_TICK,
        seed: int = 0,
        calendar: str = "XNYS",
    ) -> None:
        if hours not in HOURS:
            raise ConfigError(f"hours must be one of {', '.join(HOURS)}, got {hours!r}.")
        if not pd.Timedelta(0) < tick <= REAL_TIME_BAR or REAL_TIME_BAR % tick != pd.Timedelta(0):
            raise ConfigError(f"tick must divide 5 seconds, got {tick}.")
        self.market = market
        self.hours = hours
        self.tick = tick
        self.seed = int(seed)
        self.calendar = calendar
        self._sigma = _DAILY_VOL * math.sqrt(tick.total_seconds() / _SESSION_SECONDS)
        self._mean_size = _SHARES_PER_SECOND * tick.total_seconds()
        self._now: pd.Timestamp | None = None
        self._window_end: pd.Timestamp | None = None
        self._bar_end: pd.Timestamp | None = None
        self._windows: dict[str, _Forming] = {}
        self._bars: dict[str, _Forming] = {}
        self._task: asyncio.Task[None] | None = None

    # -- time ----------------------------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        """The last instant the market has processed (its trades and closed bars are out)."""
        if self._now is None:
            return self.market.now
        return self._now

    @staticmethod
    def wall() -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def start_instant(self, wall: pd.Timestamp | None = None) -> pd.Timestamp:
        """The grid instant at or before ``wall`` (default: now) the market starts from."""
        return (wall if wall is not None else self.wall()).floor(self.tick)

    def is_open(self, t: pd.Timestamp) -> bool:
        return self.hours == "always" or is_market_open(t, self.calendar)

    # -- the market logic ----------------------------------------------------------------------------
    def catch_up(self, until: pd.Timestamp) -> int:
        """Process every tick instant after :attr:`now` up to ``until``; returns how many it processed."""
        if self._now is None:
            self._begin(self.start_instant(until))
            return 1
        due = (until - self._now) // self.tick
        if due > _MAX_CATCH_UP:
            logger.warning(
                "the wall-clock market fell %s behind (the machine slept?); jumping to the present",
                self.tick * due,
            )
            self._jump(until.floor(self.tick))
            return 1
        for _ in range(int(due)):
            self._instant(self._now + self.tick)
        return max(0, int(due))

    def _begin(self, t: pd.Timestamp) -> None:
        self._now = t
        self._window_end = t.floor(REAL_TIME_BAR) + REAL_TIME_BAR
        self._bar_end = live_bar_end(t, self.market.interval, self.hours, self.calendar)
        if self.is_open(t):
            self._trade_all(t)

    def _jump(self, t: pd.Timestamp) -> None:
        """Drop the forming bars and restart at ``t`` (nothing is published for the missed time)."""
        self._windows.clear()
        self._bars.clear()
        self._begin(t)

    def _instant(self, t: pd.Timestamp) -> None:
        assert self._window_end is not None
        assert self._bar_end is not None
        if t >= self._window_end:
            self._close_windows(self._window_end)
            self._window_end = t.floor(REAL_TIME_BAR) + REAL_TIME_BAR
        if t >= self._bar_end:
            self._close_bars(self._bar_end)
            self._bar_end = live_bar_end(t, self.market.interval, self.hours, self.calendar)
        self._now = t
        if self.is_open(t):
            self._trade_all(t)

    def _close_windows(self, end: pd.Timestamp) -> None:
        bars = [forming.bar(symbol, end) for symbol, forming in sorted(self._windows.items())]
        self._windows.clear()
        self.market.publish_bars(bars)

    def _close_bars(self, end: pd.Timestamp) -> None:
        bars = [forming.bar(symbol, end) for symbol, forming in sorted(self._bars.items())]
        self._bars.clear()
        closed = self._session_closes(end)
        self.market.complete_bars(end, bars, session_closed=closed)

    def _session_closes(self, end: pd.Timestamp) -> bool:
        if self.hours == "always":
            return end == end.tz_convert(_EASTERN).normalize()
        return self.market.is_session_close(end)

    def _trade_all(self, t: pd.Timestamp) -> None:
        for symbol in self.market.symbols:
            self._trade(symbol, t)

    def _trade(self, symbol: str, t: pd.Timestamp) -> None:
        quote = self.market.quotes[symbol]
        last = quote.last if math.isfinite(quote.last) and quote.last > 0 else self._first_price(symbol)
        price, size = self._step(symbol, t, last)
        for book, start in ((self._windows, t.floor(REAL_TIME_BAR)), (self._bars, t)):
            forming = book.get(symbol)
            if forming is None:
                book[symbol] = _Forming(start, price, price, price, price, size)
            else:
                forming.add(price, size)
        self.market.trade(symbol, t, price, size)

    def _step(self, symbol: str, t: pd.Timestamp, last: float) -> tuple[float, float]:
        """The trade at ``t``: a log-normal step from ``last`` on the symbol's tick grid (the cent grid for
        stocks; a future's or a pair's own tick), and a whole-share size."""
        rng = np.random.default_rng(zlib.crc32(f"{self.seed}:{symbol}:{t.value}".encode()))
        z = float(rng.standard_normal())
        tick = self.market.tick_of(symbol)
        if tick is None:
            price = max(_GRID, round(round(last * math.exp(self._sigma * z) / _GRID) * _GRID, 2))
        else:
            price = max(tick, round(round(last * math.exp(self._sigma * z) / tick) * tick, 10))
        size = float(max(1, int(rng.poisson(self._mean_size))))
        return price, size

    @staticmethod
    def _first_price(symbol: str) -> float:
        return float(20 + zlib.crc32(symbol.encode()) % 480)

    # -- running on the loop -------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run on ``loop`` (the gateway's) until :meth:`stop`."""
        self.stop()
        self._task = loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while True:
            wall = self.wall()
            try:
                self.catch_up(wall)
            except Exception:  # the market's task boundary: log, skip to the present, keep trading
                logger.exception("the wall-clock market failed at %s; it carries on at the next tick", wall)
                self._now = wall.floor(self.tick)
            next_instant = self.now + self.tick
            await asyncio.sleep(max(0.0, (next_instant - self.wall()).total_seconds()))
