"""The gateway's control port: fault drills from another process, over a real loopback socket."""

from __future__ import annotations

import contextlib
import socket

import pytest
from copilot_quant.cli import app
from copilot_quant.errors import GatewayError
from copilot_quant.gateway.control import COMMANDS, ControlServer, execute, send_command
from copilot_quant.gateway.testing import connected_ib, running_gateway
from typer.testing import CliRunner


@pytest.fixture
def gateway_with_control():
    with running_gateway(data="synthetic", symbols=["AAPL"]) as gw, ControlServer(gw) as control:
        yield gw, control


def test_step_advances_the_market_clock(gateway_with_control):
    gw, control = gateway_with_control
    before = gw.clock.now
    reply = send_command(control.port, "step 2")
    assert reply.startswith("ok stepped to")
    assert gw.clock.now > before


def test_drop_disconnects_every_client(gateway_with_control):
    gw, control = gateway_with_control
    with connected_ib(gw, client_id=7) as ib:
        assert ib.isConnected()
        assert send_command(control.port, "drop") == "ok dropped 1 connection(s)"
        with contextlib.suppress(ConnectionError):  # ib_async raises from sleep once the peer closes
            ib.sleep(0.5)
        assert not ib.isConnected()


def test_a_rejected_order_and_a_farm_message_reach_the_client(gateway_with_control):
    from ib_async import MarketOrder, Stock

    gw, control = gateway_with_control
    with connected_ib(gw, client_id=8) as ib:
        codes: list[int] = []
        ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
        assert send_command(control.port, "farm 2103").startswith("ok")
        assert send_command(control.port, "reject risk desk says no").startswith("ok")
        contract = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(contract)
        trade = ib.placeOrder(contract, MarketOrder("BUY", 1))
        ib.sleep(0.5)
        assert 2103 in codes
        assert 201 in codes
        assert trade.orderStatus.status == "Cancelled"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", "error empty command"),
        ("explode", "error unknown command"),
        ("refuse", "error missing argument"),
        ("refuse soon", "error 'soon' is not a number"),
        ("withhold maybe", "error usage"),
    ],
)
def test_bad_commands_get_a_clear_error_line(gateway_with_control, line, expected):
    gw, _ = gateway_with_control
    assert execute(gw, line).startswith(expected)


def test_help_lists_every_command(gateway_with_control):
    gw, _ = gateway_with_control
    reply = execute(gw, "help")
    assert all(usage in reply for usage, _ in COMMANDS.values())


def test_the_cli_sends_a_command_and_reports_an_unreachable_port(gateway_with_control):
    _, control = gateway_with_control
    runner = CliRunner()
    result = runner.invoke(app, ["gateway-ctl", "--port", str(control.port), "status"])
    assert result.exit_code == 0, result.output
    assert "clients=0" in result.output
    with pytest.raises(GatewayError, match="control port"):
        send_command(1, "status", timeout=2)


def test_the_cli_exit_codes_tell_bad_commands_from_failures(gateway_with_control):
    _, control = gateway_with_control
    runner = CliRunner()
    port = str(control.port)
    unknown = runner.invoke(app, ["gateway-ctl", "--port", port, "explode"])
    assert unknown.exit_code == 2, unknown.output  # bad input
    assert "unknown command" in unknown.output
    missing_argument = runner.invoke(app, ["gateway-ctl", "--port", port, "refuse"])
    assert missing_argument.exit_code == 2, missing_argument.output
    assert "usage: refuse SECONDS" in missing_argument.output
    # the help text keeps its [optional] arguments (they are not read as rich markup)
    help_text = runner.invoke(app, ["gateway-ctl", "--port", port, "help"])
    assert help_text.exit_code == 0, help_text.output
    assert "restored [data-lost]" in help_text.output
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed_port = free.getsockname()[1]
    unreachable = runner.invoke(app, ["gateway-ctl", "--port", str(closed_port), "status"])
    assert unreachable.exit_code == 1, unreachable.output  # a runtime failure: nothing listens there
    assert "cannot reach the gateway control port" in unreachable.output


def test_a_wall_clock_gateway_refuses_stepping_and_says_which_clock_runs():
    with (
        running_gateway(data="synthetic", symbols=["AAPL"], clock="wall") as gw,
        ControlServer(gw) as control,
    ):
        assert "clock=wall" in send_command(control.port, "status")
        for command in ("step", "speed 2", "pause"):
            reply = send_command(control.port, command)
            assert reply.startswith("error"), reply
            assert "wall clock" in reply
        assert gw.clock.running  # still trading
