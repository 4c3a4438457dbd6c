"""A restart from a state file keeps every contract the account refers to, and every conId a client cached.

At IB a conId is permanent; a client keeps the qualified Contract objects across a gateway restart and
places orders with them. On synthetic data the gateway defines symbols on first request, so after a
restart it knew none of them until something asked by symbol again (error 200 for the cached contract).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from ib_async import IB, Contract, MarketOrder, Stock

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def run(tmp_path) -> Iterator[Callable[[], GatewayServer]]:
    """Start a synthetic-data gateway on the same state file; each call is one gateway process's run."""
    servers: list[GatewayServer] = []
    state = tmp_path / "gw.json"

    def start() -> GatewayServer:
        for server in servers:
            server.stop()
        server = GatewayServer(GatewayConfig(port=0, data="synthetic", bar_interval="1d", state_file=state))
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def _connect(server: GatewayServer) -> IB:
    ib = IB()
    ib.connect("127.0.0.1", server.port, clientId=1, timeout=5)
    return ib


def _buy(ib: IB, server: GatewayServer, contract: Contract) -> list[int]:
    """Buy 10 at market; the error codes the order got (empty when it filled)."""
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
    wait_until(ib, lambda: trade.orderStatus.status in ("Submitted", "Cancelled") or bool(errors))
    if trade.orderStatus.status == "Submitted":
        server.clock.step()
        wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    return errors


def test_contracts_cached_by_a_client_trade_after_a_restart_from_the_state_file(run):
    first = run()
    ib = _connect(first)
    [held] = ib.qualifyContracts(Stock("ZZZZ", "SMART", "USD"))  # a generated symbol with a hashed conId
    [looked_up] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))  # qualified, never traded
    assert _buy(ib, first, held) == []
    ib.disconnect()

    second = run()
    ib = _connect(second)
    try:
        assert _buy(ib, second, held) == []  # the cached Contract object, as the client kept it
        assert _buy(ib, second, looked_up) == []
        assert {p.contract.symbol: p.position for p in ib.positions()} == {"ZZZZ": 20.0, "AAPL": 10.0}
    finally:
        ib.disconnect()


def test_a_bare_conid_from_the_saved_account_resolves_after_a_restart(run):
    first = run()
    ib = _connect(first)
    [held] = ib.qualifyContracts(Stock("ZZZZ", "SMART", "USD"))
    assert _buy(ib, first, held) == []
    ib.disconnect()

    second = run()
    ib = _connect(second)
    try:
        details = ib.reqContractDetails(Contract(conId=held.conId))
        assert [d.contract.symbol for d in details] == ["ZZZZ"]
    finally:
        ib.disconnect()
