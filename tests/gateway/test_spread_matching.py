"""The spread at the gateway's matching and in its bars, through a plain ib_async client: limits fill
when the bid/ask crosses them (as in the backtest), MIDPOINT/BID/ASK bars are the quote's, and the
data-derived default width follows the bars."""

from __future__ import annotations

import numpy as np
import pytest
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.gateway.server import GatewayConfig
from copilot_quant.gateway.testing import connected_ib, running_gateway
from copilot_quant.model.costs import NoSlippage
from copilot_quant.model.spread import (
    DEFAULT_SPREAD,
    SpreadModel,
    grid_array,
    quote_at,
    spread_of,
    with_spread,
)
from ib_async import LimitOrder, Stock, StopOrder

from tests.backtest.engine_helpers import FrameFeed, daily_bars

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

# bar 1: open 10.40 → low 10.10 → high 11.00 → close 10.80
BARS = daily_bars([(10.0, 10.5, 9.5, 10.2), (10.4, 11.0, 10.1, 10.8), (10.8, 10.9, 10.7, 10.85)])


def test_limits_fill_when_the_quote_crosses_them_and_stops_on_trades():
    slippage = with_spread(NoSlippage(), SpreadModel(ticks=2))  # bid = last - 0.01, ask = last + 0.01
    feed = FrameFeed({"AAPL": BARS})
    with (
        running_gateway(data=feed, symbols=["AAPL"], start=BARS.index[0], slippage=slippage) as gw,
        connected_ib(gw) as ib,
    ):
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        orders = {
            "buy at the low": LimitOrder("BUY", 1, 10.10),  # the trade reaches 10.10, the ask only 10.11
            "buy a tick over": LimitOrder("BUY", 1, 10.11),
            "sell at the high": LimitOrder("SELL", 1, 11.00),  # the bid reaches 10.99 only
            "sell a tick under": LimitOrder("SELL", 1, 10.99),
            "buy stop": StopOrder("BUY", 1, 11.00),  # the trade at 11.00 triggers it: bought at the ask
        }
        trades = {name: ib.placeOrder(aapl, order) for name, order in orders.items()}
        working = ("Submitted", "PreSubmitted")  # a stop waits PreSubmitted until triggered
        assert wait_until(ib, lambda: all(t.orderStatus.status in working for t in trades.values()))
        gw.clock.step()  # bar 1 trades; its session ends: unfilled DAY orders expire
        assert wait_until(ib, lambda: all(t.isDone() for t in trades.values()))
        prices = {name: [f.execution.price for f in t.fills] for name, t in trades.items()}
        assert prices == {
            "buy at the low": [],
            "buy a tick over": [10.11],
            "sell at the high": [],
            "sell a tick under": [10.99],
            "buy stop": [11.01],
        }


def test_midpoint_bid_ask_and_bid_ask_bars_are_the_quote_at_each_bars_data_derived_width():
    feed = SampleDataProvider()
    frame = feed.get_historical_data("IBM", interval="1d")
    start = frame.index[-5]
    slippage = with_spread(NoSlippage(), DEFAULT_SPREAD)
    prices = [grid_array(frame[c].to_numpy()) for c in ("Open", "High", "Low", "Close")]
    widths = DEFAULT_SPREAD.widths(*prices)  # what the backtest quotes on the same bars
    with (
        running_gateway(data=feed, symbols=["IBM"], start=start, slippage=slippage) as gw,
        connected_ib(gw) as ib,
    ):
        [ibm] = ib.qualifyContracts(Stock("IBM", "SMART", "USD"))
        shown = {
            what: ib.reqHistoricalData(ibm, "", "60 D", "1 day", what, True)
            for what in ("TRADES", "BID", "ASK", "MIDPOINT", "BID_ASK")
        }
    n = len(shown["TRADES"])
    assert n >= 40
    assert all(len(bars) == n for bars in shown.values())
    bar_widths = widths[len(frame) - 4 - n : len(frame) - 4]  # the bars up to the replay's start
    assert len(set(bar_widths.tolist())) > 1  # the width follows the bars
    for k, trade in enumerate(shown["TRADES"]):
        bid, ask, mid = shown["BID"][k], shown["ASK"][k], shown["MIDPOINT"][k]
        for field in ("open", "high", "low", "close"):
            price, width = getattr(trade, field), int(bar_widths[k])
            assert (getattr(bid, field), getattr(ask, field)) == quote_at(price, width)
            assert getattr(mid, field) == pytest.approx((getattr(bid, field) + getattr(ask, field)) / 2)
            assert getattr(bid, field) < getattr(mid, field) < getattr(ask, field)
        # BID_ASK as IB defines it: the average bid, the highest ask, the lowest bid, the average ask
        both, width = shown["BID_ASK"][k], int(bar_widths[k])
        mean = (trade.open + trade.high + trade.low + trade.close) / 4
        assert (both.open, both.high, both.low, both.close) == (
            quote_at(mean, width)[0],
            quote_at(trade.high, width)[1],
            quote_at(trade.low, width)[0],
            quote_at(mean, width)[1],
        )
    odd = np.flatnonzero(bar_widths % 2 == 1)
    assert len(odd)  # an odd width puts the midpoint on the half-cent, never on the trade
    assert all(shown["MIDPOINT"][k].close != shown["TRADES"][k].close for k in odd)


def test_real_time_midpoint_bars_are_the_quotes_midpoint():
    slippage = with_spread(NoSlippage(), SpreadModel(ticks=3))
    feed = FrameFeed({"AAPL": BARS})
    with (
        running_gateway(data=feed, symbols=["AAPL"], start=BARS.index[0], slippage=slippage) as gw,
        connected_ib(gw) as ib,
    ):
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        mids = ib.reqRealTimeBars(aapl, 5, "MIDPOINT", False)
        bids = ib.reqRealTimeBars(aapl, 5, "BID", False)
        ib.sleep(0.2)
        gw.clock.step()
        assert wait_until(ib, lambda: len(mids) >= 1 and len(bids) >= 1)
    # 3 ticks: the bid one tick under the trade, the ask two over, the midpoint half a tick over
    assert (mids[0].open_, mids[0].high, mids[0].low, mids[0].close) == (10.405, 11.005, 10.105, 10.805)
    assert (bids[0].open_, bids[0].high, bids[0].low, bids[0].close) == (10.39, 10.99, 10.09, 10.79)


def test_the_gateway_quotes_the_backtests_default_spread_unless_told_otherwise():
    assert spread_of(GatewayConfig().slippage) == DEFAULT_SPREAD
    assert spread_of(GatewayConfig(slippage=NoSlippage()).slippage) is None
    with pytest.raises(ConfigError, match="give one"):
        GatewayConfig(spread=0.02).validate()  # a fixed quote distance and a spread model: which?
    feed = FrameFeed({"AAPL": BARS})
    with running_gateway(data=feed, symbols=["AAPL"], start=BARS.index[0]) as gw, connected_ib(gw) as ib:
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        ticker = ib.reqMktData(aapl, "", False, False)
        assert wait_until(ib, lambda: ticker.bid > 0 and ticker.ask > 0)
        assert (ticker.bid, ticker.ask) == (10.2, 10.21)  # three bars: no estimate yet, one tick
