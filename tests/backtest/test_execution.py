"""The shared fill rules: where each order type executes on a bar's intrabar path."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.execution import (
    Execution,
    match_limit,
    match_market,
    match_order,
    match_stop,
    match_stop_limit,
    price_path,
)
from copilot_quant.backtest.orders import Order, OrderSide
from hypothesis import given
from hypothesis import strategies as st

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_an_up_bar_is_walked_open_low_high_close():
    assert price_path(10, 12, 9, 11) == (10, 9, 12, 11)


def test_a_down_bar_is_walked_open_high_low_close():
    assert price_path(10, 12, 9, 9.5) == (10, 12, 9, 9.5)


def test_a_market_order_takes_the_first_price_with_slippage():
    assert match_market((10, 12, 9, 11)) == Execution(10, True)


class TestLimit:
    def test_a_buy_limit_touched_inside_the_bar_fills_exactly_at_the_limit(self):
        assert match_limit(BUY, 9.5, (10, 9, 12, 11)) == Execution(9.5, False)

    def test_a_buy_limit_fills_at_the_open_when_the_bar_gaps_below_it(self):
        assert match_limit(BUY, 9.5, (9.0, 8.5, 9.8, 9.2)) == Execution(9.0, False)

    def test_a_buy_limit_below_the_low_does_not_fill(self):
        assert match_limit(BUY, 8.0, (10, 9, 12, 11)) is None

    def test_a_sell_limit_touched_inside_the_bar_fills_at_the_limit(self):
        assert match_limit(SELL, 11.5, (10, 9, 12, 11)) == Execution(11.5, False)

    def test_a_sell_limit_fills_at_the_open_on_a_gap_above_it(self):
        assert match_limit(SELL, 11.5, (12.5, 12, 13, 12.2)) == Execution(12.5, False)

    def test_a_sell_limit_above_the_high_does_not_fill(self):
        assert match_limit(SELL, 13, (10, 9, 12, 11)) is None


class TestStop:
    def test_a_buy_stop_triggers_at_the_stop_with_slippage(self):
        assert match_stop(BUY, 11.5, (10, 9, 12, 11)) == Execution(11.5, True)

    def test_a_buy_stop_fills_at_the_open_when_the_bar_gaps_through_it(self):
        assert match_stop(BUY, 11.5, (12.5, 12, 13, 12.2)) == Execution(12.5, True)

    def test_a_buy_stop_above_the_high_does_not_trigger(self):
        assert match_stop(BUY, 12.5, (10, 9, 12, 11)) is None

    def test_a_sell_stop_triggers_on_the_way_down(self):
        assert match_stop(SELL, 9.5, (10, 12, 9, 9.2)) == Execution(9.5, True)

    def test_a_sell_stop_fills_at_the_open_on_a_gap_down(self):
        assert match_stop(SELL, 9.5, (8.0, 8.5, 7.5, 8.2)) == Execution(8.0, True)


class TestStopLimit:
    def test_triggered_inside_the_bar_it_fills_at_the_trigger_when_the_limit_allows(self):
        assert match_stop_limit(BUY, 11.0, 11.2, (10, 9, 12, 11)) == (True, Execution(11.0, False))

    def test_after_a_gap_above_the_limit_it_waits_for_the_price_to_come_back(self):
        # down bar 13 -> 14 -> 10 -> 10.5: triggers at the open, the limit 11 is reached on the way down
        assert match_stop_limit(BUY, 12.0, 11.0, (13, 14, 10, 10.5)) == (True, Execution(11.0, False))

    def test_it_stays_triggered_when_the_limit_is_not_reached_in_the_same_bar(self):
        # up bar 13 -> 12.5 -> 14 -> 13.5: triggered at the open, never back to 11
        assert match_stop_limit(BUY, 12.0, 11.0, (13, 12.5, 14, 13.5)) == (True, None)

    def test_once_triggered_it_works_as_a_plain_limit(self):
        assert match_stop_limit(BUY, 12.0, 11.0, (11.5, 10.8, 11.9, 11.1), triggered=True) == (
            True,
            Execution(11.0, False),
        )

    def test_the_limit_only_works_after_the_trigger_point_of_the_path(self):
        # up bar 10 -> 8 -> 12 -> 10.5: the limit 9 is touched at the low BEFORE the stop triggers at 11
        # on the way up, and the rest of the path (11 -> 12 -> 10.5) never comes back down to 9
        assert match_stop_limit(BUY, 11.0, 9.0, price_path(10, 12, 8, 10.5)) == (True, None)

    def test_a_sell_stop_limit_is_symmetric(self):
        assert match_stop_limit(SELL, 9.5, 9.4, (10, 12, 9, 9.2)) == (True, Execution(9.5, False))

    def test_not_triggered_means_no_fill(self):
        assert match_stop_limit(BUY, 13.0, 13.5, (10, 9, 12, 11)) == (False, None)


@pytest.mark.parametrize(
    ("order", "price", "fills"),
    [
        (Order("X", 1), 10.0, True),
        (Order("X", 1, "limit", limit_price=10.5), 10.0, True),
        (Order("X", 1, "limit", limit_price=9.5), 10.0, False),
        (Order("X", 1, "stop", stop_price=9.5), 10.0, True),
        (Order("X", 1, "stop", stop_price=10.5), 10.0, False),
        (Order("X", 1, "limit", "sell", limit_price=9.5), 10.0, True),
        (Order("X", 1, "stop", "sell", stop_price=9.5), 10.0, False),
    ],
)
def test_match_order_dispatches_on_the_order_type_for_a_one_point_path(order, price, fills):
    _, execution = match_order(order, (price,))
    assert (execution is not None) == fills


bars = st.tuples(st.floats(1, 100), st.floats(1, 100), st.floats(1, 100), st.floats(1, 100)).map(
    lambda t: (t[0], max(t), min(t), t[3])
)


@given(bars, st.floats(1, 100), st.sampled_from([BUY, SELL]))
def test_a_limit_fill_is_inside_the_bar_and_never_worse_than_the_limit(bar, limit, side):
    open_, high, low, close = bar
    execution = match_limit(side, limit, price_path(open_, high, low, close))
    if execution is None:
        assert (low > limit) if side is BUY else (high < limit)
        return
    assert low <= execution.price <= high
    assert execution.price <= limit if side is BUY else execution.price >= limit
    assert not execution.slippage


@given(bars, st.floats(1, 100), st.sampled_from([BUY, SELL]))
def test_a_stop_fill_is_inside_the_bar_and_never_better_than_the_stop(bar, stop, side):
    open_, high, low, close = bar
    execution = match_stop(side, stop, price_path(open_, high, low, close))
    if execution is None:
        assert (high < stop) if side is BUY else (low > stop)
        return
    assert low <= execution.price <= high
    assert execution.price >= stop if side is BUY else execution.price <= stop
    assert execution.slippage
