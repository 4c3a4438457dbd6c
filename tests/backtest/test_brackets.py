"""Brackets in a backtest (Order.bracket, model/bracket.py): exits held until the entry fills, one-cancels-
other, the exposure rule on partial fills, and no look-ahead when the entry and an exit trade on one bar."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order, OrderStatus

from tests.backtest.engine_helpers import daily_bars
from tests.backtest.test_strategy_cancel import KINDS

QUIET = (100.0, 101.0, 99.0, 100.0)
UP = (100.0, 112.0, 99.0, 111.0)  # closes up: open -> low -> high -> close
DOWN = (100.0, 101.0, 88.0, 89.0)  # closes down: open -> high -> low -> close


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Any:
    return KINDS[request.param]


def run(strategy, rows, **engine_args: Any):
    # the bracket rules at the bars' own prices (hand-computed fills): no spread
    engine = BacktestEngine(100_000, commission=0, slippage=0, spread=None, **engine_args)
    engine.add_strategy(strategy)
    return engine.run(data=daily_bars(rows), symbols=["X"])


def bracket(**terms: Any) -> list[Order]:
    terms.setdefault("take_profit", 110.0)
    terms.setdefault("stop_loss", 90.0)
    return Order.bracket("X", 10, "buy", time_in_force="gtc", **terms)


def once(orders_at_bar0):
    return lambda strategy, bar: orders_at_bar0() if bar == 0 else None


def test_the_exits_wait_for_the_entry_then_the_take_profit_fills_and_cancels_the_stop(make):
    # bar 1: the limit entry at 95 does not fill (low 99); the exits stay held although 110 is not
    # reached either; bar 2 fills the entry at 95; bar 3 reaches 110.
    rows = [QUIET, QUIET, (100.0, 100.0, 94.0, 96.0), UP, QUIET]
    result = run(make(once(lambda: bracket(limit_price=95.0))), rows)
    entry, take_profit, stop_loss = result.orders
    assert entry.status is OrderStatus.FILLED
    assert entry.avg_fill_price == 95.0
    assert take_profit.status is OrderStatus.FILLED
    assert take_profit.avg_fill_price == 110.0
    assert stop_loss.status is OrderStatus.CANCELLED
    assert "the other exit filled" in stop_loss.reject_reason
    assert sum(f.signed_quantity for f in result.fills) == 0


def test_an_exit_never_fills_before_its_entry(make):
    # The take-profit's price (110) trades on bar 1, before the entry (a limit at 95) fills on bar 2.
    rows = [QUIET, UP, (100.0, 100.0, 94.0, 96.0), QUIET]
    result = run(make(once(lambda: bracket(limit_price=95.0))), rows)
    entry, take_profit, stop_loss = result.orders
    assert entry.status is OrderStatus.FILLED
    assert take_profit.filled_quantity == 0
    assert stop_loss.filled_quantity == 0
    assert all("backtest ended" in o.reject_reason for o in (take_profit, stop_loss))  # working to the end
    assert sum(f.signed_quantity for f in result.fills) == 10


def test_entry_and_stop_on_one_bar_the_stop_fills_at_the_point_after_the_entry_conservatively(make):
    # Bar 1 closes down: open 100 -> high 101 -> low 88. The limit entry at 95 fills on the way down;
    # the stop at 90 is crossed on that same move, so it is offered the low (88) as a gap: it fills at 88,
    # not at its stop price 90 -- the worst price of the move (documented in model/bracket.py).
    result = run(make(once(lambda: bracket(limit_price=95.0))), [QUIET, DOWN, QUIET])
    entry, take_profit, stop_loss = result.orders
    assert entry.avg_fill_price == 95.0
    assert stop_loss.status is OrderStatus.FILLED
    assert stop_loss.avg_fill_price == 88.0
    assert take_profit.status is OrderStatus.CANCELLED
    assert [f.order.order_id for f in result.fills] == [entry.order_id, stop_loss.order_id]


def test_a_market_entry_fills_at_the_open_and_its_exits_work_on_the_rest_of_that_bar(make):
    # The market entry fills at bar 1's open (100); the bar then rises to 112: the take-profit fills at 110.
    result = run(make(once(bracket)), [QUIET, UP, QUIET])
    entry, take_profit, stop_loss = result.orders
    assert entry.avg_fill_price == 100.0
    assert take_profit.avg_fill_price == 110.0
    assert take_profit.status is OrderStatus.FILLED
    assert stop_loss.status is OrderStatus.CANCELLED


def test_cancelling_an_entry_that_filled_nothing_cancels_its_exits(make):
    def act(strategy, bar):
        if bar == 0:
            strategy.log = bracket(limit_price=92.0)
            return strategy.log
        if bar == 1:
            strategy.cancel(strategy.log[0])
        return None

    result = run(make(act), [QUIET, QUIET, QUIET, DOWN])
    assert [o.status for o in result.orders] == [OrderStatus.CANCELLED] * 3
    assert "ended cancelled without a fill" in result.orders[1].reject_reason
    assert not result.fills


@pytest.mark.parametrize("which", [1, 2], ids=["take-profit", "stop-loss"])
def test_cancelling_one_working_exit_cancels_the_other_and_keeps_the_position(make, which):
    """IB: the exits are one OCA group; cancelling one cancels the other. A DOWN bar later would have hit
    the stop: nothing sells, the position stays."""

    def act(strategy, bar):
        if bar == 0:
            strategy.log = bracket()  # a market entry: it fills on bar 1
            return strategy.log
        if bar == 2:
            strategy.cancel(strategy.log[which])
        return None

    result = run(make(act), [QUIET, QUIET, QUIET, DOWN, UP])
    entry, *exits = result.orders
    assert entry.status is OrderStatus.FILLED
    assert [o.status for o in exits] == [OrderStatus.CANCELLED] * 2
    assert f"bracket exit {exits[which - 1].order_id} was cancelled" in exits[2 - which].reject_reason
    assert sum(f.signed_quantity for f in result.fills) == 10


def test_cancelling_a_held_exit_cancels_the_other_and_the_entry_keeps_working(make):
    def act(strategy, bar):
        if bar == 0:
            strategy.log = bracket(limit_price=95.0)  # fills on bar 3 (low 94)
            return strategy.log
        if bar == 1:
            strategy.cancel(strategy.log[2])
        return None

    result = run(make(act), [QUIET, QUIET, QUIET, (100.0, 100.0, 94.0, 96.0), UP])
    entry, take_profit, stop_loss = result.orders
    assert entry.status is OrderStatus.FILLED  # no autoCancelParent at IB: the entry stays
    assert take_profit.status is OrderStatus.CANCELLED
    assert take_profit.filled_quantity == 0  # UP reaches 110: it would have sold
    assert stop_loss.status is OrderStatus.CANCELLED


def test_cancelling_an_exit_from_on_fill_cancels_the_other_at_once(make):
    """A cancel from on_fill while a bar is matched: the other exit takes no part in the rest of it."""

    def on_fill(strategy, fill):
        if fill.order is strategy.log[0]:
            strategy.cancel(strategy.log[1])

    def act(strategy, bar):
        if bar == 0:
            strategy.log = bracket(limit_price=95.0)
            return strategy.log
        return None

    # bar 1 falls through the entry (95) and then the stop (90): the stop was cancelled with its sibling
    result = run(make(act, on_fill), [QUIET, DOWN, QUIET])
    entry, take_profit, stop_loss = result.orders
    assert entry.status is OrderStatus.FILLED
    assert [take_profit.status, stop_loss.status] == [OrderStatus.CANCELLED] * 2
    assert sum(f.signed_quantity for f in result.fills) == 10


def test_a_partly_filled_entry_arms_its_exits_for_the_filled_part_only(make):
    # A volume limit of 1 %: bar 1 trades 600 shares, so the limit entry at 100 buys 6 of its 10; bar 2 does
    # not reach the entry again but reaches the take-profit with volume to spare: it sells the 6 held, not
    # 10 (never short). Bar 3 buys the other 4 at 100; bar 4 sells them.
    def act(strategy, bar):
        return bracket(limit_price=100.0, take_profit=105.0) if bar == 0 else None

    rows = [
        QUIET,
        QUIET,
        (101.0, 106.0, 101.0, 105.0),
        (100.0, 101.0, 99.0, 100.0),
        (101.0, 106.0, 101.0, 105.0),
    ]
    data = daily_bars(rows)
    data["Volume"] = [1_000.0, 600.0, 10_000.0, 10_000.0, 10_000.0]
    engine = BacktestEngine(100_000, commission=0, slippage=0, volume_limit=0.01, spread=None)
    engine.add_strategy(make(act))
    result = engine.run(data=data, symbols=["X"])
    entry, take_profit, stop_loss = result.orders
    steps = [(f.order.order_id, f.signed_quantity) for f in result.fills]
    assert steps == [
        (entry.order_id, 6),
        (take_profit.order_id, -6),
        (entry.order_id, 4),
        (take_profit.order_id, -4),
    ]
    assert take_profit.status is OrderStatus.FILLED
    assert stop_loss.status is OrderStatus.CANCELLED


def test_exits_without_their_entry_are_refused_by_name(make):
    _, take_profit, _ = bracket()
    run(make(once(lambda: [take_profit])), [QUIET, QUIET])
    assert take_profit.status is OrderStatus.REJECTED
    assert "bracket exit" in take_profit.reject_reason


def test_fill_at_close_a_bracket_entry_fills_now_and_its_exits_work_from_the_next_bar(make):
    result = run(make(once(bracket)), [QUIET, UP, QUIET], fill_at="close")
    entry, take_profit, stop_loss = result.orders
    assert entry.avg_fill_price == 100.0  # bar 0's close
    assert take_profit.avg_fill_price == 110.0
    assert stop_loss.status is OrderStatus.CANCELLED
