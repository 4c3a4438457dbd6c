"""Hourly bars through the real ib_async client are IB's clock hours (09:30, 10:00, 11:00 … 15:00 starts),
and the live side's frame of them is exactly the backtest's aggregation of the same minutes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from copilot_quant.brokers.ib_mapping import bars_to_frame
from copilot_quant.data.resample import aggregate_bars
from copilot_quant.gateway.testing import connected_ib
from ib_async import Stock

pytestmark = pytest.mark.timeout(60)

_NY = "America/New_York"


def _session_starts(bars, day: dt.date) -> list[str]:
    return [
        f"{b.date.astimezone(pd.Timestamp(0, tz=_NY).tzinfo):%H:%M}" for b in bars if b.date.date() == day
    ]


def test_hourly_history_is_clock_hours_and_matches_the_backtest_aggregation(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        bars = ib.reqHistoricalData(aapl, "", "2 D", "1 hour", "TRADES", True, formatDate=1)
        assert bars
        first_day = bars[0].date.astimezone(pd.Timestamp(0, tz=_NY).tzinfo).date()
        # IB: 09:30-10:00, then clock hours (ib_insync's bar_data notebook: 15:30, 16:00, 17:00 CET)
        assert _session_starts(bars, first_day) == [
            "09:30",
            "10:00",
            "11:00",
            "12:00",
            "13:00",
            "14:00",
            "15:00",
        ]
        live = bars_to_frame(bars, "1h")
        minutes = minute_gateway.core.market.replayed_frame("AAPL")
        backtest = aggregate_bars(minutes, "1m", "1h")
        backtest = backtest[(backtest.index >= live.index[0]) & (backtest.index <= live.index[-1])]
        pd.testing.assert_index_equal(live.index, backtest.index, check_names=False)
        for column in ("Open", "High", "Low", "Close"):
            assert live[column].to_numpy() == pytest.approx(backtest[column].to_numpy())


def test_keep_up_to_date_hourly_bars_start_on_the_clock_hour(minute_gateway):
    with connected_ib(minute_gateway) as ib:
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        bars = ib.reqHistoricalData(aapl, "", "1 D", "1 hour", "TRADES", True, keepUpToDate=True)
        minute_gateway.clock.step(90)  # into (or across) the next clock hours
        ib.sleep(0.3)
        now = minute_gateway.clock.now.tz_convert(_NY)
        forming = bars[-1].date.astimezone(now.tzinfo)
        # the forming bar is dated by its clock hour's start, or 09:30 for the first bar of the session
        assert forming.minute == 0 or (forming.hour, forming.minute) == (9, 30)
        assert forming <= now.to_pydatetime() < forming + dt.timedelta(hours=1)
        ib.cancelHistoricalData(bars)
