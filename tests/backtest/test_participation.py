"""The volume participation rule itself: allowances, whole shares, validation, and where on a bar orders execute."""

from __future__ import annotations

import math

import pytest
from copilot_quant.backtest.execution import (
    Execution,
    limit_fill_price,
    locate_order,
    match_order,
    price_path,
    stop_trigger_price,
)
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.participation import (
    VolumeAllowance,
    bar_allowance,
    check_volume_limit,
    fill_size,
    is_whole,
)
from copilot_quant.errors import ConfigError
from hypothesis import given
from hypothesis import strategies as st


# ------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("good", [0.1, 1, 1.0, 1e-6, "0.25"])
def test_a_fraction_in_zero_to_one_is_accepted(good):
    assert check_volume_limit(good) == float(good)


def test_none_means_no_limit():
    assert check_volume_limit(None) is None


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.0001, 5, math.nan, math.inf, True, "ten percent", [0.1]])
def test_anything_else_is_a_config_error_that_says_what_is_allowed(bad):
    with pytest.raises(ConfigError, match=r"0 < volume_limit <= 1") as caught:
        check_volume_limit(bad)
    assert "no limit" in str(caught.value)


def test_the_error_names_the_setting_it_is_about():
    with pytest.raises(ConfigError, match="--volume-limit must be"):
        check_volume_limit(2.0, "--volume-limit")


# ------------------------------------------------------------------------------------------- allowance
def test_the_allowance_is_the_fraction_of_the_bar_volume():
    assert bar_allowance(0.1, 50_000.0) == pytest.approx(5_000.0)


@pytest.mark.parametrize("volume", [0.0, -10.0, math.nan, math.inf])
def test_a_bar_without_usable_volume_allows_nothing(volume):
    assert bar_allowance(0.5, volume) == 0.0


def test_whole_share_orders_fill_the_floor_of_what_is_left():
    assert fill_size(1_000.0, 123.9, whole_shares=True) == 123.0
    assert fill_size(50.0, 123.9, whole_shares=True) == 50.0  # the order needs less than the allowance
    assert fill_size(1_000.0, 0.7, whole_shares=True) == 0.0


def test_fractional_orders_take_fractions():
    assert fill_size(10.5, 7.25, whole_shares=False) == 7.25
    assert fill_size(2.5, 7.25, whole_shares=False) == 2.5


def test_the_floor_forgives_float_noise():
    assert 0.29 * 100 < 29  # 28.999999999999996
    assert fill_size(1_000.0, bar_allowance(0.29, 100.0), whole_shares=True) == 29.0


def test_an_order_is_whole_when_its_quantity_is_a_whole_number():
    assert is_whole(100.0)
    assert not is_whole(10.5)


def test_orders_share_one_symbols_allowance_and_symbols_do_not_share():
    allowance = VolumeAllowance(0.1)
    allowance.open_bar("AAPL", 4_000.0)
    allowance.open_bar("MSFT", 1_000.0)
    first = allowance.size("AAPL", 300.0, True)
    allowance.use("AAPL", first)
    second = allowance.size("AAPL", 300.0, True)
    allowance.use("AAPL", second)
    assert (first, second) == (300.0, 100.0)
    assert allowance.size("AAPL", 1.0, True) == 0.0
    assert allowance.size("MSFT", 500.0, True) == 100.0


def test_a_new_bar_opens_a_fresh_allowance_and_an_unopened_symbol_has_none():
    allowance = VolumeAllowance(0.5)
    assert allowance.size("AAPL", 10.0, True) == 0.0  # no bar: no volume to take part in
    allowance.open_bar("AAPL", 10.0)
    allowance.use("AAPL", 5.0)
    assert allowance.left("AAPL") == 0.0
    allowance.open_bar("AAPL", 4.0)
    assert allowance.left("AAPL") == 2.0
    allowance.clear()
    assert not allowance.is_open("AAPL")


def test_an_allowance_without_a_limit_is_refused():
    with pytest.raises(ConfigError):
        VolumeAllowance(0.0)


