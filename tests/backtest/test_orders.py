"""Domain types (Order, Fill, Position) and the commission/slippage models."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.costs import (
    CommissionModel,
    FixedSlippage,
    NoSlippage,
    PercentCommission,
    PercentSlippage,
    PerShareCommission,
    SlippageModel,
    ZeroCommission,
    commission_model,
    execution_commission,
    slippage_model,
)
from copilot_quant.backtest.orders import (
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    continue_order_ids_after,
)
from copilot_quant.errors import ConfigError, CopilotQuantError, OrderValidationError
from hypothesis import given
from hypothesis import strategies as st

NOW = datetime(2024, 1, 5, 21, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- Order
def test_order_accepts_the_guides_call_and_parses_strings_into_enums():
    order = Order(symbol="aapl", quantity=10, order_type="market", side="buy")
    assert order.symbol == "AAPL"
    assert order.order_type is OrderType.MARKET
    assert order.side is OrderSide.BUY
    assert order.time_in_force is TimeInForce.DAY
    assert order.status is OrderStatus.CREATED
    assert order.quantity == 10.0
    assert order.signed_quantity == 10.0
    assert order.remaining_quantity == 10.0


def test_order_understands_ib_style_abbreviations():
    order = Order("MSFT", 5, "LMT", "S", limit_price=300)
    assert order.type_enum is OrderType.LIMIT
    assert order.side_enum is OrderSide.SELL
    assert order.signed_quantity == -5.0
    assert Order("MSFT", 5, "stp lmt", "sell", limit_price=1, stop_price=2).type_enum is OrderType.STOP_LIMIT


def test_every_order_gets_its_own_id():
    ids = {Order("A", 1).order_id for _ in range(50)}
    assert len(ids) == 50


def _number(order: Order) -> int:
    assert order.order_id is not None
    return int(order.order_id[1:])


def test_automatic_ids_continue_after_the_highest_journaled_one():
    """What the live engine does at start: ids from an earlier process (O1, O2 ... again) are skipped."""
    highest = _number(Order("A", 1)) + 1000
    continue_order_ids_after(["my-entry", None, f"O{highest}", "O7", f"O{highest}x"])
    assert _number(Order("A", 1)) == highest + 1


def test_automatic_ids_never_go_back():
    before = _number(Order("A", 1))
    continue_order_ids_after(["O1", "O2"])
    continue_order_ids_after([])
    assert _number(Order("A", 1)) == before + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantity": 0}, "positive"),
        ({"quantity": -5}, "use side='sell'"),
        ({"quantity": math.nan}, "positive finite"),
        ({"quantity": math.inf}, "positive finite"),
        ({"quantity": "ten"}, "must be a number"),
        ({"quantity": True}, "number of shares"),
        ({"quantity": 1.5}, "allow_fractional=True"),
        ({"order_type": "trailing"}, "unknown order_type"),
        ({"side": "hold"}, "unknown side"),
        ({"time_in_force": "fok"}, "unknown time_in_force"),
        ({"order_type": "limit"}, "needs a positive limit_price"),
        ({"order_type": "limit", "limit_price": -1.0}, "positive finite price"),
        ({"order_type": "limit", "limit_price": math.nan}, "positive finite price"),
        ({"order_type": "stop"}, "needs a positive stop_price"),
        ({"order_type": "stop_limit", "stop_price": 10.0}, "needs a positive limit_price"),
        ({"order_type": "stop_limit", "limit_price": 10.0}, "needs a positive stop_price"),
        ({"limit_price": "cheap", "order_type": "limit"}, "must be a number"),
    ],
)
def test_invalid_orders_fail_at_construction_with_a_helpful_message(kwargs, message):
    fields = {"symbol": "AAPL", "quantity": 10} | kwargs
    with pytest.raises(OrderValidationError, match=message):
        Order(**fields)


@pytest.mark.parametrize("symbol", ["", "   ", None, 42])
def test_an_order_needs_a_symbol(symbol):
    with pytest.raises(OrderValidationError, match="symbol"):
        Order(symbol, 1)


def test_order_validation_errors_are_value_errors_for_code_written_against_the_guide():
    with pytest.raises(ValueError, match="unknown side"):
        Order("AAPL", 1, "market", "short")
    assert issubclass(OrderValidationError, CopilotQuantError)


def test_fractional_quantities_need_an_explicit_opt_in():
    assert Order("AAPL", 0.5, allow_fractional=True).quantity == 0.5


def test_copy_makes_a_fresh_unfilled_order():
    original = Order("AAPL", 10, "limit", "buy", limit_price=100.0, time_in_force="gtc")
    original.status = OrderStatus.REJECTED
    original.reject_reason = "insufficient cash"
    original.filled_quantity = 3.0
    original.broker_order_id = 17
    clone = original.copy(quantity=20)
    assert clone.order_id != original.order_id
    assert clone.quantity == 20.0
    assert clone.limit_price == 100.0
    assert clone.time_in_force is TimeInForce.GTC
    assert clone.status is OrderStatus.CREATED
    assert clone.filled_quantity == 0.0
    assert clone.reject_reason == ""
    assert clone.broker_order_id is None


def test_order_status_groups():
    done = {s for s in OrderStatus if s.is_done}
    assert done == {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
    assert all(s.is_active for s in OrderStatus if s not in done)


# ---------------------------------------------------------------------------------------------- Fill
def test_fill_cash_effect_of_a_buy_and_a_sell():
    buy = Fill(Order("AAPL", 10), fill_price=100.0, fill_quantity=10, commission=1.0, timestamp=NOW)
    assert buy.net_proceeds == pytest.approx(-1001.0)
    assert buy.total_cost == pytest.approx(1001.0)
    assert buy.notional == pytest.approx(1000.0)
    assert buy.signed_quantity == 10.0
    sell = Fill(
        Order("AAPL", 10, side="sell"), fill_price=100.0, fill_quantity=10, commission=1.0, timestamp=NOW
    )
    assert sell.net_proceeds == pytest.approx(999.0)
    assert sell.total_cost == pytest.approx(1001.0)
    assert sell.signed_quantity == -10.0
    assert sell.symbol == "AAPL"
    assert sell.side is OrderSide.SELL


@pytest.mark.parametrize(
    ("price", "qty", "commission", "field"),
    [
        (0.0, 1, 0.0, "fill_price"),
        (-1.0, 1, 0.0, "fill_price"),
        (math.nan, 1, 0.0, "fill_price"),
        ("abc", 1, 0.0, "fill_price"),
        (1.0, 0, 0.0, "fill_quantity"),
        (1.0, -3, 0.0, "fill_quantity"),
        (1.0, 1, -0.01, "commission"),
        (1.0, 1, None, "commission"),
    ],
)
def test_invalid_fills_are_refused(price, qty, commission, field):
    with pytest.raises(OrderValidationError, match=field):
        Fill(Order("AAPL", 1), price, qty, commission, NOW)


# ---------------------------------------------------------------------------------------------- Position
def test_position_averages_up_and_realizes_against_the_average():
    pos = Position("AAPL")
    pos.apply(10, 100.0)
    pos.apply(10, 110.0)
    assert pos.quantity == 20
    assert pos.avg_cost == pytest.approx(105.0)
    realized = pos.apply(-5, 120.0)
    assert realized == pytest.approx(75.0)
    assert pos.avg_entry_price == pytest.approx(105.0)  # reducing keeps the average
    assert pos.unrealized_pnl == pytest.approx(15 * 15.0)
    assert pos.total_pnl == pytest.approx(75.0 + 225.0)


def test_a_short_has_negative_market_value_and_gains_when_price_falls():
    pos = Position("AAPL")
    pos.apply(-10, 100.0)
    assert pos.market_value == pytest.approx(-1000.0)  # D-B1: no phantom equity
    pos.update_unrealized_pnl(90.0)
    assert pos.market_value == pytest.approx(-900.0)
    assert pos.unrealized_pnl == pytest.approx(100.0)
    realized = pos.apply(10, 90.0)
    assert realized == pytest.approx(100.0)
    assert pos.is_flat
    assert pos.avg_entry_price == 0.0
    assert pos.unrealized_pnl == 0.0


def test_crossing_through_zero_realizes_the_old_side_and_opens_the_rest_at_the_fill_price():
    pos = Position("AAPL")
    pos.apply(10, 100.0)
    realized = pos.apply(-25, 110.0)
    assert realized == pytest.approx(100.0)
    assert pos.quantity == -15
    assert pos.avg_entry_price == 110.0
    assert isinstance(pos.avg_entry_price, float)
    assert pos.market_value == pytest.approx(-1650.0)
    realized = pos.apply(20, 100.0)  # short back through zero into a long of 5
    assert realized == pytest.approx(150.0)
    assert pos.quantity == 5
    assert pos.avg_entry_price == 100.0


def test_update_from_fill_applies_side_and_commission():
    pos = Position("AAPL")
    pos.update_from_fill(Fill(Order("AAPL", 10), 50.0, 10, 2.5, NOW))
    pos.update_from_fill(Fill(Order("AAPL", 4, side="sell"), 60.0, 4, 1.0, NOW))
    assert pos.quantity == 6
    assert pos.realized_pnl == pytest.approx(40.0)  # before commission
    assert pos.commission_paid == pytest.approx(3.5)


def test_snapshot_is_independent():
    pos = Position("AAPL", quantity=5, avg_entry_price=10.0)
    snap = pos.snapshot()
    snap.quantity = 99
    assert pos.quantity == 5


@given(
    trades=st.lists(
        st.tuples(
            st.integers(min_value=-50, max_value=50).filter(bool),
            st.floats(min_value=1.0, max_value=500.0, allow_nan=False),
        ),
        min_size=1,
        max_size=30,
    ),
    mark=st.floats(min_value=1.0, max_value=500.0),
)
def test_position_pnl_equals_cash_flows_plus_market_value(trades, mark):
    """realized + unrealized P&L must equal what the trades did to cash plus what is still held."""
    pos = Position("X")
    cash = 0.0
    for qty, price in trades:
        pos.apply(qty, price)
        cash -= qty * price
    pos.update_unrealized_pnl(mark)
    assert pos.quantity == sum(q for q, _ in trades)
    assert pos.total_pnl == pytest.approx(cash + pos.market_value, rel=1e-9, abs=1e-6)


# ---------------------------------------------------------------------------------------------- costs
def test_percent_commission_is_rate_times_notional_with_an_optional_minimum():
    assert PercentCommission(0.001).commission(100.0, 10) == pytest.approx(1.0)
    assert PercentCommission(0.001, minimum=5.0).commission(100.0, 10) == 5.0
    assert PercentCommission(0.001).commission(100.0, -10) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("price", "qty", "expected"),
    [
        (100.0, 100, 1.00),  # $0.50 per-share fee, lifted to the $1 minimum
        (100.0, 1000, 5.00),  # 1000 × $0.005
        (50.0, 10_000, 50.00),  # 10k shares × $0.005 = $50 (cap is $5,000)
        (0.10, 10_000, 10.00),  # per-share $50 capped at 1 % of $1,000
        (5.0, 10, 0.50),  # minimum $1 but the cap of 1 % of $50 wins
    ],
)
def test_per_share_commission_follows_ibkr_fixed(price, qty, expected):
    assert PerShareCommission().commission(price, qty) == pytest.approx(expected)


def test_zero_commission_and_model_protocols():
    assert ZeroCommission().commission(123.0, 45) == 0.0
    for model in (PercentCommission(), PerShareCommission(), ZeroCommission()):
        assert isinstance(model, CommissionModel)
    for slip in (PercentSlippage(), FixedSlippage(), NoSlippage()):
        assert isinstance(slip, SlippageModel)


def test_slippage_moves_the_price_against_the_order():
    assert PercentSlippage(0.001).adjust(100.0, OrderSide.BUY) == pytest.approx(100.1)
    assert PercentSlippage(0.001).adjust(100.0, OrderSide.SELL) == pytest.approx(99.9)
    assert FixedSlippage(0.05).adjust(10.0, OrderSide.BUY) == pytest.approx(10.05)
    assert FixedSlippage(0.05).adjust(10.0, OrderSide.SELL) == pytest.approx(9.95)
    assert FixedSlippage(0.05).adjust(0.03, OrderSide.SELL) == 0.01  # never below a cent
    assert NoSlippage().adjust(10.0, OrderSide.BUY) == 10.0


def test_slippage_accepts_the_side_as_a_plain_string():
    assert PercentSlippage(0.001).adjust(100.0, "buy") == pytest.approx(100.1)  # type: ignore[arg-type]
    assert FixedSlippage(0.05).adjust(10.0, "buy") == pytest.approx(10.05)  # type: ignore[arg-type]


def test_plain_rates_become_models_as_in_the_guide():
    assert commission_model(0.001) == PercentCommission(0.001)
    assert isinstance(commission_model(0), ZeroCommission)
    assert isinstance(commission_model(None), ZeroCommission)
    fixed = PerShareCommission()
    assert commission_model(fixed) is fixed
    assert slippage_model(0.0005) == PercentSlippage(0.0005)
    assert isinstance(slippage_model(0.0), NoSlippage)
    assert isinstance(slippage_model(None), NoSlippage)


@pytest.mark.parametrize(
    ("factory", "value", "message"),
    [
        (commission_model, -0.001, ">= 0"),
        (commission_model, 1.0, "looks like a percentage"),
        (commission_model, "abc", "commission must be a rate"),
        (commission_model, math.nan, "finite"),
        (slippage_model, -1.0, ">= 0"),
        (slippage_model, 5.0, "looks like a percentage"),
        (slippage_model, "x", "slippage must be a rate"),
    ],
)
def test_bad_cost_settings_raise_config_errors(factory, value, message):
    with pytest.raises(ConfigError, match=message):
        factory(value)


def test_bad_model_parameters_raise_config_errors():
    with pytest.raises(ConfigError):
        PerShareCommission(per_share=-0.005)
    with pytest.raises(ConfigError):
        FixedSlippage(amount=math.inf)
    with pytest.raises(ConfigError):
        PercentCommission(minimum=-1)


# ------------------------------------------------------------------------------ commission of partial fills
def _split_commissions(model: CommissionModel, fills: list[tuple[float, float]]) -> list[float]:
    """What each execution of one order pays, in order."""
    paid, filled, avg = [], 0.0, 0.0
    for price, qty in fills:
        paid.append(execution_commission(model, price, qty, filled, avg))
        avg = (avg * filled + price * qty) / (filled + qty)
        filled += qty
    return paid


def test_ibkr_fixed_charges_its_minimum_once_per_order_not_per_execution():
    model = PerShareCommission()  # $0.005/share, $1 minimum, 1 % cap
    assert _split_commissions(model, [(50.0, 30), (50.0, 30), (50.0, 30), (50.0, 10)]) == [1.0, 0.0, 0.0, 0.0]
    # 1,000 shares: $5 in all, the first execution's minimum included
    assert sum(_split_commissions(model, [(50.0, 100), (50.0, 900)])) == pytest.approx(5.0)
    assert execution_commission(model, 50.0, 100) == model.commission(50.0, 100)  # a whole order: unchanged


@given(
    st.sampled_from([PerShareCommission(), PercentCommission(0.001, minimum=2.0), PercentCommission(0.002)]),
    st.lists(st.tuples(st.floats(0.5, 500), st.integers(1, 5_000)), min_size=1, max_size=8),
)
def test_however_an_order_is_split_its_executions_add_up_to_the_whole_orders_commission(model, fills):
    paid = _split_commissions(model, [(p, float(q)) for p, q in fills])
    total = sum(q for _, q in fills)
    vwap = sum(p * q for p, q in fills) / total
    assert all(c >= 0 for c in paid)
    assert sum(paid) == pytest.approx(model.commission(vwap, total), rel=1e-9, abs=1e-9)


def test_a_numpy_quantity_reads_as_a_plain_number_in_the_message():
    # issue 16: the message said "quantity np.float64(4.8123) is fractional"
    import numpy as np

    with pytest.raises(OrderValidationError, match=r"quantity 4\.8123 is fractional; round it") as caught:
        Order("AAPL", np.float64(4.8123), "market", "buy")
    assert "np." not in str(caught.value)
    with pytest.raises(OrderValidationError, match=r"got -3;"):
        Order("AAPL", np.int64(-3), "market", "buy")
    with pytest.raises(
        OrderValidationError, match=r"limit_price must be a positive finite price, got -1\.5$"
    ):
        Order("AAPL", 1, "limit", "buy", limit_price=np.float32(-1.5))
