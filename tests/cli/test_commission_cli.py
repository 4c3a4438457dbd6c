"""`--commission ibkr-tiered | ibkr-fixed | RATE` on the commands that run strategies, and on `gateway`."""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.backtest.results import format_metric
from copilot_quant.cli import app
from copilot_quant.cli.backtest import run_backtest
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from copilot_quant.model.costs import PercentCommission
from copilot_quant.model.fixed import FixedCommission
from copilot_quant.model.tiered import TieredCommission
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"
RANGE = ("--start", "2005-01-01", "--end", "2008-12-31")


def _backtest(*args: str):
    return CliRunner().invoke(
        app, ["backtest", f"{EXAMPLE}:SimpleMovingAverage", "--symbols", "AAPL", *RANGE, *args]
    )


def test_a_backtest_with_ibkr_tiered_shows_the_fees_apart(tmp_path: Path):
    report = tmp_path / "tiered.html"
    result = _backtest("--commission", "ibkr-tiered", "--report", str(report))
    assert result.exit_code == 0, result.output
    direct = run_backtest(
        SimpleMovingAverage(), ["AAPL"], start="2005-01-01", end="2008-12-31", commission=TieredCommission()
    )
    stats = direct.metrics
    assert 0 < stats["total_fees"] < stats["total_commission"]
    assert "Fees in commission" in result.stdout
    assert format_metric("total_fees", stats["total_fees"]) in result.stdout
    assert format_metric("total_commission", stats["total_commission"]) in result.stdout
    page = report.read_text(encoding="utf-8")
    assert "Fees in commission" in page
    log = direct.get_trade_log()
    assert log["fees"].sum() == pytest.approx(stats["total_fees"])


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("ibkr-tiered", TieredCommission()),
        ("ibkr-fixed", FixedCommission()),
        ("0.002", PercentCommission(0.002)),
    ],
)
def test_the_commission_names_and_rates(text, model):
    from copilot_quant.cli.options import parse_commission

    assert parse_commission(text) == model


@pytest.mark.parametrize("command", ["backtest", "sweep", "parity", "batch"])
def test_a_bad_commission_is_refused_by_name(command):
    args = [command, f"{EXAMPLE}:SimpleMovingAverage", "--symbols", "AAPL", *RANGE, "--commission", "ibkr"]
    if command == "sweep":
        args += ["--grid", "short_window=5,10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == USAGE_ERROR, result.output
    assert "--commission 'ibkr'" in result.stderr
    assert "ibkr-tiered" in result.stderr


def test_the_gateway_refuses_a_bad_commission_by_name():
    result = CliRunner().invoke(app, ["gateway", "--port", "0", "--commission", "tiered", "--run-for", "0.1"])
    assert result.exit_code == USAGE_ERROR, result.output
    assert "--commission 'tiered'" in result.stderr
