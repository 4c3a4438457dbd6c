"""Orders and account end to end: the real ib_async client against the simulated gateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from ib_async import IB, Contract, LimitOrder, MarketOrder, Stock, StopOrder

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def gateway_factory(tmp_path) -> Iterator[Callable[..., GatewayServer]]:
    servers: list[GatewayServer] = []

    def start(**config) -> GatewayServer:
        config.setdefault("data", "synthetic")
        config.setdefault("symbols", ["AAPL", "MSFT"])
        server = GatewayServer(GatewayConfig(port=0, **config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[[GatewayServer, int], IB]]:
    clients: list[IB] = []

    def open_client(server: GatewayServer, client_id: int = 1) -> IB:
        ib = IB()
        ib.connect("127.0.0.1", server.port, clientId=client_id, timeout=5)
        clients.append(ib)
        return ib

    yield open_client
    for ib in clients:
        ib.disconnect()


def aapl(ib: IB) -> Contract:
    [contract] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    return contract


def test_market_order_fills_with_commission_positions_and_account(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    trade = ib.placeOrder(aapl(ib), MarketOrder("BUY", 100))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gw.clock.step()
    assert wait_until(ib, lambda: trade.orderStatus.status == "Filled" and len(trade.fills) == 1)
    fill = trade.fills[0]
    assert fill.execution.shares == 100
    assert fill.execution.side == "BOT"
    assert wait_until(ib, lambda: trade.fills[0].commissionReport.commission == 1.0)
    assert [e.status for e in trade.log][:2] == ["PendingSubmit", "Submitted"]
    assert wait_until(ib, lambda: [p.position for p in ib.positions()] == [100.0])
    assert ib.positions()[0].avgCost == pytest.approx(fill.execution.price)
    assert wait_until(ib, lambda: len(ib.portfolio()) == 1)
    summary = {v.tag: float(v.value) for v in ib.accountSummary() if v.currency == "USD"}
    price = gw.broker.portfolio()[0].market_price
    assert summary["NetLiquidation"] == pytest.approx(summary["TotalCashValue"] + 100 * price, abs=0.01)
    assert summary["TotalCashValue"] == pytest.approx(1_000_000 - 100 * fill.execution.price - 1.0, abs=0.01)


def test_partial_fills_arrive_one_execution_each(gateway_factory, connect):
    gw = gateway_factory(partial_fill_size=30)
    ib = connect(gw)
    trade = ib.placeOrder(aapl(ib), MarketOrder("BUY", 100))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")  # the gateway has the order
    gw.clock.step()  # one bar = four prices: 30 + 30 + 30 + 10
    assert wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    assert [f.execution.shares for f in trade.fills] == [30, 30, 30, 10]
    assert [f.execution.cumQty for f in trade.fills] == [30, 60, 90, 100]
    assert wait_until(ib, lambda: all(f.commissionReport.execId == f.execution.execId for f in trade.fills))
    # IBKR Fixed prices the order's executions together: the $1 minimum once (100 x $0.005 is below it)
    assert [f.commissionReport.commission for f in trade.fills] == [1.0, 0.0, 0.0, 0.0]
    assert trade.orderStatus.avgFillPrice == pytest.approx(
        sum(f.execution.price * f.execution.shares for f in trade.fills) / 100
    )


def test_resting_limit_shows_in_open_orders_and_cancels_with_202(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    trade = ib.placeOrder(aapl(ib), LimitOrder("BUY", 10, 1.0, tif="GTC"))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    assert [t.order.orderId for t in ib.reqOpenOrders()] == [trade.order.orderId]
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.cancelOrder(trade.order)
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled" and 202 in errors)
    completed = ib.reqCompletedOrders(apiOnly=False)
    assert [t.orderStatus.status for t in completed] == ["Cancelled"]


def test_rejections_carry_ib_codes(gateway_factory, connect):
    gw = gateway_factory(cash=1_000.0)
    ib = connect(gw)
    contract = aapl(ib)
    zero = ib.placeOrder(contract, MarketOrder("BUY", 0))
    too_big = ib.placeOrder(contract, LimitOrder("BUY", 1_000, 100.0))
    assert wait_until(
        ib, lambda: zero.orderStatus.status == "Cancelled" and too_big.orderStatus.status == "Cancelled"
    )
    assert zero.log[-1].errorCode == 201
    assert "quantity" in zero.log[-1].message
    assert too_big.log[-1].errorCode == 201
    assert "insufficient buying power" in too_big.log[-1].message
    gw.broker.reject_next("exchange closed for maintenance")
    faulted = ib.placeOrder(contract, MarketOrder("BUY", 1))
    assert wait_until(ib, lambda: faulted.orderStatus.status == "Cancelled")
    assert "maintenance" in faulted.log[-1].message


def test_stop_waits_presubmitted_and_day_orders_expire_at_the_session_end(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    gtc = ib.placeOrder(contract, StopOrder("BUY", 5, 10_000.0, tif="GTC"))
    day = ib.placeOrder(contract, StopOrder("BUY", 5, 10_000.0))
    assert wait_until(ib, lambda: gtc.orderStatus.status == day.orderStatus.status == "PreSubmitted")
    gw.clock.step()  # one daily bar: the stop is not reached and the session ends
    assert wait_until(ib, lambda: day.orderStatus.status == "Cancelled")
    assert gtc.orderStatus.status == "PreSubmitted"
    assert gtc.fills == []


def test_fill_while_away_is_found_with_req_executions_after_reconnect(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw, 7)
    trade = ib.placeOrder(aapl(ib), MarketOrder("SELL", 20))  # a short sale is allowed
    used_id = trade.order.orderId
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.disconnect()
    gw.clock.step()  # fills while client 7 is away
    again = connect(gw, 7)
    assert again.client.getReqId() > used_id  # order ids are never reused
    fills = again.reqExecutions()
    assert [(f.execution.orderId, f.execution.side, f.execution.shares) for f in fills] == [
        (used_id, "SLD", 20)
    ]
    assert wait_until(again, lambda: [p.position for p in again.positions()] == [-20.0])


def test_what_if_order_returns_margin_figures(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    state = ib.whatIfOrder(aapl(ib), LimitOrder("BUY", 10, 100.0))
    assert float(state.initMarginChange) == pytest.approx(1_000.0)
    assert float(state.equityWithLoanBefore) == pytest.approx(1_000_000.0)
    assert gw.broker.open_orders() == []


def test_state_survives_a_gateway_restart(gateway_factory, connect, tmp_path):
    state = tmp_path / "gw.json"
    gw = gateway_factory(state_file=state)
    ib = connect(gw, 3)
    trade = ib.placeOrder(aapl(ib), MarketOrder("BUY", 10))
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gw.clock.step()
    assert wait_until(ib, lambda: trade.orderStatus.status == "Filled")
    ib.disconnect()
    gw.stop()
    gw2 = gateway_factory(state_file=state)
    ib2 = connect(gw2, 3)
    assert wait_until(ib2, lambda: [p.position for p in ib2.positions()] == [10.0])
    assert ib2.client.getReqId() > trade.order.orderId
    assert [f.execution.execId for f in ib2.reqExecutions()] == [trade.fills[0].execution.execId]
