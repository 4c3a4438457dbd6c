"""Prices IB would print: on the cent grid, with whole-share volumes, whatever the client reads them from."""

from __future__ import annotations

import numpy as np
import pytest
from copilot_quant.data.providers import SampleDataProvider, SyntheticDataProvider
from copilot_quant.data.resample import aggregate_bars
from copilot_quant.gateway.messages.historical import HistoricalBar, historical_data
from copilot_quant.gateway.messages.market_data import real_time_bar, tick_size
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import MarketOrder, Stock

from .conftest import wait_until


def on_grid(values) -> bool:
    cents = np.asarray(values, dtype=float) * 100
    return bool(np.all(np.abs(cents - np.round(cents)) < 1e-6)) and bool(np.all(np.asarray(values) >= 0.01))


@pytest.mark.parametrize("interval", ["1m", "1h", "1d"])
def test_synthetic_prices_are_on_the_cent_grid_with_whole_share_volumes(interval):
    feed = SyntheticDataProvider(["AAPL", "PENNY"], seed=5, start="2024-01-02", periods=2000, interval="1m")
    for symbol in ("AAPL", "PENNY"):
        bars = feed.get_historical_data(symbol, interval=interval)
        assert on_grid(bars[["Open", "High", "Low", "Close"]].to_numpy())
        assert np.all(bars["Volume"].to_numpy() == np.round(bars["Volume"].to_numpy()))


def test_rounded_minutes_still_aggregate_exactly_to_the_rounded_days():
    feed = SyntheticDataProvider(["AAPL"], seed=5, start="2024-01-02", periods=5 * 390, interval="1m")
    minutes = feed.get_historical_data("AAPL", interval="1m")
    days = feed.get_historical_data("AAPL", interval="1d")
    rebuilt = aggregate_bars(minutes, "1m", "1d", "XNYS")
    assert len(rebuilt) == 5
    assert rebuilt.equals(days)


def test_fractional_volumes_of_adjusted_data_go_out_as_whole_shares():
    [*_, volume, _, _] = historical_data(
        1, "", "", [HistoricalBar("20130301", 1, 1, 1, 1, 151295018.6, 1, 1)]
    )
    assert volume == "151295019"
    assert real_time_bar(1, 0, 1.0, 1.0, 1.0, 1.0, 1234.4, 1.0, 1)[8] == "1234"
    assert tick_size(1, 8, 99.5)[4] == "100"


@pytest.mark.network
@pytest.mark.timeout(60)
def test_the_gateway_fills_and_quotes_on_the_grid_and_reports_whole_volumes_of_adjusted_data():
    with running_gateway(data=SampleDataProvider(), symbols=["AAPL"]) as gw, connected_ib(gw) as ib:
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        bars = ib.reqHistoricalData(aapl, "", "10 D", "1 day", "TRADES", True)
        assert bars
        assert all(float(bar.volume).is_integer() for bar in bars)
        # adjusted data goes out on the grid (issue 13), as IB would print it
        assert on_grid([[b.open, b.high, b.low, b.close] for b in bars])
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
        gw.clock.step()  # past the data's end: the market walks on, from the last close put on the grid
        assert wait_until(ib, lambda: trade.orderStatus.status == "Filled")
        assert on_grid([fill.execution.price for fill in trade.fills])
    feed = SyntheticDataProvider(["AAPL"], seed=5, start="2024-01-02", periods=2000, interval="1m")
    with running_gateway(data=feed, bar_interval="1m") as gw, connected_ib(gw) as ib:
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
        gw.clock.step()
        assert wait_until(ib, lambda: trade.orderStatus.status == "Filled")
        assert on_grid([fill.execution.price for fill in trade.fills])
        bars = ib.reqHistoricalData(aapl, "", "1 D", "1 min", "TRADES", True)
        assert on_grid([[b.open, b.high, b.low, b.close] for b in bars])
