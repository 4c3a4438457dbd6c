"""The live pre-check asks a future's initial margin of AvailableFunds, as the backtest and the gateway do
(before: price × contracts of BuyingPower, so 30 MES at 5,000 — 75,000 of margin on 100,000 — were refused
live though the backtest and IB's margin take them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.gateway.server import GatewayServer

from .conftest import Stepper

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NOW = datetime(2026, 11, 2, 16, tzinfo=UTC)


def test_mes_contracts_are_checked_against_their_initial_margin(fut_fx_gateway: GatewayServer) -> None:
    broker = LiveBrokerAdapter(paper_trading=True, port=fut_fx_gateway.port, client_id=61, fill_timeout=10)
    assert broker.connect(timeout=5)
    try:
        order = Order("MESZ6", 30, "market", "buy")  # 30 x 2,500 initial margin = 75,000
        with Stepper(fut_fx_gateway):
            fill = broker.execute_order(order, 5000.0, NOW)
        assert fill is not None, order.reject_reason
        assert order.status is OrderStatus.FILLED
        more = Order("MESZ6", 20, "market", "buy")  # 50,000 more: beyond the 25,000 left
        assert broker.execute_order(more, 5000.0, NOW) is None
        assert more.status is OrderStatus.REJECTED
        assert "initial margin" in more.reject_reason
        assert "AvailableFunds" in more.reject_reason  # refused before it was sent
        short = Order("MESZ6", 40, "market", "sell")  # closes 30 and opens 10 short: 25,000 of margin
        with Stepper(fut_fx_gateway):
            assert broker.execute_order(short, 5000.0, NOW) is not None, short.reject_reason
    finally:
        broker.disconnect()
