"""One-cancels-all groups in a backtest (Order.oca_group / Order.one_cancels_all), on both strategy paths."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.errors import OrderValidationError

from tests.backtest.engine_helpers import daily_bars
from tests.backtest.test_strategy_cancel import KINDS, Act

QUIET = (100.0, 101.0, 99.0, 100.0)
WIDE = (100.0, 115.0, 85.0, 99.0)  # closes down: open -> high -> low -> close, both exits trade


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Any:
    return KINDS[request.param]


def run(strategy, rows, **engine_args: Any):
    engine = BacktestEngine(10_000, commission=0, slippage=0, **engine_args)
    engine.add_strategy(strategy)
    return engine.run(data=daily_bars(rows), symbols=["X"])


def bracket_exit(oca_type: int = 1) -> list[Order]:
    take_profit = Order("X", 10, "limit", "sell", limit_price=110.0, time_in_force="gtc")
    stop_loss = Order("X", 10, "stop", "sell", stop_price=90.0, time_in_force="gtc")
    return Order.one_cancels_all([take_profit, stop_loss], "exit", oca_type)


def enter_then(exit_orders: Act) -> Act:
    def act(strategy, bar):
        if bar == 0:
            return [Order("X", 10, "market", "buy")]
        if bar == 1:
            return exit_orders(strategy, bar)
        return None

    return act


def test_the_exit_that_trades_first_on_the_path_cancels_the_other(make):
    result = run(make(enter_then(lambda s, b: bracket_exit())), [QUIET, QUIET, WIDE, QUIET])
    _, take_profit, stop_loss = result.orders
    assert take_profit.status is OrderStatus.FILLED  # the high (110) comes before the low on this bar
    assert take_profit.avg_fill_price == 110.0
    assert stop_loss.status is OrderStatus.CANCELLED
    assert "OCA group 'exit'" in stop_loss.reject_reason
    assert sum(f.signed_quantity for f in result.fills) == 0  # flat, not short


def test_without_a_group_both_exits_fill_and_the_position_goes_short(make):
    def plain(strategy, bar):
        return [o.copy(oca_group="") for o in bracket_exit()]

    result = run(make(enter_then(plain)), [QUIET, QUIET, WIDE, QUIET])
    assert [o.status for o in result.orders[1:]] == [OrderStatus.FILLED, OrderStatus.FILLED]


@pytest.mark.parametrize(("oca_type", "bought"), [(1, 10), (2, 10), (3, 20)])
def test_two_entries_at_the_same_price_fill_once_with_a_block_and_twice_without(make, oca_type, bought):
    def act(strategy, bar):
        if bar == 0:
            entries = [Order("X", 10, "limit", "buy", limit_price=105.0) for _ in range(2)]
            return Order.one_cancels_all(entries, "entry", oca_type)
        return None

    result = run(make(act), [QUIET, QUIET, QUIET])
    assert sum(f.fill_quantity for f in result.fills) == bought


def test_reduce_with_block_shrinks_the_other_member_under_a_volume_limit(make):
    """10 shares may fill per bar: A fills 10 of 20 (group half done), so B may fill 10 at most; A's
    next 10 complete the group and cancel B."""

    def act(strategy, bar):
        if bar == 0:
            entries = [
                Order("X", 20, "limit", "buy", limit_price=105.0, time_in_force="gtc") for _ in range(2)
            ]
            return Order.one_cancels_all(entries, "entry", 2)
        return None

    result = run(make(act), [QUIET] * 4, volume_limit=0.01)
    first, second = result.orders
    assert (first.status, first.filled_quantity) == (OrderStatus.FILLED, 20)
    assert (second.status, second.filled_quantity, second.quantity) == (OrderStatus.CANCELLED, 0, 10)


def test_a_group_refuses_a_member_of_another_type_and_members_after_an_execution(make):
    def act(strategy, bar):
        if bar == 0:
            return [
                Order("X", 10, "limit", "buy", limit_price=105.0, oca_group="g", oca_type=1),
                Order("X", 10, "limit", "buy", limit_price=50.0, oca_group="g", oca_type=2),
            ]
        if bar == 2:
            return [Order("X", 10, "limit", "buy", limit_price=50.0, oca_group="g", oca_type=1)]
        return None

    result = run(make(act), [QUIET] * 4)
    first, mixed, late = result.orders
    assert first.status is OrderStatus.FILLED
    assert mixed.status is OrderStatus.REJECTED
    assert "same ocaType" in mixed.reject_reason
    assert late.status is OrderStatus.REJECTED
    assert "already has executions" in late.reject_reason


@pytest.mark.parametrize("bad", [0, 4, "sometimes"])
def test_an_unknown_oca_type_is_a_named_error_at_construction(bad):
    with pytest.raises(OrderValidationError, match="unknown oca_type"):
        Order("X", 10, oca_group="g", oca_type=bad)
    with pytest.raises(OrderValidationError, match="non-empty name"):
        Order.one_cancels_all([Order("X", 10)], "  ")


@pytest.mark.parametrize("oca_type", [2, 3])
def test_a_member_lowered_then_filled_completes_the_group(make, oca_type):
    """Both members are placed for 20; the first is modified to 10 and then fills them: that is the whole
    member, so the group is done and the second cancelled (not reduced to the half of 20 left)."""

    def act(strategy, bar):
        if bar == 0:
            entries = [
                Order("X", 20, "limit", "buy", limit_price=50.0, time_in_force="gtc") for _ in range(2)
            ]
            return Order.one_cancels_all(entries, "entry", oca_type)
        if bar == 1:
            strategy.modify(strategy.open_orders()[0], quantity=10, limit_price=105.0)
        return None

    result = run(make(act), [QUIET] * 4)
    first, second = result.orders
    assert (first.status, first.filled_quantity) == (OrderStatus.FILLED, 10)
    assert (second.status, second.filled_quantity) == (OrderStatus.CANCELLED, 0)
    assert "OCA group 'entry'" in second.reject_reason  # not the end of the run


def test_a_raised_member_is_reduced_from_its_new_quantity(make):
    """20 and 20; the second is raised to 80 before anything fills. Under a volume limit of 10 a bar the
    first fills 10 of its 20: the second loses those 10 from its 80 (IB: "by the partially filled
    quantity"), then the first fills its last 10 and completes, which cancels the second."""

    def act(strategy, bar):
        if bar == 0:
            entries = [
                Order("X", 20, "limit", "buy", limit_price=50.0, time_in_force="gtc") for _ in range(2)
            ]
            return Order.one_cancels_all(entries, "entry", 2)
        if bar == 1:
            first, second = strategy.open_orders()
            strategy.modify(second, quantity=80)
            strategy.modify(first, limit_price=105.0)
        return None

    result = run(make(act), [QUIET] * 3, volume_limit=0.01)
    first, second = result.orders
    assert first.filled_quantity == 10
    assert (second.filled_quantity, second.quantity) == (0, 70)  # 80 - 10, not 80 x (1 - 10/20)
    result = run(make(act), [QUIET] * 4, volume_limit=0.01)
    first, second = result.orders
    assert (first.status, first.filled_quantity) == (OrderStatus.FILLED, 20)
    assert (second.status, second.filled_quantity) == (OrderStatus.CANCELLED, 0)  # not left with 60


@pytest.mark.parametrize("oca_type", [1, 2, 3])
def test_cancelling_a_member_cancels_the_rest_of_its_group(make, oca_type):
    """IB: "if ... any separate order within the OCA is canceled by the user, the remaining working
    order(s) will automatically be sent cancellation requests". The CRASH bar would fill both limits."""

    def act(strategy, bar):
        if bar == 0:
            strategy.log = Order.one_cancels_all(
                [Order("X", 10, "limit", "buy", limit_price=p, time_in_force="gtc") for p in (90.0, 85.0)],
                "pick",
                oca_type,
            )
            return strategy.log
        if bar == 1:
            strategy.cancel(strategy.log[1])
        return None

    result = run(make(act), [QUIET, QUIET, (100.0, 100.0, 80.0, 85.0)])
    first, second = result.orders
    assert [first.status, second.status] == [OrderStatus.CANCELLED] * 2
    assert f"order {second.order_id} of OCA group 'pick' was cancelled" in first.reject_reason
    assert not result.fills
