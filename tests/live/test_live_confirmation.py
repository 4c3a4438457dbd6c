"""Real-money trading needs ``confirm_live=True`` everywhere: the broker adapter, the engine and the CLI.

The simulated gateway presents a live account (``U…``) here, as a real live TWS would.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.config import resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import ConfigError

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

LIVE_ACCOUNT = "U7654321"
NOW = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _unconfirmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPILOT_QUANT_CONFIRM_LIVE", raising=False)


@pytest.fixture
def live_gateway(gateway_factory):
    return gateway_factory(live_account=True, account=LIVE_ACCOUNT)


def test_an_unconfirmed_live_broker_adapter_refuses_to_connect_and_names_the_fix(live_gateway):
    broker = LiveBrokerAdapter(paper_trading=False, port=live_gateway.port, client_id=120)
    try:
        with pytest.raises(ConfigError, match="confirm_live=True") as refused:
            broker.connect(timeout=5)
        assert "COPILOT_QUANT_CONFIRM_LIVE=yes" in str(refused.value)
        with pytest.raises(ConfigError, match="confirm_live=True"), broker:
            pass
        assert not broker.is_connected()
        assert not live_gateway.core.sessions  # refused before the socket was opened
    finally:
        broker.disconnect()


def test_a_confirmed_live_broker_adapter_trades_the_live_account(live_gateway):
    broker = LiveBrokerAdapter(
        paper_trading=False, port=live_gateway.port, client_id=121, confirm_live=True, fill_timeout=10
    )
    try:
        assert broker.connect(timeout=5)
        assert broker.account == LIVE_ACCOUNT
        order = Order("AAPL", 1, "market", "buy")
        with Stepper(live_gateway):
            fill = broker.execute_order(order, 100.0, NOW)
        assert fill is not None
        assert order.status is OrderStatus.FILLED
    finally:
        broker.disconnect()


def test_the_environment_variable_confirms_live_trading_too(live_gateway, monkeypatch):
    monkeypatch.setenv("COPILOT_QUANT_CONFIRM_LIVE", "yes")
    broker = LiveBrokerAdapter(paper_trading=False, port=live_gateway.port, client_id=122)
    try:
        assert broker.connect(timeout=5)
        assert broker.account == LIVE_ACCOUNT
    finally:
        broker.disconnect()


def test_an_unconfirmed_adapter_on_a_live_connection_sends_no_order(live_gateway):
    """A connection opened elsewhere (shared) does not get around the rail: no order leaves unconfirmed."""
    connection = IBConnection(resolve_connection(False, port=live_gateway.port, client_id=123))
    broker = LiveBrokerAdapter(paper_trading=False, connection=connection)
    try:
        assert connection.connect(timeout=5)
        order = Order("AAPL", 1, "market", "buy")
        with pytest.raises(ConfigError, match="confirm_live=True"):
            broker.execute_order(order, 100.0, NOW)
        assert order.status is OrderStatus.CREATED
        assert not live_gateway.broker.open_orders()
        assert not live_gateway.broker.completed_orders()
        assert broker.get_open_orders() == []
    finally:
        broker.disconnect()
        connection.disconnect()


def test_the_engine_passes_its_confirmation_to_its_broker(live_gateway):
    engine = LiveStrategyEngine(
        paper_trading=False, port=live_gateway.port, client_id=124, confirm_live=True, update_interval=3600
    )
    try:
        assert engine.broker.confirm_live
        assert engine.connect(timeout=5, retry_count=1)  # the broker adapter would refuse otherwise
        assert engine.connection.account == LIVE_ACCOUNT
    finally:
        engine.disconnect()
    assert wait_until(lambda: not live_gateway.core.sessions)


def test_an_engine_confirmed_by_the_environment_connects_too(live_gateway, monkeypatch):
    monkeypatch.setenv("COPILOT_QUANT_CONFIRM_LIVE", "yes")
    engine = LiveStrategyEngine(paper_trading=False, port=live_gateway.port, client_id=125)
    try:
        assert engine.connect(timeout=5, retry_count=1)
    finally:
        engine.disconnect()


def test_paper_trading_adapters_need_no_confirmation(gateway):
    broker = LiveBrokerAdapter(paper_trading=True, port=gateway.port, client_id=126)
    try:
        assert broker.connect(timeout=5)
    finally:
        broker.disconnect()
