"""Fault injection and order routing through the real ib_async client."""

from __future__ import annotations

import contextlib
import socket

import pytest
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, LimitOrder, MarketOrder, Stock

pytestmark = pytest.mark.timeout(60)


def _qualified(ib: IB, symbol: str = "AAPL") -> Stock:
    contract = Stock(symbol, "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def test_drop_all_disconnects_clients_and_they_can_reconnect_with_order_ids_continuing(gateway):
    ib = IB()
    dropped: list[bool] = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    try:
        ib.connect("127.0.0.1", gateway.port, clientId=3, timeout=5)
        trade = ib.placeOrder(_qualified(ib), LimitOrder("BUY", 1, 1.0))
        ib.sleep(0.1)
        used = trade.order.orderId
        assert gateway.drop_all() == 1
        with contextlib.suppress(ConnectionError):  # ib_async's sleep re-raises the socket loss
            ib.sleep(0.2)
        assert dropped
        assert not ib.isConnected()
        ib.connect("127.0.0.1", gateway.port, clientId=3, timeout=5)
        assert ib.client.getReqId() > used
        assert [t.order.orderId for t in ib.openTrades()] == [used]
    finally:
        ib.disconnect()


def test_restart_keeps_positions_and_the_port(gateway):
    with connected_ib(gateway) as ib:
        ib.placeOrder(_qualified(ib), MarketOrder("BUY", 10))
        ib.sleep(0.1)
        gateway.clock.step()
        ib.sleep(0.2)
    port = gateway.port
    gateway.restart()
    assert gateway.port == port
    with connected_ib(gateway) as ib:
        assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("AAPL", 10.0)]


def test_refused_connections_come_back_after_the_pause(gateway):
    gateway.refuse_connections(0.5)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", gateway.port), timeout=1),
    ):
        pass
    ib = IB()
    try:
        for _ in range(40):
            try:
                ib.connect("127.0.0.1", gateway.port, clientId=1, timeout=2)
                break
            except ConnectionRefusedError:
                ib.sleep(0.1)
        assert ib.isConnected()
    finally:
        ib.disconnect()


@pytest.mark.parametrize("code", [1100, 1101, 1102, 2103, 2105, 10197])
def test_broadcast_messages_reach_error_event(gateway, ib, code):
    seen: list[int] = []
    ib.errorEvent += lambda req_id, c, msg, contract: seen.append(c)
    if code == 1100:
        gateway.connectivity_lost()
    elif code in (1101, 1102):
        gateway.connectivity_restored(data_lost=code == 1101)
    elif code == 10197:
        gateway.competing_session()
    else:
        gateway.farm_status(code)
    ib.sleep(0.2)
    assert code in seen


def test_order_messages_go_only_to_the_placing_client_and_positions_to_all(gateway):
    with connected_ib(gateway, client_id=1) as a, connected_ib(gateway, client_id=2) as b:
        a.reqPositions()
        b.reqPositions()
        trade = a.placeOrder(_qualified(a), MarketOrder("BUY", 5))
        a.sleep(0.1)
        gateway.clock.step()
        a.sleep(0.2)
        b.sleep(0.1)
        assert trade.orderStatus.status == "Filled"
        assert b.trades() == []
        assert b.fills() == []
        assert [p.position for p in b.positions()] == [5.0]


def test_fill_while_away_is_found_with_req_executions(gateway):
    with connected_ib(gateway, client_id=4) as ib:
        ib.placeOrder(_qualified(ib), MarketOrder("BUY", 3))
        ib.sleep(0.1)
    gateway.clock.step()
    with connected_ib(gateway, client_id=4) as ib:
        fills = ib.reqExecutions()
        assert [(f.execution.shares, f.execution.clientId) for f in fills] == [(3.0, 4)]


def test_rejected_order_is_cancelled_with_201(gateway, ib):
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    gateway.reject_next_order("Simulated margin call")
    trade = ib.placeOrder(_qualified(ib), MarketOrder("BUY", 1))
    ib.sleep(0.2)
    assert trade.orderStatus.status == "Cancelled"
    assert 201 in codes


def test_withheld_executions_are_delivered_on_release(gateway, ib):
    gateway.withhold_executions(True)
    trade = ib.placeOrder(_qualified(ib), MarketOrder("BUY", 2))
    ib.sleep(0.1)
    gateway.clock.step()
    ib.sleep(0.2)
    assert trade.fills == []
    gateway.withhold_executions(False)
    ib.sleep(0.2)
    assert len(trade.fills) == 1


def test_partial_fills_arrive_one_execution_per_price(sample_feed):
    with running_gateway(data=sample_feed, partial_fill_size=40) as gw, connected_ib(gw) as ib:
        trade = ib.placeOrder(_qualified(ib), MarketOrder("BUY", 100))
        ib.sleep(0.1)
        gw.clock.step()
        ib.sleep(0.3)
        assert trade.orderStatus.status == "Filled"
        assert [f.execution.shares for f in trade.fills] == [40.0, 40.0, 20.0]
