"""The backtest command on a continuous future and on a forex pair."""

from __future__ import annotations

from copilot_quant.cli import app
from typer.testing import CliRunner

runner = CliRunner()
SPEC = "copilot_quant.examples.sma_cross:SimpleMovingAverage"
RANGE = ("--start", "2026-01-01", "--end", "2026-12-31", "--data", "synthetic")


def test_a_continuous_future_trades_its_contracts_and_rolls() -> None:
    result = runner.invoke(app, ["backtest", SPEC, "--symbols", "MES", *RANGE, "--auto-roll"])
    assert result.exit_code == 0, result.output
    assert "SimpleMovingAverage on MES" in result.output
    assert "Cash by currency: USD" in result.output
    assert "orders were for" not in result.output  # the contracts' orders count as the run's


def test_a_forex_pair_reports_cash_per_currency() -> None:
    result = runner.invoke(
        app, ["backtest", SPEC, "--symbols", "EUR.USD", *RANGE, "--param", "quantity=100", "--slippage", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Cash by currency: USD" in result.output
    assert ", EUR " in result.output


def test_a_negative_roll_days_is_one_red_line_and_exit_2() -> None:
    result = runner.invoke(app, ["backtest", SPEC, "--symbols", "MES", *RANGE, "--roll-days", "-2"])
    assert result.exit_code == 2
    assert "roll_days must be a whole number" in result.output
