"""Trailing stops in a backtest: the stop follows the best price from the bar the order was placed on."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order, OrderStatus

from tests.backtest.engine_helpers import daily_bars
from tests.backtest.test_strategy_cancel import KINDS


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Any:
    return KINDS[request.param]


def run(strategy, rows):
    engine = BacktestEngine(10_000, commission=0, slippage=0)
    engine.add_strategy(strategy)
    return engine.run(data=daily_bars(rows), symbols=["X"])


def protect_with(exit_order: Order):
    def act(strategy, bar):
        if bar == 0:
            return [Order("X", 10, "market", "buy")]
        if bar == 1:
            return [exit_order]
        return None

    return act


ROWS = [
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 101.0, 99.0, 100.0),  # placed at this close: the stop starts at 95
    (100.0, 110.0, 99.0, 109.0),  # up bar, open -> low -> high: the stop rises to 105
    (108.0, 108.5, 100.0, 101.0),  # down bar: falls through 105
    (101.0, 102.0, 100.0, 101.0),
]


def test_a_trailing_stop_sells_where_the_raised_stop_is_crossed(make):
    order = Order("X", 10, "trailing_stop", "sell", trail_amount=5.0, time_in_force="gtc")
    result = run(make(protect_with(order)), ROWS)
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == 105.0
    assert result.fills[-1].timestamp == daily_bars(ROWS).index[3]
    assert order.stop_price is None  # what was asked stays as asked; the moving stop is the book's


def test_a_percent_trail_and_a_given_start(make):
    order = Order("X", 10, "trailing_stop", "sell", trail_percent=10.0, stop_price=80.0, time_in_force="gtc")
    run(make(protect_with(order)), ROWS)
    # starts at 80, rises to 99 (110 x 0.9): never crossed
    assert order.status is OrderStatus.CANCELLED  # still working at the end of the run


def test_a_trailing_stop_limit_sells_at_its_limit_or_better(make):
    order = Order(
        "X", 10, "trailing_stop_limit", "sell", trail_amount=5.0, limit_offset=0.5, time_in_force="gtc"
    )
    run(make(protect_with(order)), ROWS)
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == 105.0  # triggered at 105, limit 104.5: filled at the trigger
