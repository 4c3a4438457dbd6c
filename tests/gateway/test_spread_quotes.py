"""The spread at the simulated gateway, seen by a plain ib_async client: bid < ask on the tick grid, a
market buy fills at the ask and a market sell at the bid, off-grid (adjusted) data put on the grid."""

from __future__ import annotations

import pytest
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.gateway.testing import connected_ib, running_gateway
from copilot_quant.model.costs import NoSlippage
from copilot_quant.model.spread import SpreadModel, to_grid, with_spread
from ib_async import MarketOrder, Stock

from .conftest import wait_until
from .test_tick_grid import on_grid

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

MODEL = SpreadModel(ticks=3)


def test_quotes_straddle_the_last_and_market_orders_fill_at_the_touch():
    feed = SampleDataProvider()
    frame = feed.get_historical_data("AAPL", interval="1d")
    start, next_open = frame.index[-10], float(frame["Open"].iloc[-9])
    assert not on_grid([next_open])  # adjusted data: the test means something only off the grid
    bid_at_open, ask_at_open = MODEL.quote(next_open)
    slippage = with_spread(NoSlippage(), MODEL)
    with (
        running_gateway(data=feed, symbols=["AAPL"], start=start, slippage=slippage) as gw,
        connected_ib(gw) as ib,
    ):
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        ticker = ib.reqMktData(aapl, "", False, False)
        assert wait_until(ib, lambda: ticker.bid > 0 and ticker.ask > 0 and ticker.last > 0)
        assert ticker.bid < ticker.ask
        assert (ticker.bid, ticker.ask) == MODEL.quote(ticker.last)
        assert on_grid([ticker.bid, ticker.ask, ticker.last])
        buy = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        sell = ib.placeOrder(aapl, MarketOrder("SELL", 4))
        assert wait_until(ib, lambda: buy.orderStatus.status == sell.orderStatus.status == "Submitted")
        gw.clock.step()  # the next bar: both fill at its open's touch
        assert wait_until(ib, lambda: buy.orderStatus.status == sell.orderStatus.status == "Filled")
        assert [f.execution.price for f in buy.fills] == [ask_at_open]
        assert [f.execution.price for f in sell.fills] == [bid_at_open]
        assert ask_at_open - bid_at_open == pytest.approx(0.03)
        assert wait_until(ib, lambda: ticker.last == to_grid(float(frame["Close"].iloc[-9])))
        assert ticker.bid < ticker.last < ticker.ask  # 3 ticks: one under the last, two over
        bars = ib.reqHistoricalData(aapl, "", "10 D", "1 day", "TRADES", True)
        assert bars
        assert on_grid([[b.open, b.high, b.low, b.close] for b in bars])
        bids = ib.reqHistoricalData(aapl, "", "10 D", "1 day", "BID", True)
        asks = ib.reqHistoricalData(aapl, "", "10 D", "1 day", "ASK", True)
        assert [b.close for b in bids] == [MODEL.quote(b.close)[0] for b in bars]
        assert [a.close for a in asks] == [MODEL.quote(b.close)[1] for b in bars]
