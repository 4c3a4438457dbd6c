"""Trailing stops: the shared rule (model.fill_rules.trail_step), walked over a bar's path by the backtest
and applied price by price by the gateway's matching engine, with the same result."""

from __future__ import annotations

import pytest
from copilot_quant.errors import OrderValidationError
from copilot_quant.gateway.matching import FillIntent, MatchingEngine, WorkingOrder
from copilot_quant.gateway.orders import IbOrderType
from copilot_quant.model.fill_rules import TrailState, locate_trailing, trail_level, trail_step
from copilot_quant.model.orders import Order, OrderSide
from hypothesis import given
from hypothesis import strategies as st

SELL, BUY = OrderSide.SELL, OrderSide.BUY


def test_a_sell_stop_follows_the_best_price_and_never_drops():
    stop, hit = trail_step(SELL, 95.0, 100.0, 110.0, amount=5.0, percent=None)
    assert (stop, hit) == (105.0, None)
    stop, hit = trail_step(SELL, stop, 110.0, 106.0, amount=5.0, percent=None)
    assert (stop, hit) == (105.0, None)  # a fall does not lower it
    assert trail_step(SELL, stop, 106.0, 100.0, amount=5.0, percent=None) == (
        105.0,
        105.0,
    )  # crossed: at the stop
    assert trail_step(SELL, stop, None, 100.0, amount=5.0, percent=None) == (
        105.0,
        100.0,
    )  # a gap: at the price


def test_a_buy_stop_mirrors_it_and_percent_trails_work():
    assert trail_step(BUY, 105.0, 100.0, 90.0, amount=5.0, percent=None) == (95.0, None)
    assert trail_level(SELL, 200.0, None, 2.5) == pytest.approx(195.0)
    assert trail_level(BUY, 200.0, None, 2.5) == pytest.approx(205.0)
    assert trail_step(SELL, None, None, 50.0, amount=1.0, percent=None) == (49.0, None)  # starts here


def test_a_trailing_stop_limit_works_as_a_limit_below_the_stop_it_triggered_at():
    order = Order("X", 10, "trailing_stop_limit", "sell", trail_amount=5.0, limit_offset=1.0)
    state = TrailState(95.0)
    # up to 110 (stop 105), then down to 100: triggers at 105 on the way, limit 104 fills at 105
    triggered, execution, at = locate_trailing(order, (100.0, 110.0, 100.0, 101.0), False, state)
    assert triggered
    assert state.stop == 105.0
    assert state.limit == 104.0
    assert execution is not None
    assert (execution.price, execution.slippage, at) == (105.0, False, 2)
    # gapping through the limit: triggered, not filled, then a plain limit at 104
    state = TrailState(105.0)
    triggered, execution, _ = locate_trailing(order, (100.0, 101.0, 99.0, 100.0), False, state)
    assert triggered
    assert execution is None
    triggered, execution, _ = locate_trailing(order, (103.0, 104.5, 102.0, 103.0), True, state)
    assert execution is not None
    assert execution.price == 104.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of trail_amount"),
        ({"trail_amount": 1.0, "trail_percent": 1.0}, "exactly one"),
        ({"trail_percent": 120.0}, "between 0 and 100"),
        ({"trail_amount": -1.0}, "trail_amount must be a positive"),
    ],
)
def test_bad_trailing_orders_are_named_errors(fields, message):
    with pytest.raises(OrderValidationError, match=message):
        Order("X", 10, "trailing_stop", "sell", **fields)


def test_a_trailing_stop_limit_needs_its_offset_and_others_take_no_trail():
    with pytest.raises(OrderValidationError, match="needs limit_offset"):
        Order("X", 10, "trailing_stop_limit", "sell", trail_amount=1.0)
    with pytest.raises(OrderValidationError, match="belong to trailing orders"):
        Order("X", 10, "stop", "sell", stop_price=9.0, trail_amount=1.0)


bars = st.lists(
    st.tuples(*(st.integers(9_000, 11_000) for _ in range(4))).map(lambda t: tuple(x / 100 for x in t)),
    min_size=1,
    max_size=8,
)


@given(
    bars=bars,
    side=st.sampled_from([SELL, BUY]),
    limit=st.booleans(),
    amount=st.integers(1, 400).map(lambda c: c / 100),
    start=st.integers(9_000, 11_000).map(lambda c: c / 100),
)
def test_backtest_walk_and_gateway_ticks_agree(bars, side, limit, amount, start):
    """The same bars as paths: the backtest's locate_trailing per bar and the gateway's matching engine per
    price (a gap at each bar's open) fill at the same price, on the same bar, at the same point."""
    kind = "trailing_stop_limit" if limit else "trailing_stop"
    order = Order("X", 10, kind, side.value, trail_amount=amount, limit_offset=0.5 if limit else None)
    state, triggered, backtest = TrailState(start), False, None
    for b, path in enumerate(bars):
        triggered, execution, at = locate_trailing(order, path, triggered, state)
        if execution is not None:
            backtest = (b, at, execution.price)
            break
    engine = MatchingEngine()
    ib_type = IbOrderType.TRAIL_LIMIT if limit else IbOrderType.TRAIL
    engine.add(
        WorkingOrder(
            (1, 1),
            "X",
            side,
            ib_type,
            10,
            stop=start,
            trail_amount=amount,
            limit_offset=0.5 if limit else None,
        )
    )
    gateway = None
    for b, path in enumerate(bars):
        for at, price in enumerate(path):
            fills = [e for e in engine.on_price("X", price, gap=at == 0) if isinstance(e, FillIntent)]
            if fills and gateway is None:
                gateway = (b, at, fills[0].price)
        if gateway is not None:
            break
    assert backtest == gateway
