"""Orders held untransmitted (transmit=False) across a gateway restart.

TWS keeps an untransmitted order in its own window, never at IB's servers, until its group is sent or the
session ends; IB Gateway's restart (nightly, or after a crash) ends that session. So the simulated
gateway discards held orders when it restarts — the in-process drill (``gateway-ctl restart``) and a new
process on the same ``--state`` file alike: the order that would have transmitted them is then refused
(201, naming why), a cancel of a held one is IB's 10147, nothing ever fills, and the order ids they used
stay used (a new order never gets one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from copilot_quant.gateway.broker import SimBroker
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from ib_async import IB, LimitOrder, Stock, StopOrder

from .conftest import wait_until
from .test_bracket_orders import AAPL, req

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.json"


def _start(state: Path) -> GatewayServer:
    return GatewayServer(GatewayConfig(port=0, data="sample", symbols=["AAPL"], state_file=state)).start()


@pytest.fixture
def servers() -> Iterator[list[GatewayServer]]:
    started: list[GatewayServer] = []
    yield started
    for server in started:
        server.stop()


def _hold_a_bracket(ib: IB) -> tuple[int, int]:
    """Place a bracket's entry and take-profit with transmit=False (held in TWS); their order ids."""
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    parent = LimitOrder("BUY", 10, 1_000.0, transmit=False)  # marketable: it would fill at once if sent
    ib.placeOrder(contract, parent)
    take_profit = LimitOrder("SELL", 10, 2_000.0, parentId=parent.orderId, transmit=False)
    ib.placeOrder(contract, take_profit)
    ib.sleep(0.2)
    return parent.orderId, take_profit.orderId


def _send_the_stop(ib: IB, parent_id: int, order_id: int) -> list[tuple[int, int, str]]:
    """The bracket's last order, transmit=True, naming the held parent (the group would go out now)."""
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    stop = StopOrder("SELL", 10, 500.0, orderId=order_id, parentId=parent_id, transmit=True)
    ib.client.placeOrder(order_id, contract, stop)  # its own client: ib_async does not know the old ids
    assert wait_until(ib, lambda: any(e[0] == order_id for e in errors))
    return errors


@pytest.mark.parametrize("how", ["drill", "new process"])
def test_held_orders_do_not_survive_a_restart(state: Path, servers: list[GatewayServer], how: str) -> None:
    gw = _start(state)
    servers.append(gw)
    ib = IB()
    ib.connect("127.0.0.1", gw.port, clientId=7, timeout=5)
    parent_id, take_profit_id = _hold_a_bracket(ib)
    assert sorted(gw.call(gw.broker.untransmitted_orders)) == [(7, parent_id), (7, take_profit_id)]
    ib.disconnect()
    if how == "drill":
        gw.restart()  # gateway-ctl restart: the same process, the same books
    else:
        gw.stop()
        gw = _start(state)
        servers.append(gw)
    assert gw.call(gw.broker.untransmitted_orders) == []
    ib = IB()
    ib.connect("127.0.0.1", gw.port, clientId=7, timeout=5)
    try:
        assert ib.client.getReqId() > take_profit_id  # the ids the held orders used stay used
        errors = _send_the_stop(ib, parent_id, take_profit_id + 1)
        [(_, code, text)] = [e for e in errors if e[0] == take_profit_id + 1]
        assert code == 201
        assert f"parent order {parent_id} is not known" in text
        assert "held untransmitted do not survive a gateway restart" in text
        cancel_errors: list[int] = []
        ib.errorEvent += lambda req_id, code, *_: req_id == parent_id and cancel_errors.append(code)
        ib.client.cancelOrder(parent_id, "")
        assert wait_until(ib, lambda: cancel_errors == [10147])  # IB: the order to cancel is not found
        gw.clock.step(3)
        ib.sleep(0.2)
        assert gw.call(gw.broker.open_orders) == []
        assert gw.call(gw.broker.positions) == []  # the marketable entry never went out
        assert ib.reqAllOpenOrders() == []
    finally:
        ib.disconnect()


def test_a_held_orders_id_survives_a_crash_without_any_later_save(state: Path) -> None:
    """The gateway dies right after holding an order (no clean stop writes the file): its id stays used."""
    first = SimBroker(state_file=state)
    first.place_order(1, req(1, "BUY", "MKT"), AAPL)
    first.place_order(1, req(2, "BUY", "LMT", lmt=95.0, transmit=False), AAPL)
    resumed = SimBroker(state_file=state)  # no first.save(): as after a crash
    assert resumed.next_order_id(1) == 3
    assert resumed.untransmitted_orders() == []
