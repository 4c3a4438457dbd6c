"""The bracket rule (model/bracket.py) and the strategy's constructor, Order.bracket."""

from __future__ import annotations

import pytest
from copilot_quant.errors import OrderValidationError
from copilot_quant.model.bracket import exit_allowance, group_complete, worst_loss
from copilot_quant.model.orders import Order, OrderSide, OrderType
from hypothesis import given
from hypothesis import strategies as st


def test_the_constructor_builds_an_entry_and_two_linked_exits():
    entry, take_profit, stop_loss = Order.bracket(
        "aapl", 100, "buy", limit_price=185.0, take_profit=195.0, stop_loss=180.0
    )
    assert (entry.order_type, entry.limit_price, entry.side) == (OrderType.LIMIT, 185.0, OrderSide.BUY)
    assert (take_profit.order_type, take_profit.limit_price, take_profit.side) == (
        OrderType.LIMIT,
        195.0,
        OrderSide.SELL,
    )
    assert (stop_loss.order_type, stop_loss.stop_price, stop_loss.side) == (
        OrderType.STOP,
        180.0,
        OrderSide.SELL,
    )
    assert take_profit.parent_id == stop_loss.parent_id == entry.order_id
    assert not entry.parent_id
    assert {o.symbol for o in (entry, take_profit, stop_loss)} == {"AAPL"}
    assert {o.quantity for o in (entry, take_profit, stop_loss)} == {100}


def test_a_market_entry_and_a_single_exit():
    entry, stop_loss = Order.bracket("X", 5, "sell", stop_loss=110.0)
    assert entry.order_type is OrderType.MARKET
    assert stop_loss.side is OrderSide.BUY
    assert stop_loss.stop_price == 110.0


@pytest.mark.parametrize(
    ("side", "terms", "says"),
    [
        (
            "buy",
            {"limit_price": 100.0, "take_profit": 99.0},
            "take_profit 99 is on the wrong side of the entry 100",
        ),
        (
            "buy",
            {"limit_price": 100.0, "stop_loss": 101.0},
            "stop_loss 101 is on the wrong side of the entry 100",
        ),
        ("sell", {"limit_price": 100.0, "take_profit": 101.0}, "take_profit 101 is on the wrong side"),
        ("sell", {"limit_price": 100.0, "stop_loss": 99.0}, "stop_loss 99 is on the wrong side"),
        ("buy", {"take_profit": 90.0, "stop_loss": 95.0}, "needs take_profit above stop_loss"),
        ("sell", {"take_profit": 95.0, "stop_loss": 90.0}, "needs take_profit below stop_loss"),
        ("buy", {}, "needs take_profit=, stop_loss= or both"),
        ("buy", {"take_profit": -1.0}, "take_profit must be a positive finite price"),
        ("buy", {"take_profit": 110.0, "time_in_force": "ioc"}, "not 'ioc'"),
    ],
)
def test_a_bracket_with_bad_terms_is_refused_by_name(side, terms, says):
    with pytest.raises(OrderValidationError, match=says):
        Order.bracket("X", 10, side, **terms)


def test_an_order_cannot_be_its_own_parent_nor_an_exit_in_an_oca_group():
    with pytest.raises(OrderValidationError, match="its own parent"):
        Order("X", 1, order_id="A", parent_id="A")
    with pytest.raises(OrderValidationError, match="drop its oca_group"):
        Order("X", 1, parent_id="A", oca_group="g")


@given(
    entry_filled=st.floats(0, 1000),
    exits_filled=st.floats(0, 1000),
    remaining=st.floats(0, 1000),
)
def test_an_exit_never_fills_more_than_the_exposure_nor_its_remainder(entry_filled, exits_filled, remaining):
    allowed = exit_allowance(entry_filled, exits_filled, remaining)
    assert 0 <= allowed <= remaining
    assert allowed <= max(0.0, entry_filled - exits_filled)


def test_the_group_is_complete_once_the_entry_is_over_and_nothing_is_left_to_protect():
    assert not group_complete(False, 0, 0)  # the entry still works
    assert group_complete(True, 0, 0)  # the entry ended without a fill: cancel the exits
    assert not group_complete(True, 10, 4)  # 6 shares still to protect
    assert group_complete(True, 10, 10)


def test_the_worst_case_is_the_entry_down_to_the_stop():
    entry, take_profit, stop_loss = Order.bracket(
        "X", 100, "buy", limit_price=50.0, take_profit=60.0, stop_loss=45.0
    )
    assert worst_loss(entry, [take_profit, stop_loss], 52.0) == pytest.approx(500.0)
    market, stop = Order.bracket("X", 10, "sell", stop_loss=105.0)
    assert worst_loss(market, [stop], 100.0) == pytest.approx(50.0)
    assert worst_loss(market, [stop], None) is None
    entry, take_profit = Order.bracket("X", 10, "buy", take_profit=105.0)
    assert worst_loss(entry, [take_profit], 100.0) is None  # no stop: no bound
