"""Strategy.modify() in a backtest, on the pandas path and the fast path.

Timing contract under test: a modification from on_data at bar t is in force when bar t+1 is matched (the
same order, the same id, new terms); one from on_fill while bar t is matched takes the order out of the rest
of bar t. Refusals are named outcomes: already filled (IB's 104), not working, below the filled quantity.
"""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.errors import OrderValidationError, StrategyError
from copilot_quant.model.modify import ModifyOutcome, check_modification

from tests.backtest.engine_helpers import daily_bars
from tests.backtest.test_strategy_cancel import CRASH, KINDS, QUIET, limit_buy, run


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Any:
    return KINDS[request.param]


DIP = (100.0, 100.0, 94.0, 96.0)  # trades down to 94: fills a buy limit at 95, not one at 90


def test_a_limit_moved_on_bar_t_fills_by_its_new_price_on_bar_t_plus_1(make):
    rows = [QUIET, QUIET, QUIET, DIP, QUIET]
    placed: list[Order] = []
    outcomes: list[ModifyOutcome] = []

    def act(strategy, bar):
        if bar == 1:
            placed.append(limit_buy(90.0))
            return placed[:]
        if bar == 2:
            outcomes.append(strategy.modify(placed[0], limit_price=95.0))
            assert placed[0].limit_price == 95.0  # the order has its new terms at once
        return None

    control_rows = [QUIET, QUIET, QUIET, DIP, QUIET]
    control = run(make(lambda s, b: [limit_buy(90.0)] if b == 1 else None), control_rows)
    assert control.fills == []  # at 90 the dip does not reach it

    strategy = make(act)
    result = run(strategy, rows)
    (order,) = placed
    assert outcomes == [ModifyOutcome.APPLIED]
    assert [(f.fill_price, f.timestamp) for f in result.fills] == [(95.0, daily_bars(rows).index[3])]
    assert order.status is OrderStatus.FILLED
    assert result.orders == [order]  # the same order, not a new one
    assert order.order_id == strategy.fills[0].order.order_id


def test_a_modification_on_the_last_bar_before_the_move_is_not_used_earlier(make):
    """No look-ahead: modified at bar 3 (whose own prices reached 94), the order is not filled on bar 3."""
    rows = [QUIET, QUIET, QUIET, DIP, QUIET, QUIET]
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == 1:
            placed.append(limit_buy(90.0))
            return placed[:]
        if bar == 3:
            strategy.modify(placed[0], limit_price=95.0)
        return None

    result = run(make(act), rows)
    assert result.fills == []  # bars 4 and 5 stay at 99 and above
    assert placed[0].status is OrderStatus.CANCELLED  # still working when the data ended


def test_quantity_and_time_in_force_can_change(make):
    rows = [QUIET, QUIET, QUIET, CRASH]
    placed: list[Order] = []
    outcomes: list[ModifyOutcome] = []

    def act(strategy, bar, changes: dict[str, Any]):
        if bar == 0:
            placed.append(limit_buy(90.0, tif="gtc"))
            return placed[-1:]
        if bar == 1 and changes:
            outcomes.append(strategy.modify(placed[-1], **changes))
        return None

    control = run(make(lambda s, b: act(s, b, {})), rows)
    assert [(f.fill_price, f.fill_quantity) for f in control.fills] == [(90.0, 10.0)]
    bigger = run(make(lambda s, b: act(s, b, {"quantity": 25})), rows)
    assert [(f.fill_price, f.fill_quantity) for f in bigger.fills] == [(90.0, 25.0)]
    day = run(make(lambda s, b: act(s, b, {"time_in_force": "day"})), rows)
    assert day.fills == []
    assert placed[-1].status is OrderStatus.EXPIRED
    assert outcomes == [ModifyOutcome.APPLIED] * 2


def test_refusals_are_named_and_change_nothing(make):
    rows = [QUIET, CRASH, QUIET, QUIET]
    placed: list[Order] = []
    outcomes: list[ModifyOutcome] = []

    def act(strategy, bar):
        if bar == 0:
            placed.append(limit_buy(90.0))
            placed.append(limit_buy(50.0))
            return placed[:]
        if bar == 1:  # the crash filled the first
            outcomes.append(strategy.modify(placed[0], limit_price=80.0))
            strategy.cancel(placed[1])
            outcomes.append(strategy.modify(placed[1], limit_price=60.0))
        return None

    run(make(act), rows)
    assert outcomes == [ModifyOutcome.ALREADY_FILLED, ModifyOutcome.NOT_WORKING]
    assert placed[0].limit_price == 90.0
    assert placed[1].limit_price == 50.0


def test_a_quantity_below_what_filled_is_refused_and_equal_completes_the_order(make):
    rows = [QUIET, CRASH, QUIET, QUIET]
    placed: list[Order] = []
    outcomes: list[ModifyOutcome] = []

    def act(strategy, bar):
        if bar == 0:
            placed.append(Order("X", 100, "limit", "buy", limit_price=90.0, time_in_force="gtc"))
            return placed[:]
        if bar == 1:  # the volume limit let 10 of 100 fill on the crash bar
            assert placed[0].filled_quantity == 10
            outcomes.append(strategy.modify(placed[0], quantity=5))
            outcomes.append(strategy.modify(placed[0], quantity=10))
        return None

    result = run(make(act), rows, volume_limit=0.01)
    assert outcomes == [ModifyOutcome.BELOW_FILLED, ModifyOutcome.APPLIED]
    assert placed[0].status is OrderStatus.FILLED
    assert placed[0].quantity == 10
    assert sum(f.fill_quantity for f in result.fills) == 10


