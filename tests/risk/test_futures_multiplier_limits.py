"""The risk rails value a futures contract in money: price × multiplier (MES: 5 USD a point), as its fills do.

Before, an order for 2 MES at 5,000 counted 10,000 of notional instead of 50,000, and a bracket's worst
case a fifth of what the stop loses: every money limit was five times too loose for MES, 50 for ES.
"""

from __future__ import annotations

from copilot_quant.backtest.orders import Order
from copilot_quant.risk import RiskRule

from .test_limits import manager, refused


def test_the_order_notional_of_a_future_includes_its_multiplier() -> None:
    risk = manager(max_order_notional=30_000)
    decision = risk.check(Order("MESZ6", 2), 5000.0, {}, reserve=False)
    assert refused(decision, RiskRule.ORDER_NOTIONAL, "50,000.00", "multiplier 5")
    assert risk.check(Order("AAPL", 2), 5000.0, {}, reserve=False).ok  # a stock: 10,000


def test_the_position_notional_of_a_future_includes_its_multiplier() -> None:
    risk = manager(max_position_notional_per_symbol=30_000)
    decision = risk.check(Order("MESZ6", 2), 5000.0, {}, reserve=False)
    assert refused(decision, RiskRule.POSITION_NOTIONAL, "50,000.00")


def test_a_futures_brackets_worst_case_is_in_money() -> None:
    risk = manager(max_daily_loss=1_000)
    entry, take_profit, stop_loss = Order.bracket(
        "MESZ6", 2, "buy", limit_price=5000.0, take_profit=5100.0, stop_loss=4950.0
    )
    # 2 contracts x 50 points x 5 USD = 500 at worst: with 600 lost today the bracket would break 1,000
    decision = risk.check(entry, 5000.0, {}, daily_pnl=-600.0, exits=[take_profit, stop_loss], reserve=False)
    assert refused(decision, RiskRule.DAILY_LOSS, "worst case loses 500.00")
