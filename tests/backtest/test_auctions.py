"""On-open and on-close orders in a backtest: filled at the session's open or close, or not at all."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.errors import OrderValidationError

from tests.backtest.engine_helpers import daily_bars
from tests.backtest.test_strategy_cancel import KINDS

ROWS = [(100.0, 104.0, 98.0, 103.0), (101.0, 106.0, 99.0, 105.0), (104.0, 105.0, 96.0, 97.0)]


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Any:
    return KINDS[request.param]


def run(strategy, rows=ROWS):
    # the bars' own prices (spread off): these tests do the fill arithmetic by hand; the spread's own tests
    # are tests/model/test_spread*.py and tests/backtest/test_spread_fills.py
    engine = BacktestEngine(10_000, commission=0, slippage=0.01, spread=None)
    engine.add_strategy(strategy)
    return engine.run(data=daily_bars(rows), symbols=["X"])


def at_bar_0(*orders: Order):
    def act(strategy, bar):
        return list(orders) if bar == 0 else None

    return act


def test_market_on_close_fills_at_the_next_sessions_close_without_slippage(make):
    order = Order("X", 10, "market_on_close", "buy")
    result = run(make(at_bar_0(order)))
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == 105.0
    assert result.fills[0].timestamp == daily_bars(ROWS).index[1]


def test_limit_on_close_fills_only_if_the_close_satisfies_it(make):
    filled = Order("X", 10, "loc", "buy", limit_price=105.0)
    missed = Order("X", 10, "loc", "buy", limit_price=104.0)
    run(make(at_bar_0(filled, missed)))
    assert (filled.status, filled.avg_fill_price) == (OrderStatus.FILLED, 105.0)
    assert missed.status is OrderStatus.EXPIRED  # a DAY order: it ends with the session


def test_opening_auction_orders_fill_at_the_open_or_are_cancelled(make):
    market = Order("X", 10, "market", "buy", time_in_force="opg")
    limit_in = Order("X", 10, "limit", "buy", limit_price=101.0, time_in_force="opg")
    limit_out = Order("X", 10, "limit", "buy", limit_price=100.0, time_in_force="opg")  # the low trades 99
    run(make(at_bar_0(market, limit_in, limit_out)))
    assert (market.status, market.avg_fill_price) == (OrderStatus.FILLED, 101.0)  # no slippage in an auction
    assert (limit_in.status, limit_in.avg_fill_price) == (OrderStatus.FILLED, 101.0)
    assert limit_out.status is OrderStatus.CANCELLED
    assert "opening auction" in limit_out.reject_reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_type": "stop", "stop_price": 9.0, "time_in_force": "opg"}, "market or limit"),
        ({"order_type": "market_on_close", "time_in_force": "gtc"}, "must be 'day'"),
        ({"order_type": "limit_on_close"}, "limit_price"),
    ],
)
def test_impossible_auction_orders_are_named_errors(kwargs, message):
    with pytest.raises(OrderValidationError, match=message):
        Order("X", 10, side="buy", **kwargs)


def test_immediate_or_cancel_fills_at_the_current_price_or_not_at_all(make):
    market = Order("X", 10, "market", "buy", time_in_force="ioc")
    marketable = Order("X", 10, "limit", "buy", limit_price=103.5, time_in_force="ioc")
    away = Order("X", 10, "limit", "buy", limit_price=99.0, time_in_force="ioc")  # the next bar trades 99
    result = run(make(at_bar_0(market, marketable, away)))
    assert (market.status, market.avg_fill_price) == (OrderStatus.FILLED, pytest.approx(103.0 * 1.01))
    assert (marketable.status, marketable.avg_fill_price) == (OrderStatus.FILLED, 103.0)
    assert away.status is OrderStatus.CANCELLED
    assert {f.timestamp for f in result.fills} == {daily_bars(ROWS).index[0]}  # at once, on the bar it saw


def test_immediate_or_cancel_takes_market_and_limit_orders_only():
    with pytest.raises(OrderValidationError, match="immediate or cancel"):
        Order("X", 10, "stop", "buy", stop_price=9.0, time_in_force="ioc")


def test_good_till_date_works_until_its_date_then_expires(make):
    stamps = daily_bars(ROWS).index
    lasting = Order("X", 10, "limit", "buy", limit_price=97.0, time_in_force="gtd", good_till=stamps[2])
    short = Order("X", 10, "limit", "buy", limit_price=97.0, time_in_force="gtd", good_till=stamps[1])
    past = Order("X", 10, "limit", "buy", limit_price=97.0, time_in_force="gtd", good_till=stamps[0])
    run(make(at_bar_0(lasting, short, past)))
    assert (lasting.status, lasting.avg_fill_price) == (OrderStatus.FILLED, 97.0)  # bar 2 trades 96
    assert short.status is OrderStatus.EXPIRED  # its date was bar 1's close: it never saw bar 2
    assert past.status is OrderStatus.REJECTED
    assert "is not after now" in past.reject_reason


def test_good_till_needs_an_aware_datetime_and_gtd():
    with pytest.raises(OrderValidationError, match="timezone-aware"):
        Order("X", 10, "limit", "buy", limit_price=9.0, time_in_force="gtd")
    with pytest.raises(OrderValidationError, match="belongs to time_in_force='gtd'"):
        Order("X", 10, "limit", "buy", limit_price=9.0, good_till=daily_bars(ROWS).index[0])


def test_an_auction_fill_cancels_the_rest_of_its_oca_group(make):
    moc = Order("X", 10, "market_on_close", "buy", oca_group="g")
    resting = Order("X", 10, "limit", "buy", limit_price=90.0, time_in_force="gtc", oca_group="g")
    run(make(at_bar_0(moc, resting)))
    assert moc.status is OrderStatus.FILLED
    assert resting.status is OrderStatus.CANCELLED
