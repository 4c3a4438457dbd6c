"""Connection faults against the simulated gateway: IB system codes, drops, refusals, duplicate ids."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.reconnect import ConnectionState

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def data(gateway):
    a = LiveDataFeedAdapter(port=gateway.port, client_id=70)
    assert a.connect(timeout=5)
    yield a
    a.disconnect()


def _state(adapter) -> ConnectionState:
    return adapter.connection.state


def test_ib_1100_degrades_and_1102_restores(data, gateway):
    changes = []
    data.connection.machine.state_changed += lambda old, new, why: changes.append((new, why))
    gateway.connectivity_lost()
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    assert data.is_connected()  # the socket is still up
    gateway.connectivity_restored(data_lost=False)
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED)
    assert [new for new, _ in changes] == [ConnectionState.DEGRADED, ConnectionState.CONNECTED]
    assert "1100" in changes[0][1]


def test_ib_1101_restores_and_resubscribes(data, gateway):
    data.subscribe(["AAPL"])
    gateway.connectivity_lost()
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    gateway.connectivity_restored(data_lost=True)
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED)
    gateway.clock.step(1)
    close = gateway.core.market.track("AAPL").last
    assert wait_until(lambda: data.get_latest_price("AAPL") == pytest.approx(close))


@pytest.mark.parametrize(("broken", "ok"), [(2103, 2104), (2105, 2106)])
def test_farm_messages_drive_the_state_machine(data, gateway, broken, ok):
    gateway.farm_status(broken)
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    gateway.farm_status(ok)
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED)


def test_a_deliberate_disconnect_never_reconnects(data, gateway):
    data.disconnect()
    assert _state(data) is ConnectionState.STOPPED
    time.sleep(1.0)  # longer than the first backoff delay
    assert not gateway.core.sessions
    assert _state(data) is ConnectionState.STOPPED


def test_a_dropped_connection_comes_back_with_backoff_and_resubscribes(data, gateway):
    data.subscribe(["MSFT"])
    gateway.refuse_connections(1.0)
    gateway.drop_all()
    assert wait_until(lambda: _state(data) is ConnectionState.RECONNECTING)
    assert data.is_fallback_mode()
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED, timeout=20)
    assert not data.is_fallback_mode()
    gateway.clock.step(1)
    close = gateway.core.market.track("MSFT").last
    assert wait_until(lambda: data.get_latest_price("MSFT") == pytest.approx(close))


def test_a_duplicate_client_id_is_refused_with_a_clear_message(data, gateway, caplog):
    twin = LiveDataFeedAdapter(port=gateway.port, client_id=70)
    try:
        assert twin.connect(timeout=30) is False  # fails on error 326 at once, not after the timeout
    finally:
        twin.disconnect()
    assert "client id 71 is already in use" in caplog.text
    assert data.is_connected()


def test_fills_that_happen_while_away_are_picked_up_once(gateway):
    broker = LiveBrokerAdapter(port=gateway.port, client_id=71, ack_timeout=0.5)
    fills = []
    broker.register_fill_callback(fills.append)
    try:
        assert broker.connect(timeout=5)
        order = Order("AAPL", 4, "limit", "buy", limit_price=10_000.0, time_in_force="gtc")  # marketable
        assert broker.execute_order(order, 100.0, datetime.now(UTC)) is None  # paused market: resting
        gateway.refuse_connections(1.0)
        gateway.drop_all()
        gateway.clock.step(1)  # it fills while the client is away
        assert wait_until(lambda: order.status is OrderStatus.FILLED, timeout=20)
        assert broker.wait_for_fills(order, 10)
        assert len(fills) == 1
        assert fills[0].fill_quantity == 4
        assert fills[0].commission == pytest.approx(1.0)
        time.sleep(0.3)
        assert len(fills) == 1  # never double counted
    finally:
        broker.disconnect()


def test_ib_1100_does_not_tear_down_the_socket(data, gateway):
    gateway.connectivity_lost()
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    time.sleep(0.8)  # longer than the first reconnect backoff
    states = [c.new for c in data.connection.machine.history]
    assert ConnectionState.RECONNECTING not in states  # TWS restores the IB link itself
    assert list(gateway.core.sessions) == [71]


def test_after_a_reconnect_each_new_fill_is_counted_once(gateway):
    broker = LiveBrokerAdapter(port=gateway.port, client_id=72)
    fills = []
    broker.register_fill_callback(fills.append)
    try:
        assert broker.connect(timeout=5)
        gateway.drop_all()
        assert wait_until(lambda: broker.connection.state is ConnectionState.RECONNECTING)
        assert wait_until(lambda: broker.connection.state is ConnectionState.CONNECTED, timeout=20)
        order = Order("AAPL", 3, "market", "buy")
        with Stepper(gateway, 0.05):
            fill = broker.execute_order(order, 100.0, datetime.now(UTC))
        assert fill is not None
        time.sleep(0.3)
        assert fills == [fill]  # handlers were not installed a second time by the reconnect
    finally:
        broker.disconnect()


def test_the_staleness_watchdog_degrades_a_silent_feed_and_recovers(gateway):
    from copilot_quant.brokers.config import resolve_connection
    from copilot_quant.brokers.connection import IBConnection

    settings = resolve_connection(port=gateway.port, client_id=73)
    connection = IBConnection(settings, stale_after=0.4, stale_only_in_session=False)
    data = LiveDataFeedAdapter(connection=connection)
    try:
        assert connection.connect(timeout=5)
        data.connect()
        data.subscribe(["AAPL"])
        changes = []
        connection.machine.state_changed += lambda old, new, why: changes.append((new, why))
        # The market is paused, so no ticks come: the watchdog degrades the feed and resubscribes.
        assert wait_until(lambda: any(new is ConnectionState.DEGRADED for new, _ in changes))
        degraded = next(why for new, why in changes if new is ConnectionState.DEGRADED)
        assert "no market data" in degraded
        gateway.clock.step(1)  # ticks flow again
        assert wait_until(lambda: connection.state is ConnectionState.CONNECTED)
    finally:
        connection.disconnect()
