"""Cross-check against a peer: the SMA(10/30) crossover in this engine and in backtrader.

Same data, 100 shares, market orders filled at the next bar's open, 0.1 % commission, no slippage and
no bid/ask spread (``spread=None``: backtrader fills at the bar's price, it has no spread model; ours is
on by default): the trades (bar, price, quantity, commission) and the final equity must be the same.

Both sides count a crossover only when the averages differ by more than ``benchmarks/agreement.py``'s
``MARGIN`` of the slow one, as the benchmarks do: on cent prices the two averages can be equal in exact
arithmetic, and backtrader (``math.fsum``) and pandas/numpy round such a tie to different sides, a bar apart
(the ``tie`` dataset has one: S09 on 2019-05-13, both means 192.466). Ours are the example classes with that
margin (the benchmark's ``GuideSma`` and ``FastSma``); the margin changes ties only.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.data.providers import SampleDataProvider, SyntheticDataProvider
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast

with warnings.catch_warnings():  # backtrader imports modules that warn on recent Pythons
    warnings.simplefilter("ignore")
    import backtrader as bt

CAPITAL = 100_000.0
SIZE = 100


class BacktraderSma(bt.Strategy):
    """The guide's rules in backtrader's own terms (its SMA indicator, its broker, its fills)."""

    params = (("fast", 10), ("slow", 30), ("size", SIZE), ("up", 1.0), ("down", 1.0))

    def __init__(self) -> None:
        self.fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
        self.slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
        self.long = False
        self.trades: list[tuple[pd.Timestamp, float, float, float]] = []

    def next(self) -> None:
        if self.fast[0] > self.slow[0] * self.p.up and not self.long:
            self.buy(size=self.p.size)
            self.long = True
        elif self.fast[0] < self.slow[0] * self.p.down and self.long:
            self.sell(size=self.p.size)
            self.long = False

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            stamp = pd.Timestamp(bt.num2date(order.executed.dt)).tz_localize("UTC")
            self.trades.append((stamp, order.executed.price, order.executed.size, order.executed.comm))


def run_backtrader(
    data: pd.DataFrame, up: float, down: float
) -> tuple[list[tuple[pd.Timestamp, float, float, float]], float]:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=data.tz_convert("UTC").tz_localize(None)))
    cerebro.addstrategy(BacktraderSma, up=up, down=down)
    cerebro.broker.setcash(CAPITAL)
    cerebro.broker.setcommission(commission=0.001)
    (strategy,) = cerebro.run()
    return strategy.trades, cerebro.broker.getvalue()


def run_ours(strategy, data: pd.DataFrame, symbol: str):
    # spread off: backtrader has no bid/ask spread, so agreement is on the bars' own prices
    engine = BacktestEngine(CAPITAL, commission=0.001, slippage=0.0, fill_at="next_open", spread=None)
    engine.add_strategy(strategy)
    result = engine.run(symbols=[symbol], data=data)
    trades = [
        (pd.Timestamp(f.timestamp), f.fill_price, f.signed_quantity, f.commission) for f in result.fills
    ]
    return trades, result.final_value


DATASETS = [
    pytest.param(
        "X", lambda: SyntheticDataProvider(seed=11, periods=1500).get_historical_data("X"), id="synthetic"
    ),
    pytest.param(
        "AAPL",
        lambda: SampleDataProvider().get_historical_data("AAPL", "2004-01-01", "2013-12-31"),
        id="sample-aapl",
    ),
    pytest.param(
        "S09",
        lambda: SyntheticDataProvider(seed=2024, periods=2_520).get_historical_data("S09"),
        id="tie",  # the averages tie exactly at 2019-05-13: without the margin the engines trade a bar apart
    ),
]


@pytest.mark.parametrize(("symbol", "load"), DATASETS)
@pytest.mark.parametrize("style", ["guide", "fast"])
def test_sma_crossover_trades_exactly_like_backtrader(bench, symbol, load, style):
    data = load()
    strategy = bench.GuideSma(symbol, SIZE) if style == "guide" else bench.FastSma(symbol, SIZE)
    ours, our_value = run_ours(strategy, data, symbol)
    theirs, their_value = run_backtrader(data, bench.UP, bench.DOWN)

    assert len(theirs) > 20, "the data should produce a fair number of trades"
    assert [t[0] for t in ours] == [t[0] for t in theirs]
    for mine, peer in zip(ours, theirs, strict=True):
        assert mine[1] == pytest.approx(peer[1], rel=1e-12)  # price: the next bar's open
        assert mine[2] == peer[2]  # signed quantity
        assert mine[3] == pytest.approx(peer[3], rel=1e-9)  # commission
    assert our_value == pytest.approx(their_value, rel=1e-6)


@pytest.mark.parametrize(("symbol", "load"), DATASETS[:2])  # the datasets without a tie
@pytest.mark.parametrize("style", ["guide", "fast"])
def test_the_examples_themselves_trade_as_with_the_margin_where_nothing_ties(bench, symbol, load, style):
    """The margin changes ties only: off a tie, the example classes as shipped make the same trades as
    their margin variants above, so they too trade like backtrader."""
    data = load()
    plain = SimpleMovingAverage(symbol, SIZE) if style == "guide" else SmaCrossFast(symbol, SIZE)
    margined = bench.GuideSma(symbol, SIZE) if style == "guide" else bench.FastSma(symbol, SIZE)
    assert run_ours(plain, data, symbol) == run_ours(margined, data, symbol)
