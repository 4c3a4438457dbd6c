"""`copilot-quant gateway` starts, says where it listens, and reports bad settings in one line."""

from __future__ import annotations

import socket

import pytest
from copilot_quant.cli import app
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(60)


def test_gateway_command_prints_where_it_listens_and_how_to_connect():
    result = CliRunner().invoke(app, ["gateway", "--port", "0", "--data", "sample", "--run-for", "0.2"])
    assert result.exit_code == 0, result.output
    assert "listening on 127.0.0.1:" in result.output
    assert "ib.connect('127.0.0.1'" in result.output
    assert "DU1234567" in result.output


def test_gateway_command_rejects_an_unknown_data_source():
    result = CliRunner().invoke(app, ["gateway", "--port", "0", "--data", "nonsense", "--run-for", "0.1"])
    assert result.exit_code == 2  # bad input
    assert "Unknown data source" in result.output


def test_gateway_command_exits_1_when_its_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, ["gateway", "--port", str(port), "--data", "sample", "--run-for", "0.1"]
        )
    assert result.exit_code == 1, result.output  # a runtime failure, not bad input
    assert "could not listen" in result.output