def test_a_modification_from_on_fill_sits_out_the_rest_of_the_bar(make):
    """Two limits; the first fill's on_fill raises the second's limit. The bar's low (80) would fill it at
    its new price later in the bar, but the strategy decided after the first fill: it waits for the next bar."""
    rows = [QUIET, CRASH, (85.0, 86.0, 84.0, 85.0)]
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == 0:
            placed.extend([limit_buy(95.0), limit_buy(70.0)])
            return placed[:]
        return None

    def on_fill(strategy, fill):
        if fill.order is placed[0]:
            assert strategy.modify(placed[1], limit_price=86.0) is ModifyOutcome.APPLIED

    result = run(make(act, on_fill), rows)
    index = daily_bars(rows).index
    assert [(f.order.order_id, f.timestamp) for f in result.fills] == [
        (placed[0].order_id, index[1]),
        (placed[1].order_id, index[2]),  # not on bar 1, whose low 80 came after the decision
    ]
    # bar 2 opens below the new limit: the default spread fills the buy at that open's ask (one tick up)
    assert result.fills[1].fill_price == 85.01


def test_a_day_order_modified_from_on_fill_on_its_last_bar_still_expires(make):
    """Daily bars: each bar is a session. A DAY order modified while its only bar is matched sits out the rest
    of that bar and expires with its session, as if unmodified; it never works on the next day."""
    rows = [QUIET, CRASH, (85.0, 86.0, 84.0, 85.0)]
    placed: list[Order] = []

    def act(strategy, bar):
        if bar == 0:
            placed.extend([limit_buy(95.0, tif="day"), limit_buy(70.0, tif="day")])
            return placed[:]
        return None

    def on_fill(strategy, fill):
        if fill.order is placed[0]:
            strategy.modify(placed[1], limit_price=86.0)

    result = run(make(act, on_fill), rows)
    assert [f.order.order_id for f in result.fills] == [placed[0].order_id]
    assert placed[1].status is OrderStatus.EXPIRED
    assert placed[1].limit_price == 86.0


def test_bad_modifications_raise_named_errors(make):
    rows = [QUIET, QUIET, QUIET]
    errors: list[str] = []

    def act(strategy, bar):
        if bar == 0:
            return [limit_buy(90.0)]
        if bar == 1:
            (order,) = strategy.open_orders()
            for changes in ({"side": "sell"}, {"limit_price": -1}, {}, {"time_in_force": "ioc"}):
                try:
                    strategy.modify(order, **changes)
                except OrderValidationError as exc:
                    errors.append(str(exc))
            try:
                strategy.modify("nope", limit_price=1.0)
            except StrategyError as exc:
                errors.append(str(exc))
        return None

    run(make(act), rows)
    assert len(errors) == 5
    assert "side of order" in errors[0]
    assert "cancel it and submit a new order" in errors[0]
    assert "limit_price must be a positive finite price" in errors[1]
    assert "needs at least one change" in errors[2]
    assert "'ioc'" in errors[3]
    assert "unknown order" in errors[4]


def test_check_modification_keeps_the_unchanged_terms():
    order = Order("X", 10, "stop_limit", "sell", limit_price=95.0, stop_price=96.0, time_in_force="gtc")
    new = check_modification(order, {"stop_price": 97.0})
    assert (new.quantity, new.limit_price, new.stop_price, new.time_in_force) == (10, 95.0, 97.0, "gtc")
    assert new.describe(order) == "stop_price 96 -> 97"
    trailing = Order("X", 10, "trailing_stop", "sell", trail_amount=2.0)
    with pytest.raises(OrderValidationError, match="trailing stop"):
        check_modification(trailing, {"stop_price": 90.0})
    assert check_modification(trailing, {"quantity": 5}).quantity == 5


def test_a_bracket_exit_held_until_its_entry_fills_can_be_modified(make):
    """IB holds a bracket's exits PreSubmitted until the entry fills, and they can be modified meanwhile."""
    rows = [QUIET, QUIET, DIP, CRASH, QUIET]
    placed: list[Order] = []
    outcomes: list[ModifyOutcome] = []

    def act(strategy, bar):
        if bar == 0:
            placed.extend(
                Order.bracket(
                    "X", 10, "buy", limit_price=95.0, take_profit=150.0, stop_loss=80.0, time_in_force="gtc"
                )
            )
            return placed[:]
        if bar == 1:  # the entry has not filled: the stop-loss is held, and is raised
            outcomes.append(strategy.modify(placed[2], stop_price=90.0))
        return None

    result = run(make(act), rows)
    assert outcomes == [ModifyOutcome.APPLIED]
    entry, take_profit, stop_loss = placed
    assert [(f.order.order_id, f.fill_price) for f in result.fills] == [
        (entry.order_id, 95.0),
        (stop_loss.order_id, 90.0),  # the raised stop, not the first one at 80
    ]
    assert take_profit.status is OrderStatus.CANCELLED
