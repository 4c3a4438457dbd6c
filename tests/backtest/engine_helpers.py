"""Small builders for engine and broker tests: hand-made bars and an in-memory IDataFeed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from copilot_quant.backtest.interfaces import IDataFeed, combine_symbols
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.dates import resolve_range, slice_range


def daily_bars(rows: Sequence[tuple[float, float, float, float]], start: str = "2024-01-02") -> pd.DataFrame:
    """Daily bars from ``(open, high, low, close)`` rows, stamped 21:00 UTC (16:00 New York) on weekdays."""
    days = pd.bdate_range(start, periods=len(rows))
    index = pd.DatetimeIndex(days + pd.Timedelta(hours=21), name="timestamp").tz_localize("UTC")
    frame = pd.DataFrame(rows, columns=["Open", "High", "Low", "Close"], index=index, dtype=float)
    frame["Volume"] = 1_000.0
    return frame


def flat_bars(prices: Sequence[float], start: str = "2024-01-02") -> pd.DataFrame:
    """Bars with open = high = low = close = price."""
    return daily_bars([(p, p, p, p) for p in prices], start)


class FrameFeed(IDataFeed):
    """An IDataFeed over in-memory frames, one per symbol."""

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def get_historical_data(
        self,
        symbol: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        lo, hi = resolve_range(start_date, end_date)
        return slice_range(self.frames[symbol], lo, hi)

    def get_multiple_symbols(
        self,
        symbols: list[str],
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        return combine_symbols({s: self.get_historical_data(s, start_date, end_date) for s in symbols})


class Scripted(Strategy):
    """Returns pre-set orders at given bar numbers and records everything it is told."""

    def __init__(self, script: dict[int, Callable[[], list[Order]]] | None = None) -> None:
        super().__init__()
        self.script = script or {}
        self.calls: list[tuple[datetime, int]] = []
        self.fills: list[Fill] = []
        self.events: list[str] = []
        self.seen: list[Any] = []

    def initialize(self) -> None:
        self.events.append("initialize")

    def on_start(self) -> None:
        self.events.append("on_start")

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        bar = len(self.calls)
        self.calls.append((timestamp, len(data)))
        make = self.script.get(bar)
        return make() if make is not None else None

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.events.append(f"fill:{fill.order.order_id}")

    def on_stop(self) -> None:
        self.events.append("on_stop")

    def finalize(self) -> None:
        self.events.append("finalize")
