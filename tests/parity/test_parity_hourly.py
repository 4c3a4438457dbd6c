"""Backtest–live parity on hourly bars: the backtest's hours are IB's clock hours, which the live run gets
from the simulated gateway, and both trade the same bars (orders, fills, equity)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity import run_parity

pytestmark = pytest.mark.timeout(180)


class HourlyReversion(Strategy):
    """Bids a little under the last hour's close, offers a little over it once long; notes every bar stamp.

    Limit orders that fill inside a bar (at its low or high): a fill at a bar's very first tick has the
    previous bar's close time as its instant, which the parity report cannot tell apart from that bar.
    """

    seen: ClassVar[list[list[pd.Timestamp]]] = []

    def initialize(self) -> None:
        self.stamps: list[pd.Timestamp] = []
        HourlyReversion.seen.append(self.stamps)
        self.held = 0.0

    def on_fill(self, fill: Fill) -> None:
        self.held += fill.signed_quantity

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        self.stamps.append(pd.Timestamp(timestamp))
        close = float(data["Close"].iloc[-1])
        if self.open_orders():
            return []
        if self.held == 0:
            return [Order("AAPL", 20, "limit", "buy", limit_price=round(close * 0.998, 2))]
        return [Order("AAPL", self.held, "limit", "sell", limit_price=round(close * 1.002, 2))]


def test_hourly_parity_on_ibs_clock_hours() -> None:
    HourlyReversion.seen.clear()
    report = run_parity(HourlyReversion, "AAPL", "2024-03-04", "2024-03-08", data="synthetic", interval="1h")
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.fills, "the test means something only if it traded"
    assert len(report.backtest.fills) == len(report.live.fills)
    runs = [stamps for stamps in HourlyReversion.seen if stamps]
    assert len(runs) >= 2
    for stamps in runs:
        local = pd.DatetimeIndex(stamps).tz_convert("America/New_York")
        # IB's hourly bars: 09:30-10:00, then 10:00-11:00 ... 15:00-16:00 (data/bar_grid.py)
        assert (local.minute == 0).all(), list(local.strftime("%a %H:%M"))
        assert set(local.hour) <= set(range(10, 17))
    assert runs[-1] == runs[0][-len(runs[-1]) :]  # the live run saw the backtest's bars
