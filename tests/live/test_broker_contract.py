"""One contract, two brokers: the same order scenarios against the backtest SimpleBroker and LiveBrokerAdapter.

Whatever the broker, a filled market order yields a Fill whose quantity, price and commission are
consistent with the position and cash it leaves behind, a round trip ends flat, and an unaffordable order
is refused with a reason instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.timeout(60)]

NOW = datetime(2024, 3, 1, 15, tzinfo=UTC)
CASH = 1_000_000.0


class Harness:
    """A broker plus what it takes to make its market orders execute."""

    def __init__(
        self, broker: IBroker, market: Callable[[], AbstractContextManager[object]], cents: float
    ) -> None:
        self.broker = broker
        self.market = market
        self.cents = cents  # IB reports cash rounded to cents

    def execute(self, order: Order):
        with self.market():
            return self.broker.execute_order(order, 100.0, NOW)


@pytest.fixture(params=["simple", "live"])
def harness(request, gateway_factory) -> Iterator[Harness]:
    if request.param == "simple":
        yield Harness(SimpleBroker(CASH, commission=0.001, slippage=0.0005), nullcontext, 1e-9)
        return
    server = gateway_factory(cash=CASH)
    broker = LiveBrokerAdapter(port=server.port, client_id=80, commission_rate=0.001, slippage_rate=0.0005)
    assert broker.connect(timeout=5)
    try:
        yield Harness(broker, lambda: Stepper(server, 0.05), 0.01)
    finally:
        broker.disconnect()


def test_a_market_buy_fills_and_books_position_and_cash(harness):
    broker = harness.broker
    order = Order("AAPL", 10, "market", "buy")
    fill = harness.execute(order)
    assert fill is not None
    assert fill.fill_quantity == 10
    assert fill.fill_price > 0
    assert fill.commission >= 0
    assert order.status is OrderStatus.FILLED
    assert wait_until(lambda: "AAPL" in broker.get_positions())
    assert broker.get_positions()["AAPL"].quantity == 10
    assert wait_until(lambda: abs(broker.get_cash_balance() - (CASH + fill.net_proceeds)) <= harness.cents)


def test_a_round_trip_ends_flat(harness):
    broker = harness.broker
    assert harness.execute(Order("MSFT", 5, "market", "buy")) is not None
    assert harness.execute(Order("MSFT", 5, "market", "sell")) is not None
    assert wait_until(lambda: "MSFT" not in broker.get_positions())


def test_an_unaffordable_order_is_refused_with_a_reason(harness):
    broker = harness.broker
    order = Order("AAPL", 1_000_000, "market", "buy")
    assert not broker.check_buying_power(order, 100.0)
    fill = harness.execute(order)
    assert fill is None
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason


def test_the_cost_models_agree(harness):
    broker = harness.broker
    assert broker.calculate_commission(100.0, 10) == pytest.approx(1.0)
    assert broker.calculate_slippage(Order("AAPL", 1, "market", "buy"), 100.0) == pytest.approx(100.05)
