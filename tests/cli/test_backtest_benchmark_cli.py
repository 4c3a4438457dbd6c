"""`copilot-quant backtest --benchmark`, and the table's period, data source and benchmark rows."""

from __future__ import annotations

import re

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import USAGE_ERROR
from typer.testing import CliRunner

runner = CliRunner()

SPEC = "copilot_quant.examples.sma_cross:SimpleMovingAverage"
RANGE = ("--start", "2006-01-01", "--end", "2007-12-31", "--data", "sample")


def _backtest(*args: str):
    return runner.invoke(app, ["backtest", SPEC, "--symbols", "AAPL", *RANGE, *args])


def _row(output: str, label: str) -> str:
    line = next(line for line in output.splitlines() if f" {label} " in line)
    return line.split("│")[2].strip()


def test_the_table_states_period_source_and_the_default_benchmark():
    result = _backtest()
    assert result.exit_code == 0, result.output
    assert _row(result.stdout, "Period") == "2006-01-03 → 2007-12-31"
    assert _row(result.stdout, "Bars") == "502 (sample, 1d)"
    assert _row(result.stdout, "Benchmark") == "buy-and-hold AAPL"
    assert _row(result.stdout, "Benchmark return").endswith("%")
    assert _row(result.stdout, "Beta") != "n/a"


def test_an_intraday_period_is_in_new_york_minutes():
    result = runner.invoke(
        app,
        [
            *("backtest", SPEC, "--symbols", "AAPL", "--data", "synthetic", "--interval", "1h"),
            *("--start", "2024-03-04", "--end", "2024-03-08"),
        ],
    )
    assert result.exit_code == 0, result.output
    period = _row(result.stdout, "Period (New York)")
    assert re.fullmatch(r"2024-03-04 \d\d:\d\d → 2024-03-08 \d\d:\d\d", period), period
    assert _row(result.stdout, "Bars").endswith("(synthetic, 1h)")


def test_a_benchmark_symbol_that_is_not_traded(tmp_path):
    report = tmp_path / "r.html"
    result = _backtest("--benchmark", "ibm", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert _row(result.stdout, "Benchmark") == "buy-and-hold IBM"
    assert "Benchmark: buy-and-hold IBM" in report.read_text(encoding="utf-8")


def test_no_benchmark():
    result = _backtest("--benchmark", "none")
    assert result.exit_code == 0, result.output
    assert _row(result.stdout, "Benchmark") == "none"
    assert _row(result.stdout, "Alpha (ann.)") == "n/a"


@pytest.mark.parametrize(
    ("value", "message"), [("S P", "--benchmark must be a ticker"), ("SPY", "benchmark SPY")]
)
def test_a_bad_or_unknown_benchmark_is_one_red_line_and_exit_2(value, message):
    result = _backtest("--benchmark", value)
    assert result.exit_code == USAGE_ERROR, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
