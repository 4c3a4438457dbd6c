"""The live pre-check counts what happened since IB's account values were sent (real ib_async client against
the simulated gateway, which refreshes the values every 3 minutes of market time, as IB does).

Before: right after a fill IB's BuyingPower still had the money the fill spent, so a second buy the account
could no longer afford passed the pre-check (and went to IB); a working order's commitment was never
counted. Now each order the pre-check passes reserves what it was checked for until IB's values include it
(:mod:`copilot_quant.brokers.buying_power`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NOW = datetime(2024, 1, 2, 19, tzinfo=UTC)
CASH = 100_000.0


@pytest.fixture
def minute_gateway() -> Iterator[GatewayServer]:
    """One-minute AAPL bars replayed minute by minute (paused), 100,000 USD, IB's 3-minute account refresh."""
    feed = SyntheticDataProvider(["AAPL"], seed=3, start="2024-01-02", periods=3000, interval="1m")
    with running_gateway(data=feed, bar_interval="1m", cash=CASH) as gw:
        yield gw


@pytest.fixture
def broker(minute_gateway: GatewayServer) -> Iterator[LiveBrokerAdapter]:
    adapter = LiveBrokerAdapter(paper_trading=True, port=minute_gateway.port, client_id=71, fill_timeout=0)
    assert adapter.connect(timeout=5)
    try:
        yield adapter
    finally:
        adapter.disconnect()


def _price(gateway: GatewayServer) -> float:
    return float(gateway.core.market.quotes["AAPL"].last)


def _shares(gateway: GatewayServer, fraction: float) -> int:
    """How many AAPL shares are worth ``fraction`` of the starting cash at the current price."""
    return int(CASH * fraction / _price(gateway))


def _send(broker: LiveBrokerAdapter, order: Order, price: float) -> None:
    """Place ``order`` and wait until the gateway has it (IB's Submitted status)."""
    broker.execute_order(order, price, NOW, wait=0)
    assert order.status is OrderStatus.SUBMITTED, order.reject_reason
    record = broker.tracker.record_for(order)
    assert record is not None
    assert wait_until(lambda: record.ib_status == "Submitted")


def _buy_and_fill(broker: LiveBrokerAdapter, gateway: GatewayServer, quantity: int) -> Order:
    order = Order("AAPL", quantity, "market", "buy")
    _send(broker, order, _price(gateway))
    gateway.clock.step()  # the next minute's bar fills it
    assert wait_until(lambda: order.status is OrderStatus.FILLED)
    held = float(quantity)
    assert wait_until(lambda: broker.get_positions().get("AAPL") is not None)
    assert wait_until(lambda: broker.get_positions()["AAPL"].quantity == held)
    return order


def test_a_buy_right_after_a_fill_is_checked_against_what_the_fill_left(
    broker: LiveBrokerAdapter, minute_gateway: GatewayServer
) -> None:
    power = broker.get_buying_power()
    _buy_and_fill(broker, minute_gateway, _shares(minute_gateway, 0.6))
    assert broker.get_buying_power() == power  # IB's value waits for the account refresh

    second = Order("AAPL", _shares(minute_gateway, 0.6), "market", "buy")
    assert broker.execute_order(second, _price(minute_gateway), NOW, wait=0) is None
    assert second.status is OrderStatus.REJECTED
    assert "reserved by orders sent since IB's last account update" in second.reject_reason
    assert second.broker_order_id is None  # refused before it was sent

    minute_gateway.clock.step(2)  # three minutes since the cycle began: IB sends the values
    assert wait_until(lambda: broker.get_buying_power() < power * 0.5)
    # the fill is in IB's figure now, and no longer reserved: what is left is IB's to say
    assert len(broker._account.commitments) == 0
    assert broker.check_buying_power(
        Order("AAPL", _shares(minute_gateway, 0.3), "market", "buy"), _price(minute_gateway)
    )


def test_a_working_order_keeps_its_reservation_until_it_is_cancelled(
    broker: LiveBrokerAdapter, minute_gateway: GatewayServer
) -> None:
    price = _price(minute_gateway)
    resting = Order("AAPL", _shares(minute_gateway, 0.7), "limit", "buy", limit_price=round(price * 0.5, 2))
    _send(broker, resting, price)
    minute_gateway.clock.step(3)  # IB refreshes the account: a working order is in no account value
    more = Order("AAPL", _shares(minute_gateway, 0.5), "market", "buy")
    assert not broker.check_buying_power(more, _price(minute_gateway))
    assert broker.cancel_order(resting)
    assert wait_until(lambda: resting.status is OrderStatus.CANCELLED)
    assert broker.check_buying_power(more, _price(minute_gateway))


def test_a_sale_is_credited_only_once_ib_reports_it(
    broker: LiveBrokerAdapter, minute_gateway: GatewayServer
) -> None:
    bought = _buy_and_fill(broker, minute_gateway, _shares(minute_gateway, 0.8))
    minute_gateway.clock.step(2)  # IB's values include the buy
    assert wait_until(lambda: broker.get_buying_power() < CASH * 0.3)
    sale = Order("AAPL", bought.quantity, "market", "sell")
    _send(broker, sale, _price(minute_gateway))
    minute_gateway.clock.step()
    assert wait_until(lambda: sale.status is OrderStatus.FILLED)
    # the proceeds are not in IB's BuyingPower yet: the check never goes beyond IB's own figure
    assert not broker.check_buying_power(
        Order("AAPL", _shares(minute_gateway, 0.5), "market", "buy"), _price(minute_gateway)
    )
    minute_gateway.clock.step(2)
    assert wait_until(lambda: broker.get_buying_power() > CASH * 0.9)
    assert broker.check_buying_power(
        Order("AAPL", _shares(minute_gateway, 0.5), "market", "buy"), _price(minute_gateway)
    )
