"""What real IB does to the connection and the data streams that a well-behaved gateway never showed
(docs/ib-behaviours.md), driven by gateway drills against the real ib_async client."""

from __future__ import annotations

import pytest
from copilot_quant.brokers.config import resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.brokers.reconnect import Backoff, ConnectionState

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def data(gateway):
    a = LiveDataFeedAdapter(port=gateway.port, client_id=90, bar_stale_after=0.6)
    a.connection.stale_only_in_session = False  # the drill runs at any wall-clock hour
    assert a.connect(timeout=5)
    yield a
    a.disconnect()


def _state(adapter) -> ConnectionState:
    return adapter.connection.state


def test_a_farm_ok_after_1100_does_not_read_as_connected(data, gateway):
    gateway.connectivity_lost()
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    gateway.faults.farm(2104, "usfarm")
    gateway.faults.farm(2106, "ushmds")
    assert wait_until(lambda: data.connection.machine.health.farms.get("ushmds") is not None)
    assert _state(data) is ConnectionState.DEGRADED  # TWS still has no link to IB
    gateway.connectivity_restored(data_lost=False)
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED)


def test_farms_are_tracked_by_name(data, gateway):
    gateway.faults.farm(2103, "usfarm.nj")
    gateway.faults.farm(2103, "cashfarm")
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    gateway.faults.farm(2104, "usfarm.nj")
    assert wait_until(lambda: data.connection.machine.health.farms["usfarm.nj"].value == "ok")
    assert _state(data) is ConnectionState.DEGRADED  # cashfarm is still broken
    gateway.faults.farm(2108, "cashfarm")  # inactive: available on demand, harmless
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED)


@pytest.mark.parametrize(("broken", "ok"), [(2157, 2158), (2110, 2104)])
def test_secdef_farm_and_server_link_codes_degrade_and_recover(data, gateway, broken, ok):
    gateway.faults.farm(broken)
    assert wait_until(lambda: _state(data) is ConnectionState.DEGRADED)
    gateway.faults.farm(ok)
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED)


def test_1102_fires_the_reconcile_trigger(data, gateway):
    restored: list[bool] = []
    data.connection.restored += restored.append
    gateway.connectivity_lost()
    gateway.connectivity_restored(data_lost=False)
    assert wait_until(lambda: restored == [False])  # data maintained: nothing to resubscribe


def test_a_bar_stream_that_dies_while_quotes_flow_is_restarted_and_reported(data, gateway):
    stalls: list[tuple[str, float, int]] = []
    data.bar_stream_stalled += lambda symbol, silent, count: stalls.append((symbol, silent, count))
    assert data.subscribe(["AAPL"]) == {"AAPL": True}
    assert data.stream_bars(["AAPL"], "1d", lookback_days=5) == {"AAPL": True}
    with Stepper(gateway, interval=0.1):
        assert wait_until(lambda: data.last_bar_time("AAPL") is not None)
        assert gateway.faults.stall_bar_streams("AAPL") == 1
        assert wait_until(lambda: stalls, timeout=15)
        stalled_at = data.last_bar_time("AAPL")
        # restarted: bars flow again
        assert wait_until(lambda: data.last_bar_time("AAPL") > stalled_at, timeout=15)
    assert stalls[0][0] == "AAPL"
    assert stalls[0][2] == 1
    assert _state(data) is ConnectionState.CONNECTED


def test_an_outage_longer_than_the_backoff_never_gives_up_and_alerts(gateway):
    settings = resolve_connection(True, None, gateway.port, 91, False)
    conn = IBConnection(
        settings, backoff=Backoff(initial=0.1, maximum=0.2, jitter=0.0), outage_alert_after=0.5
    )
    outages: list[float] = []
    conn.outage += outages.append
    try:
        assert conn.connect(timeout=5)
        gateway.faults.outage(2.5)  # 10+ attempts at 0.2 s: an old 20-attempt default with these delays
        assert wait_until(lambda: outages, timeout=10)
        assert conn.state is ConnectionState.RECONNECTING  # still trying, not STOPPED
        assert wait_until(lambda: conn.state is ConnectionState.CONNECTED, timeout=20)
        assert len(outages) >= 2  # repeated while the outage went on
    finally:
        conn.disconnect()


def test_the_default_backoff_never_gives_up():
    assert not Backoff().gives_up_after(10_000)


@pytest.mark.parametrize(
    ("code", "kind", "ticks_stop"),
    [
        (10167, "delayed", False),
        (10089, "delayed", False),
        (354, "real-time", True),
        (10168, "real-time", True),
    ],
)
def test_market_data_permission_codes_are_reported_per_symbol(data, gateway, code, kind, ticks_stop):
    problems: list[tuple[str, int]] = []
    data.market_data_problem += lambda symbol, c, text: problems.append((symbol, c))
    assert data.subscribe(["AAPL", "MSFT"]) == {"AAPL": True, "MSFT": True}
    assert gateway.faults.market_data_permission(code, "AAPL") == 1
    assert wait_until(lambda: problems == [("AAPL", code)])
    assert "AAPL" in data.market_data_problems()
    assert "MSFT" not in data.market_data_problems()
    assert wait_until(lambda: data.market_data_type("AAPL") == kind)
    assert data.market_data_type("MSFT") == "real-time"
    if ticks_stop:
        before = data.get_latest_price("AAPL")
        gateway.clock.step(2)
        assert wait_until(
            lambda: data.get_latest_price("MSFT") == pytest.approx(gateway.core.market.track("MSFT").last)
        )
        assert data.get_latest_price("AAPL") == before  # IB sends no more quotes for it


def test_a_socket_port_reset_is_followed_to_the_new_port(data, gateway):
    old_port = gateway.port
    new_port = gateway.faults.socket_port_reset()
    assert new_port != old_port
    assert wait_until(lambda: _state(data) is ConnectionState.RECONNECTING, timeout=5)
    assert wait_until(lambda: _state(data) is ConnectionState.CONNECTED, timeout=20)
    assert data.connection.settings.port == new_port