# ------------------------------------------------------------------------------------------- where on the bar
def test_a_market_order_executes_at_the_open():
    path = price_path(100.0, 103.0, 98.0, 101.0)  # up bar: open, low, high, close
    assert locate_order(Order("X", 10), path) == (False, match_order(Order("X", 10), path)[1], 0)


def test_a_limit_buy_executes_where_the_price_reaches_it():
    path = price_path(100.0, 103.0, 98.0, 101.0)  # 100 -> 98 -> 103 -> 101
    _, execution, at = locate_order(Order("X", 10, "limit", limit_price=99.0), path)
    assert (execution.price, at) == (99.0, 1)  # on the move down to the low


def test_a_stop_limit_executes_after_its_trigger():
    path = price_path(100.0, 103.0, 96.0, 97.0)  # down bar: 100 -> 103 -> 96 -> 97
    order = Order("X", 10, "stop_limit", "buy", stop_price=102.0, limit_price=98.0)
    triggered, execution, at = locate_order(order, path)
    # triggers on the way up to 103 (point 1), buys at 98 on the way down to 96 (point 2)
    assert triggered
    assert (execution.price, at) == (98.0, 2)


def test_a_triggered_stop_works_as_a_market_order():
    path = price_path(100.0, 100.5, 99.0, 100.2)
    order = Order("X", 10, "stop", "buy", stop_price=105.0)
    assert match_order(order, path)[1] is None  # not triggered: the bar never reached 105
    triggered, execution = match_order(order, path, triggered=True)
    assert triggered
    assert execution.price == 100.0
    assert execution.slippage


prices = st.floats(min_value=1.0, max_value=200.0, allow_nan=False)


@st.composite
def orders_and_bars(draw):
    o, h, low, c = (draw(prices) for _ in range(4))
    high, low = max(o, h, low, c), min(o, h, low, c)
    kind = draw(st.sampled_from(["market", "limit", "stop", "stop_limit"]))
    side = draw(st.sampled_from(["buy", "sell"]))
    limit = draw(prices) if kind in ("limit", "stop_limit") else None
    stop = draw(prices) if kind in ("stop", "stop_limit") else None
    order = Order("X", 10, kind, side, limit_price=limit, stop_price=stop)
    return order, price_path(o, high, low, c), draw(st.booleans())


def _tick_by_tick(order: Order, path, triggered: bool):
    """The oracle: the path fed one price at a time through the per-move rules, as the simulated
    gateway's matching engine does (the first price is a gap; a triggered stop-limit is a limit from
    its trigger price on)."""
    side, prev = order.side_enum, None
    for k, price in enumerate(path):
        kind = str(order.order_type.value)
        if kind == "market" or (kind == "stop" and triggered):
            return triggered, Execution(price, True), k
        if kind == "limit" or (kind == "stop_limit" and triggered):
            hit = limit_fill_price(side, order.limit_price, prev, price)
            if hit is not None:
                return triggered, Execution(hit, False), k
        else:
            trigger = stop_trigger_price(side, order.stop_price, prev, price)
            if trigger is not None:
                triggered = True
                if kind == "stop":
                    return True, Execution(trigger, True), k
                hit = limit_fill_price(side, order.limit_price, None, trigger)
                if hit is not None:
                    return True, Execution(hit, False), k
        prev = price
    return triggered, None, 0


@given(orders_and_bars())
def test_locating_an_execution_agrees_with_the_fill_rules(case):
    order, path, triggered = case
    located_triggered, execution, at = locate_order(order, path, triggered)
    assert (located_triggered, execution) == match_order(order, path, triggered)
    assert (located_triggered, execution, at if execution else 0) == _tick_by_tick(order, path, triggered)
    assert 0 <= at < len(path)
    if execution is not None and not execution.slippage:  # a limit price is reached on the move into `at`
        lo = min(path[max(at - 1, 0)], path[at])
        hi = max(path[max(at - 1, 0)], path[at])
        assert lo - 1e-9 <= execution.price <= hi + 1e-9
