"""Every command uses the same exit codes: 0 success, 1 runtime failure, 2 bad input or usage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from copilot_quant import errors
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, SUCCESS, USAGE_ERROR, code_for
from typer.testing import CliRunner

CLI = Path(__file__).resolve().parents[2] / "copilot_quant" / "cli"


def test_the_codes():
    assert (SUCCESS, RUNTIME_FAILURE, USAGE_ERROR) == (0, 1, 2)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConfigError("bad --capital"), USAGE_ERROR),
        (errors.StrategyError("no class X"), USAGE_ERROR),
        (errors.DataError("no bars"), USAGE_ERROR),
        (errors.UnknownSymbolError("ZZZZ"), USAGE_ERROR),
        (errors.JournalError("no journal at x.sqlite"), USAGE_ERROR),
        (errors.OrderValidationError("quantity must be positive"), USAGE_ERROR),
        (errors.DataUnavailableError("yfinance unreachable"), RUNTIME_FAILURE),
        (errors.BrokerError("rejected"), RUNTIME_FAILURE),
        (errors.ConnectionLost("dropped"), RUNTIME_FAILURE),
        (errors.NotConnectedError("connect first"), RUNTIME_FAILURE),
        (errors.GatewayError("could not listen"), RUNTIME_FAILURE),
    ],
)
def test_library_errors_map_to_bad_input_or_runtime_failure(error, code):
    assert code_for(error) == code


@pytest.mark.parametrize(
    "command",
    [
        ["backtest", "x.py:X"],
        ["demo"],
        ["data", "list"],
        ["gateway"],
        ["gateway-ctl", "--port", "1", "status"],
        ["live", "x.py:X"],
        ["kill", "--kill-switch-file", "k"],
        ["journal", "orders"],
        ["parity", "x.py:X"],
    ],
)
def test_an_unknown_option_is_a_usage_error_for_every_command(command):
    result = CliRunner().invoke(app, [*command, "--no-such-option"])
    assert result.exit_code == USAGE_ERROR, result.output


def test_no_command_spells_an_exit_code_as_a_number():
    literal = re.compile(r"Exit\(\s*(code\s*=\s*)?\d")
    offenders = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted(CLI.glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if literal.search(line)
    ]
    assert not offenders, "use copilot_quant.cli.exit_codes: " + "; ".join(offenders)
