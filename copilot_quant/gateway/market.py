"""The simulated market: replays the data source's bars forward, then a seeded random walk.

Timing model: the market's ``now`` is the close stamp of the last bar it has delivered (bars are stamped at
their end, as everywhere in the project). A bar with ``end <= now`` is history; nothing after ``now`` is
visible to anyone. :meth:`MarketReplay.advance` moves ``now`` to the next bar end and turns that bar, for
every tracked symbol, into a short price path (open → low → high → close when close >= open, else open →
high → low → close: the project's shared intrabar rule) delivered to the listeners tick by tick. Symbols
with data after ``now`` replay it; once a symbol's data runs out it continues with a random walk seeded by
``(seed, symbol, bar end)``, so a rerun produces the same prices.

Quotes: with a spread model (``quote_model``, :mod:`copilot_quant.model.spread`) each bar gets its width
in ticks from the bars before it — data bars when loaded, generated bars (and the wall-clock market's
forming bar) from the last bars before them — and every trade is quoted at that width, as the backtest
quotes the same bars. Without one, ``spread`` (price units) only shows in the quotes. The quoting itself
(bid/ask, BID/ASK/MIDPOINT bars, widths) is :mod:`copilot_quant.gateway.quoting`; the values (``Bar``,
``PricePoint``, ``Quote``, ``price_path``) are :mod:`copilot_quant.gateway.market_types`, re-exported here.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from copilot_quant.data.bar_grid import bar_end_at, bar_starts_of_ends
from copilot_quant.data.calendars import (
    next_session_close,
    previous_session_close,
    session_open,
)
from copilot_quant.data.intervals import INTRADAY_INTERVALS, bar_duration
from copilot_quant.errors import ConfigError, DataError, GatewayError
from copilot_quant.gateway.market_types import Bar, PricePoint, Quote, price_path
from copilot_quant.gateway.quoting import MarketQuotes
from copilot_quant.model.ports import IDataFeed
from copilot_quant.model.spread import SpreadModel, grid_array

__all__ = ["Bar", "MarketReplay", "PricePoint", "Quote", "price_path"]

logger = logging.getLogger(__name__)

REPLAY_INTERVALS = frozenset(INTRADAY_INTERVALS | {"1d"})
_DAILY_VOL = 0.02


@dataclass(slots=True)
class _Series:
    """A symbol's bars at the replay interval (data first, generated bars appended as they happen)."""

    ends: np.ndarray  # int64 ns UTC
    values: np.ndarray  # (n, 5) float: open, high, low, close, volume
    generated: list[Bar] = field(default_factory=list)
    #: Each data bar's spread in ticks (from the bars before it), when a spread model is on.
    widths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


TickListener = Callable[[PricePoint, Quote], None]
BarListener = Callable[[Bar], None]
#: Called once per step after every bar was delivered: ``(now, session_closed)``.
StepListener = Callable[[pd.Timestamp, bool], None]


