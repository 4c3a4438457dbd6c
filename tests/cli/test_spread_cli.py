"""`--spread auto | off | TICKS | Nbps` on `backtest`, `parity`, `sweep`, `batch` and `gateway` (auto, the
data-derived width, by default)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.cli import app
from copilot_quant.cli.backtest import run_backtest
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.cli.options import parse_spread
from copilot_quant.examples.sma_cross import SimpleMovingAverage
from copilot_quant.model.spread import DEFAULT_SPREAD, SpreadModel
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"
RANGE = ("--start", "2010-01-01", "--end", "2010-06-25")


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("off", None),
        ("none", None),
        ("0", None),
        ("auto", DEFAULT_SPREAD),
        ("1", SpreadModel()),
        ("3", SpreadModel(3)),
        ("5bps", SpreadModel(1, 5.0)),
    ],
)
def test_the_spread_option_parses(text, model):
    assert parse_spread(text) == model


def test_a_backtest_with_a_spread_fills_on_the_grid_and_costs_more():
    def run(spread):
        return run_backtest(
            SimpleMovingAverage(quantity=100), ["AAPL"], start=RANGE[1], end=RANGE[3], spread=spread
        )

    plain, wide = run(None), run(SpreadModel(ticks=2))
    assert wide.fills
    assert all(abs(f.fill_price * 100 - round(f.fill_price * 100)) < 1e-6 for f in wide.fills)
    assert wide.final_value < plain.final_value
    result = CliRunner().invoke(
        app, ["backtest", f"{EXAMPLE}:SimpleMovingAverage", "--symbols", "AAPL", *RANGE, "--spread", "2"]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["backtest", "parity", "sweep", "batch"])
def test_a_bad_spread_is_refused_by_name(command):
    args = [command, f"{EXAMPLE}:SimpleMovingAverage", "--symbols", "AAPL", *RANGE, "--spread", "wide"]
    if command == "sweep":
        args += ["--grid", "short_window=5,10"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == USAGE_ERROR, result.output
    assert "--spread 'wide'" in result.stderr


def test_the_gateway_refuses_a_bad_spread_by_name():
    result = CliRunner().invoke(app, ["gateway", "--port", "0", "--spread", "1.5", "--run-for", "0.1"])
    assert result.exit_code == USAGE_ERROR, result.output
    assert "--spread '1.5'" in result.stderr


def test_the_parity_command_passes_with_a_spread():
    args = ["parity", f"{EXAMPLE}:SimpleMovingAverage", "--symbols", "AAPL", *RANGE, "--spread", "5bps"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def test_the_default_is_the_data_derived_spread_in_every_command():
    import inspect

    from copilot_quant.cli.backtest import backtest_command
    from copilot_quant.cli.batch import batch_command
    from copilot_quant.cli.gateway import gateway as gateway_command
    from copilot_quant.cli.parity import parity_command
    from copilot_quant.cli.sweep import sweep_command

    for command in (backtest_command, parity_command, sweep_command, batch_command, gateway_command):
        assert inspect.signature(command).parameters["spread"].default.default == "auto", command.__name__


def _table(command: str, spread: str, tmp_path: Path) -> pd.DataFrame:
    out = tmp_path / f"{command}-{spread}.csv"
    args = [command, f"{EXAMPLE}:SmaCrossFast", "--symbols", "AAPL", "--start", "2008-01-01"]
    args += ["--end", "2011-12-31", "-p", "quantity=100"]
    if command == "sweep":
        args += ["-g", "fast_period=5,10"]
    result = CliRunner().invoke(app, [*args, "--serial", "--spread", spread, "--export", str(out)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out)


@pytest.mark.parametrize("command", ["sweep", "batch"])
def test_sweep_and_batch_honour_the_spread(command, tmp_path):
    off, wide = _table(command, "off", tmp_path), _table(command, "10", tmp_path)
    assert len(off) == len(wide) >= 1
    # the same trades, each paying ten ticks more: every run returns less
    assert (wide["total_return"].to_numpy() < off["total_return"].to_numpy()).all()
