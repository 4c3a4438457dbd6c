"""Bounded, thread-safe caches the live data adapter keeps: recent bars per symbol and the latest quotes.

:class:`BarCache` holds the last ``size`` bars per ``(symbol, interval)``; newer data for an existing
timestamp replaces the older row, so merging an overlapping backfill after a reconnect never duplicates
bars. :class:`QuoteBook` holds the latest tick-derived quote per symbol and lets a thread wait (bounded)
for the first price after subscribing.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from copilot_quant.backtest.interfaces import BAR_COLUMNS
from copilot_quant.data.dates import slice_range
from copilot_quant.errors import ConfigError, DataUnavailableError

__all__ = ["BarCache", "Quote", "QuoteBook"]


class BarCache:
    """The last ``size`` bars per ``(symbol, interval)``. All methods are thread-safe and return copies."""

    __slots__ = ("_frames", "_lock", "size")

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise ConfigError(f"cache_size must be at least 1, got {size}")
        self.size = int(size)
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}
        self._lock = threading.Lock()

    def merge(self, symbol: str, interval: str, bars: pd.DataFrame) -> pd.DataFrame:
        """Add ``bars`` (newer rows win on equal timestamps), trim to ``size``; returns the cached frame."""
        key = (symbol, interval)
        with self._lock:
            old = self._frames.get(key)
            if old is None or old.empty:
                merged = bars
            elif bars.empty:
                merged = old
            else:
                merged = pd.concat([old, bars])
                merged = merged[~merged.index.duplicated(keep="last")].sort_index()
            merged = merged.iloc[-self.size :]
            self._frames[key] = merged
            return merged.copy()

    def get(self, symbol: str, interval: str, *, copy: bool = True) -> pd.DataFrame | None:
        """The cached bars. ``copy=False`` returns the cached object itself: cheap, and safe for readers
        that only slice it (the cache never modifies a frame in place; merges build new ones)."""
        with self._lock:
            frame = self._frames.get((symbol, interval))
            if frame is None:
                return None
            return frame.copy() if copy else frame

    def fallback(
        self,
        symbol: str,
        interval: str,
        lo: pd.Timestamp | None,
        hi: pd.Timestamp | None,
        why: str,
        *,
        enabled: bool = True,
    ) -> pd.DataFrame:
        """The cached bars in ``[lo, hi]``, served while IB cannot answer (``why``); a
        :class:`DataUnavailableError` that says what to do when nothing (``enabled=False``: never) covers it."""
        cached = self.get(symbol, interval) if enabled else None
        if cached is None or cached.empty:
            raise DataUnavailableError(
                f"no {interval} bars for {symbol}: {why}, and nothing is cached. Call connect() (is TWS/IB "
                "Gateway running?) and request the data once while connected so it can be cached."
            )
        part = slice_range(cached, lo, hi)
        if part.empty:
            raise DataUnavailableError(
                f"no {interval} bars for {symbol} in the requested range: {why}; the cache only covers "
                f"{cached.index[0]} .. {cached.index[-1]}."
            )
        return part

    def last_stamp(self, symbol: str, interval: str) -> pd.Timestamp | None:
        with self._lock:
            frame = self._frames.get((symbol, interval))
            return None if frame is None or frame.empty else frame.index[-1]

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted({s for s, _ in self._frames})

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._frames


@dataclass(frozen=True, slots=True)
class Quote:
    """The latest market state of one symbol, as far as ticks told us. Missing fields are NaN."""

    symbol: str
    price: float
    bid: float
    ask: float
    open: float
    high: float
    low: float
    close: float
    volume: float
    time: datetime


def _finite(value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


class QuoteBook:
    """Latest :class:`Quote` per symbol, written on the IB loop thread and read from any thread."""

    __slots__ = ("_cond", "_quotes")

    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}
        self._cond = threading.Condition()

    def update(
        self,
        symbol: str,
        *,
        last: object,
        bid: object,
        ask: object,
        open_: object,
        high: object,
        low: object,
        close: object,
        volume: object,
        time: datetime,
    ) -> Quote | None:
        """Record a tick. The price is the last trade, else the bid/ask midpoint; sizes may be NaN.

        Returns the new quote, or ``None`` when the tick carried no usable price (nothing is overwritten).
        """
        b, a, lst = _finite(bid), _finite(ask), _finite(last)
        price = lst
        if math.isnan(price) and not (math.isnan(b) or math.isnan(a)) and b > 0 and a > 0:
            price = (b + a) / 2
        with self._cond:
            old = self._quotes.get(symbol)
            if math.isnan(price) or price <= 0:
                if old is None:
                    return None
                price = old.price
            quote = Quote(
                symbol=symbol,
                price=price,
                bid=b,
                ask=a,
                open=_finite(open_),
                high=_finite(high),
                low=_finite(low),
                close=_finite(close),
                volume=_finite(volume),
                time=time,
            )
            self._quotes[symbol] = quote
            self._cond.notify_all()
            return quote

    def get(self, symbol: str) -> Quote | None:
        with self._cond:
            return self._quotes.get(symbol)

    def wait_for(self, symbols: list[str], timeout: float) -> bool:
        """Block up to ``timeout`` seconds until every symbol has a quote; returns whether they all do."""
        with self._cond:
            return self._cond.wait_for(lambda: all(s in self._quotes for s in symbols), timeout)

    def forget(self, symbol: str) -> None:
        with self._cond:
            self._quotes.pop(symbol, None)

    def as_bar(self, symbol: str) -> pd.Series | None:
        """The day's OHLCV so far as a Series named by the quote's time (the last trade's exchange time
        when IB sent it; NaN where IB sent nothing)."""
        quote = self.get(symbol)
        if quote is None:
            return None
        values = [quote.open, quote.high, quote.low, quote.price, quote.volume]
        return pd.Series(
            dict(zip(BAR_COLUMNS, values, strict=True)), name=pd.Timestamp(quote.time), dtype="float64"
        )
