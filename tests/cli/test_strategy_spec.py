"""The strategy spec (``FILE:Class`` or ``module:Class``) and the ``-p`` help, as a newcomer meets them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.cli.strategy_spec import PARAM_HELP, build_strategy, load_strategy_class, parse_params
from copilot_quant.errors import StrategyError
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's own directory: not the repository root."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_package_path_given_outside_the_repository_suggests_the_module_form(elsewhere: Path):
    result = runner.invoke(
        app,
        ["backtest", "copilot_quant/examples/sma_cross.py:SimpleMovingAverage", "--symbols", "AAPL"],
    )
    assert result.exit_code == USAGE_ERROR
    assert "not found" in result.output
    assert "copilot_quant.examples.sma_cross:SimpleMovingAverage" in result.output
    assert "Traceback" not in result.output
    # and the suggestion works from here
    assert load_strategy_class("copilot_quant.examples.sma_cross:SimpleMovingAverage") is SimpleMovingAverage


def test_the_module_form_is_suggested_without_a_class_name_and_with_a_leading_dot(elsewhere: Path):
    with pytest.raises(StrategyError, match=r"any directory: copilot_quant\.examples\.sma_cross$"):
        load_strategy_class("./copilot_quant/examples/sma_cross.py")


@pytest.mark.parametrize(
    "spec",
    [
        "copilot_quant/examples/no_such_file.py:X",  # in the package's tree, but no such module
        "strategies/sma.py:SimpleMovingAverage",  # no importable package of that name
        "/nowhere/copilot_quant/examples/sma_cross.py:SimpleMovingAverage",  # absolute: the user meant it
    ],
)
def test_a_missing_file_that_is_no_module_of_a_package_gets_the_plain_message(elsewhere: Path, spec: str):
    with pytest.raises(StrategyError) as caught:
        load_strategy_class(spec)
    message = str(caught.value)
    assert "not found" in message
    assert "module" not in message


def test_the_param_help_example_builds_the_bundled_example():
    """The names in the ``-p`` help (shown by backtest, live, parity and sweep) are real parameters."""
    examples = re.findall(r"-p (\w+=\w+)", PARAM_HELP)
    assert len(examples) >= 2
    strategy = build_strategy(SimpleMovingAverage, parse_params(examples))
    assert isinstance(strategy, SimpleMovingAverage)


def test_numpy_parameter_values_print_as_plain_numbers():
    # issue 16: a value read from a DataFrame printed as np.float64(4.8123)
    import numpy as np
    from copilot_quant.cli.strategy_spec import format_call
    from copilot_quant.examples import SimpleMovingAverage

    call = format_call(SimpleMovingAverage, {"fast_period": np.int64(5), "quantity": np.float64(4.8123)})
    assert call == "SimpleMovingAverage(fast_period=5, quantity=4.8123)"
