"""Backtest–live parity with the spread model on, on off-grid (split/dividend-adjusted) sample data:
identical fills and equity, every fill on the tick grid, buys at the ask and sells at the bid."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from copilot_quant.model.costs import PercentSlippage
from copilot_quant.model.spread import SpreadModel, SpreadSlippage, to_grid
from copilot_quant.parity import run_parity

from tests.parity.test_parity import LimitStopSwing

pytestmark = pytest.mark.timeout(180)

RANGE = ("2010-01-01", "2010-06-25")


def on_grid(price: float) -> bool:
    return abs(price * 100 - round(price * 100)) < 1e-6


@pytest.mark.parametrize("strategy", [SimpleMovingAverage, LimitStopSwing])
def test_fills_and_equity_are_identical_with_the_spread_on(strategy):
    kwargs = {"quantity": 100} if strategy is SimpleMovingAverage else {}
    report = run_parity(strategy, "AAPL", *RANGE, strategy_kwargs=kwargs, spread=SpreadModel(ticks=2))
    assert report.ok, f"parity failed:\n{report.diffs.to_string()}"
    assert report.backtest.fills, "the test means something only if it traded"
    assert all(on_grid(f[4]) for f in report.backtest.fills + report.live.fills)
    assert report.backtest.final_equity == pytest.approx(report.live.final_equity, abs=0.005)


def test_the_spread_costs_a_round_trip_its_width():
    plain = run_parity(
        SimpleMovingAverage, "AAPL", *RANGE, strategy_kwargs={"quantity": 100}, slippage=0, spread=None
    )
    wide = run_parity(
        SimpleMovingAverage, "AAPL", *RANGE, strategy_kwargs={"quantity": 100}, slippage=0, spread=2
    )
    assert plain.ok
    assert wide.ok
    assert len(plain.backtest.fills) == len(wide.backtest.fills) >= 2
    for a, b in zip(plain.backtest.fills, wide.backtest.fills, strict=True):
        side, price = a[2], a[4]
        # a market order of a gridded bar: buys one tick over the bar's price, sells one tick under
        assert b[4] == pytest.approx(to_grid(price + 0.01) if side == "buy" else to_grid(price - 0.01))


@pytest.mark.parametrize("strategy", [SimpleMovingAverage, LimitStopSwing])
def test_a_backtest_with_the_spread_fills_on_the_grid_and_pays_for_it(strategy):
    def run(slippage, spread="auto"):  # "auto": the spread inside ``slippage``, when it has one
        engine = BacktestEngine(data_provider=SampleDataProvider(), slippage=slippage, spread=spread)
        engine.add_strategy(strategy(quantity=100))
        return engine.run(*RANGE, ["AAPL"]), engine.broker.fills

    plain, plain_fills = run(PercentSlippage(0.0005), spread=None)
    spread, fills = run(SpreadSlippage(SpreadModel(ticks=2), PercentSlippage(0.0005)))
    assert fills
    assert all(on_grid(f.fill_price) for f in fills)
    assert not all(on_grid(f.fill_price) for f in plain_fills)  # off-grid data: the spread puts it on
    if strategy is SimpleMovingAverage:  # market orders only: the same trades, each a tick worse
        assert len(fills) == len(plain_fills)
        assert spread.final_value < plain.final_value
