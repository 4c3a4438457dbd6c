"""`copilot-quant parity A B`: two strategies on one account, each compared backtest vs live."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from copilot_quant.cli import app
from copilot_quant.cli import parity as parity_cli
from copilot_quant.cli.exit_codes import USAGE_ERROR
from typer.testing import CliRunner

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

runner = CliRunner()
SMA = "copilot_quant.examples.sma_cross"
FAST = f'{SMA}:SmaCrossFast(symbol="AAPL", fast_period=5, slow_period=20, name="fast")'
SLOW = f'{SMA}:SimpleMovingAverage(symbol="MSFT", name="slow", capital="30%")'
RANGE = ["--start", "2010-01-01", "--end", "2010-09-30"]


def _rows(output: str) -> dict[str, str]:
    return {line.split("│")[1].strip(): line for line in output.splitlines() if line.count("│") >= 6}


def test_two_strategies_on_one_account_are_identical_live_each_and_combined():
    result = runner.invoke(app, ["parity", FAST, SLOW, "--symbols", "AAPL", "MSFT", *RANGE])
    assert result.exit_code == 0, result.output
    assert "2 strategies on one account" in result.output
    rows = _rows(result.output)
    assert set(rows) == {"fast", "slow", "account"}
    for name in rows:
        assert "identical" in rows[name], rows[name]
    assert "PARITY: identical" in result.output
    # each strategy traded, in its own sleeve: 70 % and 30 % of the account, which they add up to
    equity = {n: float(r.split("│")[4].strip().replace(",", "")) for n, r in rows.items()}
    assert equity["fast"] == pytest.approx(70_000, rel=0.05)
    assert equity["slow"] == pytest.approx(30_000, rel=0.05)
    assert equity["fast"] + equity["slow"] == pytest.approx(equity["account"], abs=0.02)
    fills = {n: int(r.split("│")[3].strip()) for n, r in rows.items()}
    assert fills["fast"] > 0
    assert fills["slow"] > 0
    assert fills["fast"] + fills["slow"] == fills["account"]


def test_a_strategy_that_trades_differently_live_is_named_with_its_differences(tmp_path: Path):
    path = tmp_path / "flaky.py"
    path.write_text(
        textwrap.dedent(
            """
            from copilot_quant.backtest.orders import Order
            from copilot_quant.backtest.strategy import Strategy

            MADE = []


            class SecondRunBuysMore(Strategy):
                def initialize(self):
                    MADE.append(1)
                    self.size = 10 * len(MADE)

                def on_data(self, timestamp, data):
                    return [Order("AAPL", self.size, "market", "buy")] if len(data) == 3 else []


            class Steady(Strategy):
                def on_data(self, timestamp, data):
                    return [Order("AAPL", 5, "market", "buy")] if len(data) == 3 else []
            """
        ),
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            "parity",
            f"{path}:Steady",
            f"{path}:SecondRunBuysMore",
            "--symbols",
            "AAPL",
            "--start",
            "2010-01-01",
            "--end",
            "2010-01-20",
        ],
    )
    assert result.exit_code == parity_cli.PARITY_FAILED, result.output
    rows = _rows(result.output)
    assert "identical" in rows["Steady"]
    assert "differences" in rows["SecondRunBuysMore"]
    assert "PARITY FAILED[/]" not in result.output
    assert "PARITY FAILED: SecondRunBuysMore" in result.output
    assert "quantity" in result.output


def test_two_unnamed_instances_of_one_class_are_refused_before_anything_runs():
    result = runner.invoke(
        app,
        ["parity", f"{SMA}:SmaCrossFast", f"{SMA}:SmaCrossFast(fast_period=3)", "--symbols", "AAPL", *RANGE],
    )
    assert result.exit_code == USAGE_ERROR
    assert "two strategies are named 'SmaCrossFast'" in result.output
