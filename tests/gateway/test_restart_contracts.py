"""A gateway restarted from its state file still knows every contract it knew (issue 13, "Forgets what it
knew"): the ones in the saved positions, orders and executions, and any a client qualified before and
reuses from its cache — no error 200 "No security definition", as at IB."""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.gateway.testing import connected_ib
from ib_async import IB, Contract, MarketOrder, Stock

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _start(state: Path, **config: object) -> GatewayServer:
    return GatewayServer(
        GatewayConfig(port=0, data=SyntheticDataProvider(seed=3), state_file=state, **config)
    ).start()


def _errors_of(ib: IB) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, *rest: seen.append((req_id, code))
    return seen


def test_contracts_known_before_a_restart_are_known_after_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = _start(state, start="2024-03-01")
    try:
        with connected_ib(first, client_id=3) as ib:
            cached = ib.qualifyContracts(Stock("ZQTA", "SMART", "USD"))[0]  # qualified, then only cached
            held = ib.qualifyContracts(Stock("ZQTB", "SMART", "USD"))[0]
            looked_up = ib.qualifyContracts(Stock("ZQTC", "SMART", "USD"))[0]  # qualified, never traded
            trade = ib.placeOrder(held, MarketOrder("BUY", 5))
            ib.sleep(0.3)  # the order reaches the gateway before its clock moves
            first.clock.step(1)
            ib.sleep(0.3)
            assert trade.orderStatus.status == "Filled"
    finally:
        first.stop()

    second = _start(state)
    try:
        with connected_ib(second, client_id=3) as ib:
            errors = _errors_of(ib)
            # the client's cached contract (conId + symbol), never re-qualified
            reused = ib.placeOrder(cached, MarketOrder("BUY", 1))
            # a contract of the saved position, by conId alone
            details = ib.reqContractDetails(Contract(conId=held.conId))
            only_qualified = ib.reqContractDetails(Contract(conId=looked_up.conId))
            ib.sleep(0.3)
            second.clock.step(1)
            ib.sleep(0.3)
            assert (reused.order.orderId, 200) not in errors
            assert reused.orderStatus.status == "Filled"
            assert [d.contract.symbol for d in details] == ["ZQTB"]
            assert [d.contract.symbol for d in only_qualified] == ["ZQTC"]
            assert not [code for _, code in errors if code == 200]
            assert sorted(p.contract.conId for p in ib.positions()) == sorted([held.conId, cached.conId])
    finally:
        second.stop()
