"""Orders and account end to end: the real ib_async client against the simulated gateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from ib_async import IB, Contract, LimitOrder, MarketOrder, Order, Stock, StopOrder

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


def test_an_oca_group_placed_with_plain_ib_async_fills_one_order_only(gateway_factory, connect):
    """Issue 10: two orders sharing an ocaGroup were accepted and both filled. Now the group is honoured:
    ib_async's oneCancelsAll, ocaType 1: the first fill cancels the other order."""
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    price = gw.broker.last_price("AAPL")
    orders = ib.oneCancelsAll(
        [LimitOrder("BUY", 100, round(price * 1.2, 2)), LimitOrder("BUY", 50, round(price * 1.2, 2))],
        "entry-1",
        1,
    )
    trades = [ib.placeOrder(contract, order) for order in orders]
    assert wait_until(ib, lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    gw.clock.step()
    assert wait_until(ib, lambda: [t.orderStatus.status for t in trades] == ["Filled", "Cancelled"])
    assert [t.orderStatus.filled for t in trades] == [100, 0]
    assert wait_until(ib, lambda: [p.position for p in ib.positions()] == [100.0])
    # another client sees the group on the order (openOrder carries ocaGroup and ocaType)
    watcher = connect(gw, 2)
    working = ib.placeOrder(
        contract,
        Order(
            action="SELL",
            totalQuantity=10,
            orderType="LMT",
            lmtPrice=round(price * 2, 2),
            ocaGroup="exit-1",
            ocaType=2,
        ),
    )
    assert wait_until(ib, lambda: working.orderStatus.status == "Submitted")
    [seen] = [t for t in watcher.reqAllOpenOrders() if t.order.permId == working.order.permId]
    assert (seen.order.ocaGroup, seen.order.ocaType) == ("exit-1", 2)


def test_an_unsupported_oca_type_is_refused_with_201_as_ib_async_sees_it(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    errors: list[tuple[int, str]] = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((code, message))
    order = LimitOrder("BUY", 10, 1.0)
    order.ocaGroup = "g"  # ocaType left at ib_async's default, 0
    trade = ib.placeOrder(aapl(ib), order)
    assert wait_until(ib, lambda: trade.orderStatus.status == "Cancelled")
    assert any(code == 201 and "ocaType 0 is not supported" in message for code, message in errors)


def test_a_trailing_stop_placed_with_plain_ib_async_is_held_and_reported(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    ib.placeOrder(contract, MarketOrder("BUY", 10))
    gw.clock.step()
    price = gw.broker.last_price("AAPL")
    order = Order(action="SELL", totalQuantity=10, orderType="TRAIL", trailingPercent=50.0, tif="GTC")
    trade = ib.placeOrder(contract, order)
    assert wait_until(ib, lambda: trade.orderStatus.status == "PreSubmitted")
    watcher = connect(gw, 2)
    [seen] = [t for t in watcher.reqAllOpenOrders() if t.order.permId == trade.order.permId]
    assert seen.order.orderType == "TRAIL"
    assert seen.order.trailingPercent == 50.0
    assert seen.order.trailStopPrice == pytest.approx(price * 0.5)


def test_market_on_close_and_opening_orders_with_plain_ib_async(gateway_factory, connect):
    gw = gateway_factory()
    ib = connect(gw)
    contract = aapl(ib)
    moc = ib.placeOrder(contract, Order(action="BUY", totalQuantity=10, orderType="MOC"))
    opg = ib.placeOrder(contract, MarketOrder("BUY", 5, tif="OPG"))
    assert wait_until(ib, lambda: moc.orderStatus.status == opg.orderStatus.status == "Submitted")
    gw.clock.step()  # one daily bar: it opens the session (OPG fills) and closes it (MOC fills)
    assert wait_until(ib, lambda: moc.orderStatus.status == opg.orderStatus.status == "Filled")
    bar = gw.core.market.replayed_frame("AAPL").iloc[-1]
    assert opg.fills[0].execution.price == pytest.approx(bar["Open"])
    assert moc.fills[0].execution.price == pytest.approx(bar["Close"])
    refused = ib.placeOrder(contract, Order(action="BUY", totalQuantity=1, orderType="MOC", tif="GTC"))
    assert wait_until(ib, lambda: refused.orderStatus.status == "Cancelled")
    assert "closing auction" in refused.log[-1].message
