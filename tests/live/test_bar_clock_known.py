"""BarClock.known_now_ns: the broker's clock as far as it is known without asking IB (the loop thread may
not wait for an answer), and None exactly when now_ns would ask."""

from __future__ import annotations

import numpy as np
import pandas as pd
from copilot_quant.live.bar_clock import BarClock

DAY = 86_400 * 10**9
T0 = pd.Timestamp("2024-03-04 21:00", tz="UTC").value  # a session close


class FakeFeed:
    """Bars stamped at ``stamps``; IB's trade time as the streams caught up with it; counts clock asks."""

    def __init__(self) -> None:
        self.stamps = [T0, T0 + DAY]
        self.traded: int | None = None
        self.server = T0 + DAY + 60 * 10**9
        self.asks = 0

    def completed_stamps(self, symbol: str, now: int, after: int | None = None) -> np.ndarray:
        low = -1 if after is None else after
        return np.array([s for s in self.stamps if low < s <= now], dtype="int64")

    def completed_bars(self, symbol: str, now: pd.Timestamp | None = None) -> pd.DataFrame:
        raise AssertionError("not needed here")

    def last_bar_ns(self, symbol: str) -> int | None:
        return self.stamps[-1]

    def synced_trade_ns(self, symbols: list[str]) -> int | None:
        return self.traded

    def server_time(self) -> pd.Timestamp:
        self.asks += 1
        return pd.Timestamp(self.server, tz="UTC")


def _clock() -> tuple[BarClock, FakeFeed]:
    feed = FakeFeed()
    clock = BarClock(feed)  # type: ignore[arg-type]
    clock.start(["AAPL"])  # asks once: the clock at start
    return clock, feed


def test_unknown_before_any_clock_and_never_asks():
    feed = FakeFeed()
    clock = BarClock(feed)  # type: ignore[arg-type]
    clock.symbols = ["AAPL"]
    assert clock.known_now_ns() is None
    assert feed.asks == 0


def test_a_trade_proving_the_new_bar_closed_is_known_without_asking():
    clock, feed = _clock()
    asks = feed.asks
    feed.stamps.append(T0 + 2 * DAY)
    feed.traded = T0 + 2 * DAY + 10**9  # a trade after the new bar's close, the stream caught up with it
    assert clock.known_now_ns() == feed.traded
    assert feed.asks == asks
    assert list(clock.completed(feed.traded)) == [T0 + 2 * DAY]


def test_a_bar_newer_than_the_known_clock_needs_ibs_clock_so_it_is_none():
    clock, feed = _clock()
    asks = feed.asks
    feed.stamps.append(T0 + 2 * DAY)  # streamed, but no trade proves it closed
    assert clock.known_now_ns() is None
    assert feed.asks == asks  # the loop thread never asks: the worker's now_ns does
    feed.server = T0 + 2 * DAY + 5 * 10**9
    assert clock.now_ns() == feed.server
    assert feed.asks == asks + 1
