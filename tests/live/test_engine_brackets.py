"""Brackets through the live engine against the simulated gateway: the group goes to IB in one go with
parentId/transmit, the risk check refuses it whole, the kill switch cancels it whole; and the mapping."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.ib_mapping import bracket_links
from copilot_quant.gateway.orders import IbStatus
from copilot_quant.journal import is_journal_ref
from copilot_quant.risk import RiskLimits

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


class Bracketer(Strategy):
    """Enters with one bracket on its first bar (terms relative to the last close)."""

    def __init__(
        self, quantity: float = 10, stop_at: float = 0.5, take_at: float = 3.0, entry_at: float | None = None
    ) -> None:
        super().__init__()
        self.quantity, self.stop_at, self.take_at, self.entry_at = quantity, stop_at, take_at, entry_at
        self.bars = 0
        self.sent: list[Order] = []
        self.fills: list[Fill] = []

    def on_data(self, timestamp, data):
        self.bars += 1
        if self.bars != 1:
            return None
        close = float(data["Close"].iloc[-1])
        self.sent = Order.bracket(
            "AAPL",
            self.quantity,
            "buy",
            limit_price=None if self.entry_at is None else round(close * self.entry_at, 2),
            take_profit=round(close * self.take_at, 2),
            stop_loss=round(close * self.stop_at, 2),
            time_in_force="gtc",
        )
        return self.sent

    def on_fill(self, fill):
        self.fills.append(fill)


def _started(make_engine, strategy: Strategy, **kwargs: Any) -> LiveStrategyEngine:
    engine = make_engine(**kwargs)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    return engine


def test_the_links_send_a_bracket_as_one_group_transmitted_by_its_last_exit():
    entry, take_profit, stop_loss = Order.bracket("AAPL", 10, "buy", take_profit=110.0, stop_loss=90.0)
    plain = Order("AAPL", 1)
    links = bracket_links([plain, entry, take_profit, stop_loss])
    assert links == [(None, True), (None, False), (entry.order_id, False), (entry.order_id, True)]


def test_a_bracket_reaches_ib_as_one_group_and_its_exits_protect_the_fill(make_engine, gateway):
    strategy = Bracketer(entry_at=0.6)  # a resting entry: the exits must wait at IB, PreSubmitted
    _started(make_engine, strategy)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 3)
    entry, take_profit, stop_loss = sorted(gateway.broker.open_orders(), key=lambda r: r.order_id)
    assert (take_profit.parent_id, stop_loss.parent_id) == (entry.order_id, entry.order_id)
    assert [r.status for r in (entry, take_profit, stop_loss)] == [
        IbStatus.SUBMITTED,
        IbStatus.PRE_SUBMITTED,
        IbStatus.PRE_SUBMITTED,
    ]
    assert all(is_journal_ref(r.order_ref) for r in (entry, take_profit, stop_loss))
    assert all(o.status is OrderStatus.SUBMITTED for o in strategy.sent)  # PreSubmitted is working, to us


def test_the_risk_check_counts_the_worst_case_and_refuses_the_bracket_whole(make_engine, gateway):
    # 10 shares stopped out at half the price lose far more than a max_daily_loss of 1.
    strategy = Bracketer()
    engine = _started(make_engine, strategy, risk_limits=RiskLimits(max_daily_loss=1.0))
    gateway.clock.step(1)
    assert wait_until(
        lambda: strategy.bars == 1 and all(o.status is OrderStatus.REJECTED for o in strategy.sent)
    )
    assert all("worst case" in o.reject_reason for o in strategy.sent)
    assert not gateway.broker.open_orders()
    assert not gateway.broker.completed_orders()  # nothing reached IB
    assert engine.journal is not None


def test_the_kill_switch_cancels_a_working_bracket_whole(make_engine, gateway):
    strategy = Bracketer()  # a market entry: it fills, the exits work
    engine = _started(make_engine, strategy)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 3)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.fills) == 1)
    assert len(gateway.broker.open_orders()) == 2  # the exits, protecting the position
    engine.kill("drill")
    assert wait_until(lambda: not gateway.broker.open_orders())
    assert all(o.status is IbStatus.CANCELLED for o in gateway.broker.completed_orders() if o.parent_id)


def test_the_adapter_places_a_bracket_in_one_go_and_refuses_an_exit_sent_alone(gateway):
    from datetime import UTC, datetime

    from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter

    broker = LiveBrokerAdapter(port=gateway.port, client_id=51, ack_timeout=0.3, fill_timeout=2)
    assert broker.connect(timeout=5)
    try:
        price = gateway.broker.last_price("AAPL")
        entry, take_profit, stop_loss = Order.bracket(
            "AAPL",
            5,
            "buy",
            limit_price=round(price * 0.6, 2),
            take_profit=price * 2,
            stop_loss=round(price * 0.5, 2),
        )
        lone = Order.bracket("AAPL", 5, "buy", take_profit=price * 2)[1]
        assert broker.execute_order(lone, price, datetime.now(UTC)) is None
        assert lone.status is OrderStatus.REJECTED
        assert "its entry is not working at IB" in lone.reject_reason
        assert broker.place_orders([(o, price, "") for o in (entry, take_profit, stop_loss)]) == [True] * 3
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 3)
        (parent,) = [r for r in gateway.broker.open_orders() if not r.parent_id]
        children = [r for r in gateway.broker.open_orders() if r.parent_id]
        assert [r.parent_id for r in children] == [parent.order_id] * 2
    finally:
        broker.disconnect()


def test_the_kill_switch_cancels_an_unfilled_bracket_through_its_entry(make_engine, gateway):
    strategy = Bracketer(entry_at=0.6)  # resting: nothing fills
    engine = _started(make_engine, strategy)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 3)
    engine.kill("drill")
    assert wait_until(lambda: not gateway.broker.open_orders())
    completed = gateway.broker.completed_orders()
    (entry,) = [o for o in completed if not o.parent_id]
    assert entry.completed_status == "Cancelled by client"  # the one cancel sent
    assert [o.completed_status for o in completed if o.parent_id] == [
        f"Cancelled: parent order {entry.order_id} ended without a fill"
    ] * 2
    assert wait_until(lambda: all(o.status is OrderStatus.CANCELLED for o in strategy.sent))
    assert not [e for e in engine.errors if "161" in str(e) or "not in a cancellable state" in str(e)]