class MarketReplay(MarketQuotes):
    """Bars → price paths → listeners. Not thread-safe: drive it from the gateway's event loop.

    Args:
        feed: any ``IDataFeed``; bars are loaded per symbol at ``interval``.
        interval: bar interval of the replay (``'1m'`` … ``'1h'`` or ``'1d'``).
        start: replay start (the market's first ``now``); ``None`` = the last bar of the data.
        spread: bid/ask spread in price units around each path price (0: fills equal bar prices).
        quote_model: a :class:`~copilot_quant.model.spread.SpreadModel` quoting bid/ask (the one the
            fills' slippage model uses, so a market buy fills at the quoted ask); overrides ``spread``.
        seed: seed of the random walk after the data ends.
        calendar: exchange calendar for sessions.
    """

    def __init__(
        self,
        feed: IDataFeed,
        interval: str = "1d",
        start: pd.Timestamp | None = None,
        *,
        spread: float = 0.0,
        seed: int = 0,
        calendar: str = "XNYS",
        quote_size: float = 100.0,
        quote_model: SpreadModel | None = None,
    ) -> None:
        if interval not in REPLAY_INTERVALS:
            raise ConfigError(
                f"bar_interval {interval!r} cannot be replayed; use one of {', '.join(sorted(REPLAY_INTERVALS))}."
            )
        if spread < 0 or not math.isfinite(spread):
            raise ConfigError(f"spread must be a finite price distance >= 0, got {spread}.")
        self.feed = feed
        self.interval = interval
        self.spread = float(spread)
        #: The shared spread model (the fills' touch), when on: it quotes bid/ask instead of ``spread``.
        self.quote_model = quote_model
        self.seed = int(seed)
        self.calendar = calendar
        self.quote_size = float(quote_size)
        self._duration = bar_duration(interval) if interval != "1d" else pd.Timedelta(days=1)
        self._start = None if start is None else _utc(start)
        self._now: pd.Timestamp | None = self._start
        self._series: dict[str, _Series] = {}
        #: Each symbol's spread now (ticks): the width of the bar trading or, between bars, of the next.
        self._width: dict[str, int] = {}
        self.quotes: dict[str, Quote] = {}
        self.tick_listeners: list[TickListener] = []
        self.bar_listeners: list[BarListener] = []
        self.step_listeners: list[StepListener] = []
        #: The tick size of a symbol whose grid is not the stocks' cent grid (futures, forex pairs): the
        #: gateway sets it from its contracts; None keeps the stock grid.
        self.tick_of: Callable[[str], float | None] = lambda symbol: None

    # -- time ----------------------------------------------------------------------------------------
    @property
    def now(self) -> pd.Timestamp:
        """The simulated time: the end of the last delivered bar (bars ending at or before it are history)."""
        if self._now is None:
            self._now = self._default_start()
        return self._now

    def _default_start(self) -> pd.Timestamp:
        ends = [s.ends[-1] for s in self._series.values() if len(s.ends)]
        if ends:
            return pd.Timestamp(int(max(ends)), tz="UTC")
        wall = pd.Timestamp.now(tz="UTC")
        if self.interval == "1d":
            return previous_session_close(wall, self.calendar)
        return wall.floor("min")

    def resume(self, at: pd.Timestamp, symbols: list[str], *, max_bars: int = 20_000) -> int:
        """Continue an earlier run's replay at ``at`` (its saved clock), tracking ``symbols``.

        Replays silently (no listener hears it) from where the data leaves off up to ``at``, so the
        random walk after the data's end comes out exactly as it did in that run: same prices, same
        history. Call it instead of :meth:`track_all`, before anything reads :attr:`now`. Returns how
        many bars it replayed; beyond ``max_bars`` it jumps to ``at`` instead (logged).
        """
        if self._now is not None or self.quotes:
            raise GatewayError("resume() must come before the replay starts (before now is read)")
        target = _utc(at)
        self._load_all(symbols)
        self._now = min(target, self._default_start())
        for symbol in symbols:
            self.track(symbol)
        listeners = (self.tick_listeners, self.bar_listeners, self.step_listeners)
        self.tick_listeners, self.bar_listeners, self.step_listeners = [], [], []
        replayed = 0
        try:
            while self.next_bar_end() <= target:
                if replayed >= max_bars:
                    logger.warning(
                        "resuming at %s needs more than %d bars of replay; jumping there (generated prices "
                        "restart from the data's last close)",
                        target,
                        max_bars,
                    )
                    self._now = target
                    break
                self.advance()
                replayed += 1
        finally:
            self.tick_listeners, self.bar_listeners, self.step_listeners = listeners
        return replayed

    def data_span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last bar end of the data loaded so far (all symbols), or None when there is none."""
        loaded = [s.ends for s in self._series.values() if len(s.ends)]
        if not loaded:
            return None
        first = min(int(ends[0]) for ends in loaded)
        last = max(int(ends[-1]) for ends in loaded)
        return pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC")

    def symbols_without_data(self) -> list[str]:
        """Loaded symbols the data source has no bars for at this interval (they trade as a random walk)."""
        return sorted(symbol for symbol, series in self._series.items() if not len(series.ends))

    # -- symbols -------------------------------------------------------------------------------------
    def track_all(self, symbols: list[str]) -> None:
        """Track several symbols; their data is loaded before ``now`` is fixed (default start = last bar)."""
        self._load_all(symbols)
        for symbol in symbols:
            self.track(symbol)

    def _load_all(self, symbols: list[str]) -> None:
        for symbol in symbols:
            if symbol not in self._series:
                self._series[symbol] = self._load(symbol)

    def track(self, symbol: str) -> Quote:
        """Start replaying ``symbol`` (idempotent); returns its quote, seeded from its last bar before now."""
        quote = self.quotes.get(symbol)
        if quote is not None:
            return quote
        series = self._series.get(symbol)
        if series is None:
            series = self._series[symbol] = self._load(symbol)
        quote = Quote(symbol)
        now = self.now.value
        i = int(np.searchsorted(series.ends, now, side="right")) - 1
        self._width[symbol] = self._width_after(symbol, series, i + 1)
        if i >= 0:
            o, h, lo, c, v = series.values[i]
            quote.last = quote.bid = quote.ask = float(c)
            quote.close = float(series.values[i - 1][3]) if i > 0 else float(o)
            quote.open, quote.high, quote.low, quote.volume = float(o), float(h), float(lo), float(v)
            quote.time = pd.Timestamp(int(series.ends[i]), tz="UTC")
            self._apply_spread(quote, quote.last)
        self.quotes[symbol] = quote
        return quote

    @property
    def symbols(self) -> list[str]:
        return sorted(self.quotes)

    def _load(self, symbol: str) -> _Series:
        try:
            frame = self.feed.get_historical_data(symbol, interval=self.interval)
        except DataError as exc:
            logger.info("No %s data for %s (%s); it starts as a random walk.", self.interval, symbol, exc)
            frame = pd.DataFrame()
        if frame.empty:
            return _Series(np.empty(0, dtype=np.int64), np.empty((0, 5)))
        ends = pd.DatetimeIndex(frame.index).as_unit("ns").asi8.copy()
        values = frame[["Open", "High", "Low", "Close", "Volume"]].to_numpy(dtype=float, copy=True)
        # IB prints on the tick grid: off-grid data (split/dividend-adjusted prices) is put on it here.
        tick = self.tick_of(symbol)
        values[:, :4] = grid_array(values[:, :4]) if tick is None else np.round(values[:, :4] / tick) * tick
        widths = np.zeros(len(ends), dtype=np.int64)
        if self.quote_model is not None:  # the backtest computes the same widths from the same bars
            widths = self.quote_model.widths(values[:, 0], values[:, 1], values[:, 2], values[:, 3], tick)
        return _Series(ends, values, widths=widths)

    def _width_after(self, symbol: str, series: _Series, count: int) -> int:
        """The spread of the bar after the first ``count`` bars of ``series`` (data, then generated), in
        ticks of ``symbol``'s own tick."""
        model = self.quote_model
        if model is None:
            return 0
        data = len(series.ends)
        if count < data:
            return int(series.widths[count])
        keep = model.window + 1
        generated = series.generated[max(0, count - data - keep) : count - data]
        need = keep - len(generated)
        parts = [series.values[max(0, data - need) : data, :4]] if need > 0 else []
        parts.append(
            np.array([[b.open, b.high, b.low, b.close] for b in generated], dtype=float).reshape(-1, 4)
        )
        prices = np.vstack(parts)
        if not len(prices):
            return model.ticks
        return model.next_width(prices[:, 0], prices[:, 1], prices[:, 2], prices[:, 3], self.tick_of(symbol))

    # -- history ---------------------------------------------------------------------------------------
    def generated_bars(self, symbol: str) -> list[Bar]:
        """Bars the replay produced for ``symbol`` beyond its data (random walk), oldest first."""
        series = self._series.get(symbol)
        return [] if series is None else list(series.generated)

    def replayed_frame(self, symbol: str) -> pd.DataFrame:
        """Every bar of ``symbol`` at the replay interval up to now: data bars and generated bars."""
        self.track(symbol)
        series = self._series[symbol]
        cut = int(np.searchsorted(series.ends, self.now.value, side="right"))
        ends = series.ends[:cut]
        frame = pd.DataFrame(
            series.values[:cut], index=pd.DatetimeIndex(ends).tz_localize("UTC"), columns=_COLUMNS
        )
        if series.generated:
            extra = pd.DataFrame(
                [[b.open, b.high, b.low, b.close, b.volume] for b in series.generated if b.end <= self.now],
                index=pd.DatetimeIndex([b.end for b in series.generated if b.end <= self.now]),
                columns=_COLUMNS,
            )
            extra = extra[
                extra.index > (frame.index[-1] if len(frame) else pd.Timestamp.min.tz_localize("UTC"))
            ]
            frame = pd.concat([frame, extra])
        return frame

    # -- stepping --------------------------------------------------------------------------------------
    def next_bar_end(self) -> pd.Timestamp:
        """When the next bar closes: the earliest data bar after now, else the calendar's next bar end."""
        now = self.now
        pending = [
            int(s.ends[j])
            for s in self._series.values()
            if (j := int(np.searchsorted(s.ends, now.value, side="right"))) < len(s.ends)
        ]
        if pending:
            return pd.Timestamp(min(pending), tz="UTC")
        if self.interval == "1d":
            return next_session_close(now, self.calendar)
        return bar_end_at(now, self._duration, self.calendar)  # IB's clock grid, cut by the session

    def bar_start(self, end: pd.Timestamp, previous_end: pd.Timestamp | None) -> pd.Timestamp:
        """When a bar ending at ``end`` opened (session open for daily bars)."""
        if self.interval == "1d":
            try:
                return session_open(
                    end.tz_convert("America/New_York").normalize().tz_localize(None), self.calendar
                )
            except DataError:
                return end - pd.Timedelta(hours=6, minutes=30)
        start = pd.Timestamp(
            int(
                bar_starts_of_ends(
                    np.array([end.value], dtype=np.int64), self._duration.value, self.calendar
                )[0]
            ),
            tz="UTC",
        )
        if previous_end is not None and previous_end > start:
            start = previous_end  # data with a gap-free but off-grid past: never overlap the bar before
        return start

    def advance(self) -> list[Bar]:
        """Deliver the next bar of every tracked symbol and move ``now`` to its end; returns the bars."""
        now = self.now
        end = self.next_bar_end()
        bars: list[Bar] = []
        for symbol in sorted(self._series):
            bar = self._bar_at(symbol, end, now)
            if bar is not None:
                bars.append(bar)
        self._now = end
        for bar in bars:
            self._trade_through(bar)
        # Account marks (step listeners) go out before the bars: a client that acts on a bar then finds
        # its account already valued at that bar, and nothing queues behind the bar on the socket.
        closed = self.is_session_close(end)
        for listener in list(self.step_listeners):
            listener(end, closed)
        for bar in bars:
            for bar_listener in list(self.bar_listeners):
                bar_listener(bar)
        return bars

    def pass_time(self, span: pd.Timedelta) -> pd.Timestamp:
        """Move ``now`` on by ``span`` with nothing trading, stopping short of the next bar's end (a
        paused replay where time passes after a close); returns the new ``now``."""
        target = self.now + span
        self._now = min(target, self.next_bar_end() - pd.Timedelta(1, "ns"))
        return self._now

    # -- driven from outside (the wall-clock market) --------------------------------------------------
    def trade(self, symbol: str, time: pd.Timestamp, price: float, size: float) -> None:
        """One trade of ``symbol`` at ``time``: update its quote and tell the tick listeners."""
        quote = self.quotes[symbol]
        self._roll_session(quote, time.tz_convert("America/New_York").normalize(), price)
        self._record(quote, time, price, size)
        point = PricePoint(symbol, time, price, quote.bid, quote.ask, size, width=self.width_now(symbol))
        for listener in list(self.tick_listeners):
            listener(point, quote)

    def publish_bars(self, bars: list[Bar]) -> None:
        """Hand ``bars`` (live 5-second bars) to the bar listeners: real-time bars, keepUpToDate updates."""
        for bar in bars:
            for bar_listener in list(self.bar_listeners):
                bar_listener(bar)

    def complete_bars(self, end: pd.Timestamp, bars: list[Bar], *, session_closed: bool) -> None:
        """Bars of the replay interval ending at ``end`` happened: they become history, ``now`` moves to
        ``end`` and the step listeners run (marks; DAY orders expire when ``session_closed``)."""
        for bar in bars:
            series = self._series[bar.symbol]
            series.generated.append(bar)
            # the next bar (forming from now on) quotes at the width these bars give
            self._width[bar.symbol] = self._width_after(
                bar.symbol, series, len(series.ends) + len(series.generated)
            )
        self._now = end
        for listener in list(self.step_listeners):
            listener(end, session_closed)

    def is_session_close(self, instant: pd.Timestamp, calendar: str | None = None) -> bool:
        """Whether ``instant`` is the close of a trading session of ``calendar`` (default: the market's)
        (DAY orders expire there)."""
        try:
            closes = next_session_close(instant - pd.Timedelta(microseconds=1), calendar or self.calendar)
            return bool(closes == instant)
        except DataError:
            return False

    def _bar_at(self, symbol: str, end: pd.Timestamp, previous_end: pd.Timestamp) -> Bar | None:
        series = self._series[symbol]
        start = self.bar_start(end, previous_end)
        j = int(np.searchsorted(series.ends, end.value, side="left"))
        if j < len(series.ends) and series.ends[j] == end.value:
            o, h, lo, c, v = (float(x) for x in series.values[j])
            width = int(series.widths[j]) if self.quote_model is not None else 0
            return Bar(symbol, start, end, o, h, lo, c, v, width)
        if j < len(series.ends):
            return None  # the symbol has data later but no bar here (a gap): it does not trade now
        bar = self._random_bar(symbol, start, end)
        if bar is not None:
            series.generated.append(bar)
        return bar

    def _random_bar(self, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> Bar | None:
        quote = self.quotes[symbol]
        last = quote.last
        if not math.isfinite(last) or last <= 0:
            last = 20.0 + zlib.crc32(symbol.encode()) % 480
        key = zlib.crc32(f"{self.seed}:{symbol}:{end.value}".encode())
        rng = np.random.default_rng(key)
        minutes = 390.0 if self.interval == "1d" else self._duration.total_seconds() / 60.0
        sigma = _DAILY_VOL * math.sqrt(minutes / 390.0)
        z, u1, u2 = (float(x) for x in rng.standard_normal(3))
        tick = self.tick_of(symbol)

        def on_grid(price: float) -> float:
            if tick is None:
                return max(0.01, round(price, 2))
            return max(tick, round(round(price / tick) * tick, 10))

        open_ = on_grid(last)  # on the tick grid (off-grid data, e.g. adjusted, ends off it)
        close = on_grid(open_ * math.exp(sigma * z))
        high = on_grid(max(open_, close) * (1.0 + abs(u1) * sigma / 2))
        low = on_grid(min(open_, close) * (1.0 - abs(u2) * sigma / 2))
        volume = float(int(1_000_000 * minutes / 390.0 * (0.5 + float(rng.random()))) // 100 * 100 or 100)
        series = self._series[symbol]
        width = self._width_after(symbol, series, len(series.ends) + len(series.generated))
        # The walk continues at the last price (put on the cent grid); every price after it is cents.
        high, low = max(high, open_, close), min(low, open_, close)
        return Bar(symbol, start, end, open_, high, low, close, volume, width)

    def _trade_through(self, bar: Bar) -> None:
        """Trade ``bar``'s intrabar path: one tick per price to the tick listeners (the bar itself follows)."""
        quote = self.quotes[bar.symbol]
        self._roll_session(quote, bar.start.tz_convert("America/New_York").normalize(), bar.open)
        self._width[bar.symbol] = bar.width
        path = price_path(bar.open, bar.high, bar.low, bar.close)
        step = (bar.end - bar.start) / (len(path) - 1)
        size = max(1.0, float(int(bar.volume / len(path))))
        for k, price in enumerate(path):
            time = bar.start + step * k
            self._record(quote, time, price, size)
            point = PricePoint(
                bar.symbol,
                time,
                price,
                quote.bid,
                quote.ask,
                size,
                gap=k == 0,
                bar_volume=bar.volume,
                width=bar.width,
            )
            for listener in list(self.tick_listeners):
                listener(point, quote)

    @staticmethod
    def _roll_session(quote: Quote, session: pd.Timestamp, first_price: float) -> None:
        """A new session starts: yesterday's last becomes the close; open, range and volume restart."""
        if quote.session is not None and session == quote.session:
            return
        quote.close = quote.last if math.isfinite(quote.last) else first_price
        quote.volume = 0.0
        quote.open, quote.high, quote.low = first_price, first_price, first_price
        quote.session = session

    def _record(self, quote: Quote, time: pd.Timestamp, price: float, size: float) -> None:
        quote.last = price
        quote.last_size = size
        quote.volume += size
        quote.high = max(quote.high, price)
        quote.low = min(quote.low, price)
        quote.time = time
        self._apply_spread(quote, price)


_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("America/New_York")
    return ts.tz_convert("UTC")
