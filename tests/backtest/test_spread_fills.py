"""The backtest with a bid/ask spread: market orders at the touch, limits when the quote crosses them,
stops triggered by trades, the data-derived default on unless turned off."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import ConfigError
from copilot_quant.model.costs import PercentSlippage
from copilot_quant.model.spread import DEFAULT_SPREAD, SpreadModel, spread_of, with_spread

from tests.backtest.engine_helpers import FrameFeed, Scripted, daily_bars

# bar 1: open 10.40, low 10.10, high 11.00, close 10.80 (an up bar: open → low → high → close)
BARS = daily_bars(
    [
        (10.0, 10.5, 9.5, 10.2),
        (10.4, 11.0, 10.1, 10.8),
        (11.0, 11.6, 10.9, 11.5),
        (11.2, 11.4, 10.0, 10.3),
    ]
)


TWO_TICKS = SpreadModel(ticks=2)


def run(orders, spread=TWO_TICKS, slippage=0.0, **kwargs):
    """Orders placed at bar 0 (they work from bar 1 on), no commission; a 2-tick spread: bid = last - 0.01,
    ask = last + 0.01."""
    engine = BacktestEngine(100_000, commission=0.0, slippage=slippage, spread=spread, **kwargs)
    engine.add_strategy(Scripted({0: lambda: list(orders)}))
    result = engine.run(data=BARS, symbols=["X"])
    return result, [(f.side.value, f.fill_price) for f in result.fills]


def test_market_orders_buy_at_the_ask_and_sell_at_the_bid():
    _, fills = run([Order("X", 10), Order("X", 5, side="sell")])
    assert fills == [("buy", 10.41), ("sell", 10.39)]  # bar 1's open 10.40, one tick either side


def test_a_round_trip_costs_one_spread():
    (plain, _), (quoted, _) = (run([Order("X", 100)], spread=s) for s in (None, SpreadModel(ticks=2)))
    # bought at the ask (one tick over), marked at the bar's close: 100 shares x 0.01 below the plain run
    assert quoted.final_value == pytest.approx(plain.final_value - 1.0)


def test_a_buy_limit_fills_only_when_the_ask_reaches_it():
    # bar 1 trades down to 10.10: its ask is 10.11 there, so a buy at 10.10 does not fill
    _, fills = run([Order("X", 1, "limit", limit_price=10.10, time_in_force="gtc")])
    assert fills == [("buy", 10.10)]  # bar 3 trades at 10.00: the ask (10.01) crossed 10.10 on the way
    result, fills = run([Order("X", 1, "limit", limit_price=10.10)])  # a DAY order: bar 1 only
    assert fills == []
    assert result.orders[0].status is OrderStatus.EXPIRED


def test_a_buy_limit_above_the_open_fills_at_the_ask_of_the_open():
    _, fills = run([Order("X", 1, "limit", limit_price=10.6)])
    assert fills == [("buy", 10.41)]  # a gap through the limit: the better price, the ask shown


def test_a_sell_limit_fills_only_when_the_bid_reaches_it():
    _, fills = run([Order("X", 1, "limit", side="sell", limit_price=11.0)])
    assert fills == []  # bar 1's high is 11.00 but its bid there is 10.99
    _, fills = run([Order("X", 1, "limit", side="sell", limit_price=10.99)])
    assert fills == [("sell", 10.99)]


def test_stops_trigger_on_the_trades_and_fill_at_the_touch():
    # a buy stop at 11.00: bar 1 trades at 11.00 (its ask there is 11.01) → triggered, bought at the ask
    _, fills = run([Order("X", 1, "stop", stop_price=11.0)])
    assert fills == [("buy", 11.01)]
    # a sell stop at 10.10: triggered by the trade at 10.10, sold at the bid 10.09
    _, fills = run([Order("X", 1, "stop", side="sell", stop_price=10.1)])
    assert fills == [("sell", 10.09)]


def test_a_stop_limit_works_its_limit_on_the_quote_once_triggered():
    order = Order("X", 1, "stop_limit", stop_price=11.0, limit_price=10.8, time_in_force="gtc")
    result, fills = run([order], spread=None)
    assert result.fills[0].timestamp == BARS.index[1]  # no spread: the trade at 10.80 after the trigger
    # with the spread: triggered by the trade at 11.00, then the ask falls only to 10.81 on bar 1 and
    # bar 2; bar 3's ask falls through 10.80
    result, fills = run([Order("X", 1, "stop_limit", stop_price=11.0, limit_price=10.8, time_in_force="gtc")])
    assert fills == [("buy", 10.8)]
    assert result.fills[0].timestamp == BARS.index[3]


def test_slippage_moves_the_touch():
    _, fills = run([Order("X", 100)], slippage=PercentSlippage(0.001))
    assert fills == [("buy", 10.42)]  # 10.41 x 1.001 = 10.4204, on the grid


def test_the_default_is_the_data_derived_spread_and_none_turns_it_off():
    assert spread_of(BacktestEngine().broker.slippage_model) == DEFAULT_SPREAD
    assert spread_of(BacktestEngine(spread=None).broker.slippage_model) is None
    assert spread_of(BacktestEngine(spread="off").broker.slippage_model) is None
    carried = with_spread(PercentSlippage(0.0005), SpreadModel(ticks=3))
    assert spread_of(BacktestEngine(slippage=carried).broker.slippage_model) == SpreadModel(ticks=3)
    with pytest.raises(ConfigError, match="give the spread once"):
        BacktestEngine(slippage=carried, spread=2)
    # the default quotes the floor on these few bars (no estimate before 21 bars): one tick
    _, fills = run([Order("X", 10), Order("X", 5, side="sell")], spread="auto")
    assert fills == [("buy", 10.41), ("sell", 10.40)]


def test_fill_at_close_and_immediate_orders_meet_the_quote_of_the_bar_they_see():
    _, fills = run([Order("X", 10)], fill_at="close")
    assert fills == [("buy", 10.21)]  # bar 0's close 10.20, at the ask


def _wide_bars() -> pd.DataFrame:
    """60 daily bars of a stock whose high-low range implies a spread of several cents."""
    rng = np.random.default_rng(7)
    closes = 50 + np.cumsum(rng.normal(0, 0.5, 60))
    return daily_bars([(c - 0.1, c + 0.6, c - 0.6, c) for c in closes], "2024-01-02")


class BuysFromBar(Strategy):
    """Buys 10 shares on every third bar from ``first`` on; records the first bar it is shown."""

    def __init__(self, first: pd.Timestamp) -> None:
        super().__init__()
        self.first = first
        self.shown: list[pd.Timestamp] = []

    def on_data(self, timestamp, data):
        self.shown.append(timestamp)
        if timestamp >= self.first and len(self.shown) % 3 == 0:
            return [Order("X", 10)]
        return None


@pytest.mark.parametrize("through", ["data", "provider"])
def test_a_date_range_run_estimates_its_first_spreads_from_the_bars_before_it(through):
    """A run starting on bar 30 fills its first orders at the quotes a run over all the bars has on the same
    bars — the estimate reads the bars before the start, as the gateway does when its replay starts there —
    not at a one-tick spread for its first ``window`` bars. The strategy is shown only the range's bars."""
    bars = _wide_bars()
    start = bars.index[30]

    def fills_of(start_date):
        engine = BacktestEngine(100_000, commission=0.0, slippage=0.0, data_provider=FrameFeed({"X": bars}))
        strategy = BuysFromBar(start)
        engine.add_strategy(strategy)
        result = engine.run(data=bars if through == "data" else None, symbols=["X"], start_date=start_date)
        return strategy.shown, {f.timestamp: f.fill_price for f in result.fills}

    (shown, ranged), (_, full) = fills_of(start.date().isoformat()), fills_of(None)
    assert shown[0] == start  # the bars before the start are not shown to the strategy
    assert len(ranged) >= 5
    assert ranged == {stamp: full[stamp] for stamp in ranged}
    # the estimate is wider than one tick on these bars: the old one-tick quotes would have differed
    assert all(price - bars["Open"][stamp] > 0.011 for stamp, price in ranged.items())
