"""SimpleBroker: costs, buying power, shorts and the IBroker contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.costs import FixedSlippage, PerShareCommission
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.errors import ConfigError
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2024, 1, 2, 21, tzinfo=UTC)


def test_simple_broker_implements_the_ibroker_port():
    assert issubclass(SimpleBroker, IBroker)


def test_a_market_buy_pays_the_slipped_price_and_the_percentage_commission():
    broker = SimpleBroker(100_000, commission=0.001, slippage=0.0005)
    fill = broker.execute_order(Order("AAPL", 10), 100.0, NOW)
    assert fill is not None
    assert fill.fill_price == pytest.approx(100.05)
    assert fill.commission == pytest.approx(100.05 * 10 * 0.001)
    assert broker.get_cash_balance() == pytest.approx(100_000 - 1000.5 - 1.0005)
    pos = broker.get_positions()["AAPL"]
    assert (pos.quantity, pos.avg_cost) == (10, pytest.approx(100.05))
    assert fill.order.status is OrderStatus.FILLED
    assert fill.order.filled_quantity == 10


def test_a_market_sell_gets_the_price_moved_down():
    broker = SimpleBroker(100_000, commission=0.0, slippage=0.001)
    broker.execute_order(Order("AAPL", 10), 100.0, NOW)
    fill = broker.execute_order(Order("AAPL", 10, side="sell"), 100.0, NOW)
    assert fill is not None
    assert fill.fill_price == pytest.approx(99.9)
    assert "AAPL" not in broker.get_positions()


def test_the_guides_calculate_methods_use_the_models():
    broker = SimpleBroker(commission=0.001, slippage=0.0005)
    assert broker.calculate_commission(50.0, 100) == pytest.approx(5.0)
    assert broker.calculate_slippage(Order("X", 1), 100.0) == pytest.approx(100.05)
    assert broker.calculate_slippage(Order("X", 1, side="sell"), 100.0) == pytest.approx(99.95)


def test_fixed_slippage_moves_by_an_amount_per_share():
    broker = SimpleBroker(commission=0, slippage=FixedSlippage(0.02))
    assert broker.calculate_slippage(Order("X", 1), 10.0) == pytest.approx(10.02)


@pytest.mark.parametrize(
    ("quantity", "price", "expected"),
    [
        (100, 50.0, 1.0),  # 100 × $0.005 = $0.50 -> the $1 minimum
        (10_000, 50.0, 50.0),  # 10,000 × $0.005
        (1_000, 0.10, 1.0),  # cap: 1 % of $100 = $1
        (10_000, 0.05, 5.0),  # $50 per-share fee capped at 1 % of $500
    ],
)
def test_ibkr_fixed_commission_has_a_minimum_and_a_cap(quantity, price, expected):
    broker = SimpleBroker(1_000_000, commission=PerShareCommission(), slippage=0)
    fill = broker.execute_order(Order("X", quantity), price, NOW)
    assert fill is not None
    assert fill.commission == pytest.approx(expected)


class TestBuyingPower:
    def test_a_buy_that_costs_more_than_the_cash_is_rejected_with_a_reason(self):
        broker = SimpleBroker(1_000, commission=0.001, slippage=0)
        order = Order("AAPL", 10)
        assert broker.check_buying_power(order, 100.0) is False
        assert broker.execute_order(order, 100.0, NOW) is None
        assert order.status is OrderStatus.REJECTED
        assert "insufficient cash" in order.reject_reason
        assert "1,001.00" in order.reject_reason  # the cost including commission
        assert broker.orders == [order]  # recorded, not dropped
        assert broker.get_cash_balance() == 1_000

    def test_the_commission_counts_towards_the_cost(self):
        broker = SimpleBroker(1_000, commission=0.001, slippage=0)
        assert broker.check_buying_power(Order("AAPL", 10), 99.9) is True  # 999 + 0.999
        assert broker.check_buying_power(Order("AAPL", 10), 99.95) is False  # 999.5 + 0.9995

    def test_buying_back_a_short_never_needs_cash(self):
        broker = SimpleBroker(1_000, commission=0, slippage=0)
        broker.execute_order(Order("X", 10, side="sell"), 100.0, NOW)  # cash 2,000
        fill = broker.execute_order(Order("X", 10), 300.0, NOW)  # costs 3,000 > cash
        assert fill is not None
        assert broker.get_cash_balance() == pytest.approx(-1_000)
        assert broker.get_positions() == {}


class TestShorts:
    def test_shorts_are_refused_when_disabled(self):
        broker = SimpleBroker(100_000, allow_short=False)
        broker.execute_order(Order("X", 5), 10.0, NOW)
        order = Order("X", 10, side="sell")
        assert broker.check_buying_power(order, 10.0) is False
        assert broker.execute_order(order, 10.0, NOW) is None
        assert order.status is OrderStatus.REJECTED
        assert "short selling is disabled" in order.reject_reason

    def test_selling_what_is_held_is_fine_without_shorts(self):
        broker = SimpleBroker(100_000, allow_short=False)
        broker.execute_order(Order("X", 5), 10.0, NOW)
        assert broker.execute_order(Order("X", 5, side="sell"), 10.0, NOW) is not None

    def test_a_short_has_negative_market_value_and_no_phantom_equity(self):
        broker = SimpleBroker(100_000, commission=0, slippage=0)
        broker.execute_order(Order("X", 10, side="sell"), 100.0, NOW)
        pos = broker.get_positions()["X"]
        assert pos.quantity == -10
        assert pos.market_value == pytest.approx(-1_000)
        assert broker.get_cash_balance() == pytest.approx(101_000)
        assert broker.get_account_value() == pytest.approx(100_000)  # not 102,000 (D-B1)
        assert broker.get_account_value({"X": 110.0}) == pytest.approx(99_900)


class TestShortMargin:
    """Shorts are not leverage (D-B1): gross exposure after a trade may not exceed equity."""

    def test_a_short_larger_than_the_equity_is_rejected_with_a_reason(self):
        broker = SimpleBroker(100_000, commission=0, slippage=0)
        order = Order("X", 2_000, side="sell")  # $200k short on $100k equity
        assert broker.check_buying_power(order, 100.0) is False
        assert broker.execute_order(order, 100.0, NOW) is None
        assert order.status is OrderStatus.REJECTED
        assert "insufficient buying power" in order.reject_reason
        assert "200,000.00" in order.reject_reason
        assert broker.get_cash_balance() == 100_000
        assert broker.execute_order(Order("X", 900, side="sell"), 100.0, NOW) is not None

    def test_short_sale_proceeds_cannot_buy_more_stock_than_the_equity(self):
        broker = SimpleBroker(100_000, commission=0, slippage=0)
        broker.execute_order(Order("X", 900, side="sell"), 100.0, NOW)  # cash 190,000
        order = Order("Y", 500)  # 90k short + 50k long > 100k equity
        assert broker.execute_order(order, 100.0, NOW) is None
        assert "insufficient buying power" in order.reject_reason
        assert broker.execute_order(Order("Y", 100), 100.0, NOW) is not None  # 90k + 10k

    def test_a_sell_through_a_long_into_a_short_is_checked_on_the_short_part(self):
        broker = SimpleBroker(10_000, commission=0, slippage=0)
        broker.execute_order(Order("X", 100), 100.0, NOW)
        order = Order("X", 300, side="sell")  # ends 200 short = $20k on $10k equity
        assert broker.execute_order(order, 100.0, NOW) is None
        assert order.status is OrderStatus.REJECTED
        assert broker.execute_order(Order("X", 190, side="sell"), 100.0, NOW) is not None  # 90 short

    def test_closing_a_short_is_never_refused_even_after_losses(self):
        broker = SimpleBroker(10_000, commission=0, slippage=0)
        broker.execute_order(Order("X", 90, side="sell"), 100.0, NOW)
        broker.mark("X", 200.0)  # the short lost 9,000: equity 1,000
        assert broker.execute_order(Order("X", 90), 200.0, NOW) is not None

    def test_other_positions_count_at_their_marks(self):
        broker = SimpleBroker(10_000, commission=0, slippage=0)
        broker.execute_order(Order("X", 50, side="sell"), 100.0, NOW)  # 5k short
        broker.mark("X", 150.0)  # now a 7.5k short; equity 7.5k
        assert broker.check_buying_power(Order("Y", 1, side="sell"), 10.0) is False
        broker.mark("X", 80.0)  # 4k short; equity 11k
        assert broker.check_buying_power(Order("Y", 600, side="sell"), 10.0) is True


class TestOrderTypesAtOnePrice:
    def test_a_limit_that_is_not_marketable_stays_working(self):
        broker = SimpleBroker()
        order = Order("X", 1, "limit", limit_price=9.0)
        assert broker.execute_order(order, 10.0, NOW) is None
        assert order.status is OrderStatus.SUBMITTED
        assert broker.get_positions() == {}

    def test_a_marketable_limit_fills_at_the_price_without_slippage(self):
        broker = SimpleBroker(slippage=0.01)
        fill = broker.execute_order(Order("X", 1, "limit", limit_price=11.0), 10.0, NOW)
        assert fill is not None
        assert fill.fill_price == 10.0

    def test_a_stop_not_yet_triggered_does_not_fill(self):
        broker = SimpleBroker()
        order = Order("X", 1, "stop", stop_price=11.0)
        assert broker.execute_order(order, 10.0, NOW) is None
        assert order.status is OrderStatus.SUBMITTED

    def test_a_triggered_stop_fills_with_slippage(self):
        broker = SimpleBroker(slippage=0.01)
        fill = broker.execute_order(Order("X", 1, "stop", stop_price=11.0), 12.0, NOW)
        assert fill is not None
        assert fill.fill_price == pytest.approx(12.12)

    def test_a_bad_price_rejects_the_order(self):
        broker = SimpleBroker()
        order = Order("X", 1)
        assert broker.execute_order(order, float("nan"), NOW) is None
        assert order.status is OrderStatus.REJECTED
        assert "no valid market price" in order.reject_reason


def test_positions_are_snapshots():
    broker = SimpleBroker(commission=0, slippage=0)
    broker.execute_order(Order("X", 10), 10.0, NOW)
    broker.get_positions()["X"].quantity = 999
    assert broker.get_positions()["X"].quantity == 10
    assert broker.get_position("x") is not None


def test_a_filled_order_is_not_filled_twice():
    broker = SimpleBroker(commission=0, slippage=0)
    order = Order("X", 10)
    assert broker.execute_order(order, 10.0, NOW) is not None
    assert broker.fill(order, 10.0, NOW) is None
    assert broker.get_positions()["X"].quantity == 10


@pytest.mark.parametrize("capital", [0, -5, float("nan"), float("inf")])
def test_a_bad_initial_capital_is_a_config_error(capital):
    with pytest.raises(ConfigError, match="initial_capital"):
        SimpleBroker(capital)


trades = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 500), st.floats(1.0, 500.0)),
    min_size=1,
    max_size=30,
)


@given(trades, st.sampled_from([0.0, 0.001]), st.sampled_from([0.0, 0.0005]))
def test_cash_changes_by_exactly_price_times_quantity_plus_or_minus_commission(trades, commission, slippage):
    broker = SimpleBroker(50_000, commission=commission, slippage=slippage)
    for side, qty, price in trades:
        before = broker.get_cash_balance()
        order = Order("X", qty, side=side)
        fill = broker.execute_order(order, price, NOW)
        if fill is None:
            assert order.status is OrderStatus.REJECTED
            assert broker.get_cash_balance() == before
            continue
        assert fill.fill_quantity <= order.quantity
        sign = 1 if side == "buy" else -1
        expected = before - sign * fill.fill_price * fill.fill_quantity - fill.commission
        assert broker.get_cash_balance() == pytest.approx(expected, rel=1e-12, abs=1e-9)
        assert broker.get_cash_balance() - before == pytest.approx(fill.net_proceeds, abs=1e-9)
    # equity identity at the last traded price
    last = trades[-1][2]
    held = sum(p.quantity for p in broker.get_positions().values())
    assert broker.get_account_value({"X": last}) == pytest.approx(broker.get_cash_balance() + held * last)
