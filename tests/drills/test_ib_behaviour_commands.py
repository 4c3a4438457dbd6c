"""Every real-IB drill (docs/ib-behaviours.md) is also a control-port command: `copilot-quant gateway-ctl`
drives it from another terminal, and a real ib_async client sees what real TWS would send."""

from __future__ import annotations

import contextlib

import pytest
from copilot_quant.gateway.control import ControlServer, execute, send_command
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import LimitOrder, Stock

from ..live.conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def gw_control():
    with running_gateway(data="synthetic", symbols=["AAPL"]) as gw, ControlServer(gw) as control:
        yield gw, control


def _order(ib, price=1.0, qty=5):
    contract = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(contract)
    trade = ib.placeOrder(contract, LimitOrder("BUY", qty, price, tif="GTC"))
    ib.sleep(0.3)
    return trade


def test_order_msg_sends_an_informational_code_without_a_status_change(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=11) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
        trade = _order(ib)
        assert send_command(control.port, f"order-msg {trade.order.orderId} 10349").startswith("ok")
        ib.sleep(0.3)
        assert 10349 in codes
        (working,) = gw.call(gw.broker.open_orders)
        assert working.order_id == trade.order.orderId  # still working at the gateway


@pytest.mark.parametrize(("line", "code"), [("answer-next 321", 321), ("answer-next 110", 110)])
def test_answer_next_answers_a_new_order_with_an_error_only(gw_control, line, code):
    gw, control = gw_control
    with connected_ib(gw, client_id=12) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, c, msg, contract: codes.append(c)
        assert send_command(control.port, line).startswith("ok")
        _order(ib)
        assert code in codes
        assert gw.call(gw.broker.open_orders) == []


def test_hold_and_reactivate_report_inactive_with_why_held_then_the_real_status(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=13) as ib:
        trade = _order(ib)
        assert send_command(control.port, f"hold {trade.order.orderId} locate").startswith("ok")
        ib.sleep(0.3)
        assert (trade.orderStatus.status, trade.orderStatus.whyHeld) == ("Inactive", "locate")
        assert send_command(control.port, f"reactivate {trade.order.orderId}").startswith("ok")
        ib.sleep(0.3)
        assert trade.orderStatus.status == "Submitted"


def test_correct_sends_an_execution_correction(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=14) as ib:
        trade = _order(ib, price=10_000.0)
        gw.clock.step()
        ib.sleep(0.3)
        (first,) = [f.execution.execId for f in trade.fills]
        reply = send_command(control.port, "correct shares=4")
        assert reply.startswith("ok corrected by")
        ib.sleep(0.3)
        ids = [f.execution.execId for f in trade.fills]
        assert ids == [first, first[:-2] + "02"]
        assert trade.fills[-1].execution.shares == 4


def test_reset_lose_forgets_orders_rolls_ids_back_and_drops_clients(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=15) as ib:
        trades = [_order(ib) for _ in range(2)]
        assert send_command(control.port, "reset-lose 2").startswith("ok lost 2")
        with contextlib.suppress(ConnectionError):
            ib.sleep(0.3)
        assert not ib.isConnected()
    assert gw.call(gw.broker.open_orders) == []
    assert gw.call(gw.broker.next_order_id, 15) <= trades[0].order.orderId


def test_stall_bars_ends_keep_up_to_date_streams_silently(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=16) as ib:
        contract = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(contract)
        bars = ib.reqHistoricalData(contract, "", "5 D", "1 day", "TRADES", True, 2, keepUpToDate=True)
        assert send_command(control.port, "stall-bars AAPL") == "ok stalled 1 bar stream(s)"
        count = len(bars)
        gw.clock.step(3)
        ib.sleep(0.3)
        assert len(bars) == count  # no update, no error


@pytest.mark.parametrize(
    ("line", "code", "farm"),
    [("farm 2103 usfarm.nj", 2103, "usfarm.nj"), ("farm 2157", 2157, "secdefil"), ("farm 2110", 2110, "")],
)
def test_farm_codes_carry_the_farm_name(gw_control, line, code, farm):
    gw, control = gw_control
    with connected_ib(gw, client_id=17) as ib:
        seen: list[tuple[int, str]] = []
        ib.errorEvent += lambda req_id, c, msg, contract: seen.append((c, msg))
        assert send_command(control.port, line).startswith("ok")
        ib.sleep(0.3)
        assert any(c == code and msg.endswith(farm) for c, msg in seen)


def test_exec_window_and_commissions_and_outage_commands(gw_control):
    gw, control = gw_control
    assert send_command(control.port, "exec-window day") == "ok executions window day"
    assert gw.broker.executions_today_only
    assert send_command(control.port, "commissions late") == "ok commissions late"
    assert gw.broker.commission_mode == "late"
    assert send_command(control.port, "commissions release") == "ok commissions release"
    assert execute(gw, "commissions bogus").startswith("error unknown commission mode")
    assert send_command(control.port, "outage 0.3").startswith("ok outage")
    assert not gw.running
    assert wait_until(lambda: gw.running, timeout=5)  # listening again after the outage


def test_executions_older_than_today_are_withheld_from_req_executions(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=18) as ib:
        _order(ib, price=10_000.0)
        gw.clock.step()
        ib.sleep(0.3)
        assert len(ib.reqExecutions()) == 1
        gw.clock.step(2)  # the next market days
        assert send_command(control.port, "exec-window day").startswith("ok")
        assert ib.reqExecutions() == []


def test_permission_sends_a_market_data_code_and_delayed_data(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=19) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, c, msg, contract: codes.append(c)
        contract = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(contract)
        ticker = ib.reqMktData(contract)
        ib.sleep(0.3)
        assert send_command(control.port, "permission 10167 AAPL") == "ok sent 10167 to 1 subscription(s)"
        ib.sleep(0.3)
        assert 10167 in codes
        assert ticker.marketDataType == 3


def test_account_throttle_command(gw_control):
    gw, control = gw_control
    reply = send_command(control.port, "account-throttle 600")
    assert reply == "ok account values every 600s of market time"
    assert gw.core.account_refresh.interval == 600
    assert send_command(control.port, "account-throttle 0") == "ok account values on every change"
    assert gw.core.account_refresh.interval == 0


def test_port_reset_command_moves_the_api_port_and_tells_the_clients(gw_control):
    gw, control = gw_control
    with connected_ib(gw, client_id=20) as ib:
        seen: list[tuple[int, str]] = []
        ib.errorEvent += lambda req_id, c, msg, contract: seen.append((c, msg))
        old = gw.port
        reply = send_command(control.port, "port-reset")
        assert reply.startswith("ok API port moved to")
        with contextlib.suppress(ConnectionError):
            ib.sleep(0.3)
        assert gw.port != old
        assert any(c == 1300 and msg.endswith(str(gw.port)) for c, msg in seen)
