"""Connection faults against the simulated gateway: IB system codes, drops, refusals, duplicate ids."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.reconnect import Backoff, ConnectionState

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


class _AttemptLog:
    """Wraps a connection's handshake to record when each (re)connect attempt starts."""

    def __init__(self, connection) -> None:
        self.times: list[float] = []
        self._handshake = connection._handshake
        connection._handshake = self

    async def __call__(self) -> None:
        self.times.append(time.monotonic())
        await self._handshake()

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


def _poll_history(adapter, seconds: float) -> int:
    """Ask for cached history every 50 ms for ``seconds``, as a polling loop during an outage would."""
    from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter

    assert isinstance(adapter, LiveDataFeedAdapter)
    calls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not adapter.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 1, 31)).empty
        calls += 1
        time.sleep(0.05)
    return calls


STEADY = Backoff(initial=0.4, maximum=30.0, factor=2.0, jitter=0.0, max_attempts=None)


def test_polling_history_during_an_outage_leaves_reconnecting_to_the_backoff(data, gateway, caplog):
    data.connection.backoff = STEADY
    data.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 1, 31))  # cached
    attempts = _AttemptLog(data.connection)
    gateway.stop()
    assert wait_until(lambda: data.connection.reconnecting_in_background)
    calls = _poll_history(data, 2.6)
    assert calls > 30
    # Only the background loop tries, 0.4 s, then 0.8 s, then 1.6 s apart: not once per call.
    assert 1 <= len(attempts.times) <= 3, attempts.times
    for k, gap in enumerate(attempts.gaps(), start=1):
        assert gap >= STEADY.delay(k) * 0.95
    assert "trying one reconnect" not in caplog.text
    assert data.is_fallback_mode()


def test_without_the_background_loop_calls_retry_only_as_the_backoff_allows(gateway, caplog):
    adapter = LiveDataFeedAdapter(port=gateway.port, client_id=73, auto_reconnect=False)
    try:
        assert adapter.connect(timeout=5)
        adapter.connection.backoff = STEADY
        adapter.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 1, 31))
        attempts = _AttemptLog(adapter.connection)
        gateway.stop()
        assert wait_until(lambda: not adapter.is_connected())
        calls = _poll_history(adapter, 2.6)
        assert calls > 30
        # The calls try at once, then 0.4 s, 0.8 s, 1.6 s after each failure: 4 attempts at most in 2.6 s.
        assert 2 <= len(attempts.times) <= 4, attempts.times
        for k, gap in enumerate(attempts.gaps()):
            assert gap >= STEADY.delay(k) * 0.95
        gateway.start()
        time.sleep(STEADY.delay(len(attempts.times)))
        assert not adapter.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 2, 1)).empty
        assert adapter.is_connected()  # a call reconnected once the backoff allowed it
    finally:
        adapter.disconnect()


def test_a_manual_reconnect_does_not_restart_the_background_backoff(data, gateway):
    data.connection.backoff = STEADY
    attempts = _AttemptLog(data.connection)
    gateway.stop()
    assert wait_until(lambda: len(attempts.times) >= 2, timeout=5)  # 0.4 s, then 0.8 s later
    assert not data.reconnect(timeout=1)  # the user's own attempt: it counts as the third
    started = time.monotonic()
    assert wait_until(lambda: len(attempts.times) >= 4, timeout=10)
    assert attempts.times[3] - started >= STEADY.delay(3) * 0.95  # 3.2 s, not the first step's 0.4 s
