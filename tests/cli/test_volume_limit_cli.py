"""`--volume-limit` on `backtest`, `gateway` and `parity`: passed through, and bad values are one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.backtest.orders import OrderStatus
from copilot_quant.cli import app
from copilot_quant.cli.backtest import run_backtest
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"
RANGE = ("--start", "2010-01-01", "--end", "2010-06-30")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_refused(result) -> None:
    assert result.exit_code == USAGE_ERROR, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "--volume-limit must be a fraction of each bar's volume with 0 < --volume-limit <= 1" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("bad", ["0", "-0.1", "1.5", "nan"])
def test_backtest_refuses_a_bad_volume_limit(bad):
    assert_refused(
        invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", *RANGE, "--volume-limit", bad)
    )


@pytest.mark.parametrize("bad", ["0", "2"])
def test_gateway_refuses_a_bad_volume_limit(bad):
    assert_refused(
        invoke("gateway", "--port", "0", "--data", "sample", "--run-for", "0.1", "--volume-limit", bad)
    )


def test_parity_refuses_a_bad_volume_limit():
    assert_refused(
        invoke("parity", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", *RANGE, "--volume-limit", "-1")
    )


def test_backtest_applies_the_volume_limit():
    limit = 1e-6  # about 100 of a sample AAPL bar's 1e8 shares: 300-share orders need several bars
    result = invoke(
        "backtest",
        f"{EXAMPLE}:SimpleMovingAverage",
        "-s",
        "AAPL",
        *RANGE,
        "-p",
        "quantity=300",
        "--volume-limit",
        str(limit),
    )
    assert result.exit_code == 0, result.output
    direct = run_backtest(
        SimpleMovingAverage(quantity=300), ["AAPL"], start=RANGE[1], end=RANGE[3], volume_limit=limit
    )
    unlimited = run_backtest(SimpleMovingAverage(quantity=300), ["AAPL"], start=RANGE[1], end=RANGE[3])
    assert {f.fill_quantity for f in unlimited.fills} == {300}
    assert all(f.fill_quantity < 300 for f in direct.fills)  # each bar filled only a part
    assert any(
        o.status is OrderStatus.EXPIRED and o.filled_quantity > 0 for o in direct.orders
    )  # DAY remainders
    assert f"{direct.metrics['final_value']:,.2f}" in result.stdout
    assert f"{unlimited.metrics['final_value']:,.2f}" not in result.stdout
    # issue 16: the expired remainders are reported, with what to do about them
    partial = [o for o in direct.orders if o.status is OrderStatus.EXPIRED and o.filled_quantity > 0]
    assert f"{len(partial)} of {len(direct.orders)} orders filled only partly" in result.stdout
    assert "the rest of a DAY order expires at the session's close" in result.stdout
    assert "time_in_force='gtc'" in result.stdout


def test_a_gtc_remainder_keeps_working_on_later_bars():
    limit = 1e-6
    day = run_backtest(
        SimpleMovingAverage(quantity=300), ["AAPL"], start=RANGE[1], end=RANGE[3], volume_limit=limit
    )
    gtc = run_backtest(
        SimpleMovingAverage(quantity=300, time_in_force="gtc"),
        ["AAPL"],
        start=RANGE[1],
        end=RANGE[3],
        volume_limit=limit,
    )
    assert not any(o.status is OrderStatus.EXPIRED for o in gtc.orders)
    filled = [o for o in gtc.orders if o.status is OrderStatus.FILLED]
    assert filled, "some GTC order should have completed over several bars"
    assert max(len([f for f in gtc.fills if f.order.order_id == o.order_id]) for o in filled) > 1
    assert sum(f.fill_quantity for f in gtc.fills) > sum(f.fill_quantity for f in day.fills)


def test_gateway_starts_with_a_volume_limit():
    result = invoke("gateway", "--port", "0", "--data", "sample", "--run-for", "0.2", "--volume-limit", "0.1")
    assert result.exit_code == 0, result.output
    assert "listening on 127.0.0.1:" in result.output


def test_parity_passes_the_volume_limit_to_both_runs():
    result = invoke(
        "parity",
        f"{EXAMPLE}:SimpleMovingAverage",
        "-s",
        "AAPL",
        *RANGE,
        "-p",
        "quantity=300",
        "--volume-limit",
        "1e-6",
    )
    assert result.exit_code == 0, result.output
    assert "PARITY: identical" in result.stdout
    # the limit bit: without it the same run trades whole 300-share orders and ends with other cash
    unlimited = invoke("parity", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", *RANGE, "-p", "quantity=300")
    assert unlimited.exit_code == 0, unlimited.output
    assert final_cash(result.stdout) != final_cash(unlimited.stdout)


def final_cash(output: str) -> str:
    """The "Final cash" row of the side-by-side table (both runs' figures)."""
    return next(line for line in output.splitlines() if "Final cash" in line)
