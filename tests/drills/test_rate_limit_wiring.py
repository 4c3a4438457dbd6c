"""The engine's order-rate limit: a slot reserved by the risk check comes back when the broker rejects."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.journal import OrderState, TradeJournal
from copilot_quant.risk import RiskLimits

from .conftest import Scripted, assert_books_agree, journal_file, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

BUY = Order("AAPL", 10, "market", "buy")


def test_a_broker_rejected_order_does_not_use_up_the_order_rate(make_engine, gateway, journal_dir):
    strategy = Scripted({1: [BUY], 2: [BUY], 3: [BUY]})
    engine = make_engine(risk_limits=RiskLimits(max_orders_per_minute=1))
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    path = journal_file(journal_dir)

    def states() -> list[OrderState]:
        with TradeJournal(path, read_only=True) as journal:
            return [o.state for o in journal.orders()]

    gateway.reject_next_order("insufficient buying power")
    gateway.clock.step(1)
    assert wait_until(lambda: states() == [OrderState.REJECTED])
    gateway.clock.step(1)  # the rejected order gave its slot back: this one goes out
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    gateway.clock.step(1)  # it fills; bar 3's order is refused: the minute's one order was sent
    assert wait_until(lambda: len(strategy.fills) == 1)
    assert wait_until(lambda: any("max_orders_per_minute" in e["error"] for e in engine.errors))
    assert sorted(states()) == sorted([OrderState.REJECTED, OrderState.FILLED, OrderState.REJECTED])
    assert engine.risk.pending_reservations == 0
    assert_books_agree(gateway, path, strategy.fills, engine)
