"""``copilot-quant batch``: strategies × symbols in one table, an export and a report; mistakes exit 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.cli import app
from copilot_quant.cli.batch import parse_strategy_call
from copilot_quant.cli.exit_codes import SUCCESS, USAGE_ERROR
from copilot_quant.errors import ConfigError
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(180)

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"
FAST = f"{EXAMPLE}:SmaCrossFast"
RANGE = ("--start", "2008-01-01", "--end", "2011-12-31")


def batch(*args: str):
    return CliRunner().invoke(app, ["batch", *args])


@pytest.mark.parametrize(
    ("token", "parsed"),
    [
        ("pkg.mod:Cls", ("pkg.mod:Cls", {})),
        ("a/b.py:Cls(fast=5, slow=30)", ("a/b.py:Cls", {"fast": 5, "slow": 30})),
        ("C:\\s\\b.py:Cls(name='x', w=[1, 2])", ("C:\\s\\b.py:Cls", {"name": "x", "w": [1, 2]})),
        ("pkg.mod:Cls()", ("pkg.mod:Cls", {})),
    ],
)
def test_a_strategy_is_a_spec_with_optional_call_arguments(token, parsed):
    assert parse_strategy_call(token) == parsed


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("m:Cls(5)", "by name"),
        ("m:Cls(**x)", "by name"),
        ("m:Cls(fast=", "not a Python call"),
        ("m:Cls(fast=len)", "must be a literal"),
    ],
)
def test_bad_call_arguments_are_named(token, message):
    with pytest.raises(ConfigError, match=message):
        parse_strategy_call(token)


def test_one_strategy_on_each_symbol_ranks_the_runs_and_writes_the_table_and_the_page(tmp_path):
    out, page = tmp_path / "batch.csv", tmp_path / "batch.html"
    result = batch(FAST, "--each-symbol", "--symbols", "AAPL", "MSFT", "IBM", "-p", "quantity=100", *RANGE,
                   "--export", str(out), "--report", str(page), "-j", "2")  # fmt: skip
    assert result.exit_code == SUCCESS, result.output
    text = " ".join(result.output.split())
    assert "Batch of 3 run(s): 1 strategy(ies) on AAPL, MSFT, IBM (each on its own)" in text
    assert "on a local Dask cluster of 2 worker processes" in text
    assert "distributed" not in result.output
    table = pd.read_csv(out)
    assert sorted(table["symbols"]) == ["AAPL", "IBM", "MSFT"]
    assert set(table["strategy"]) == {"SmaCrossFast(quantity=100)"}
    assert list(table["rank"]) == [1, 2, 3]
    assert (table["fills"] > 0).all()
    assert page.read_text(encoding="utf-8").count("<tr><td>") == 3


def test_several_strategies_over_one_universe_in_this_process(tmp_path):
    out = tmp_path / "batch.csv"
    result = batch(f"{FAST}(fast_period=5, slow_period=30)", f"{FAST}(fast_period=20, slow_period=100)",
                   "--symbols", "AAPL,MSFT", "-p", "quantity=100", "-p", "symbol=AAPL", *RANGE, "--serial", "--export", str(out))  # fmt: skip
    assert result.exit_code == SUCCESS, result.output
    assert "(as one universe), in this process" in " ".join(result.output.split())
    table = pd.read_csv(out)
    assert sorted(table["strategy"]) == [
        "SmaCrossFast(quantity=100, symbol='AAPL', fast_period=20, slow_period=100)",
        "SmaCrossFast(quantity=100, symbol='AAPL', fast_period=5, slow_period=30)",
    ]
    assert set(table["symbols"]) == {"AAPL,MSFT"}
    assert table["final_value"].nunique() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["AAPL", "--serial"], "no strategy given"),
        ([FAST, "--serial"], "no symbols"),
        ([f"{FAST}(fastest=5)", "-s", "AAPL", "--serial"], "fastest"),
        ([f"{FAST}(symbol='IBM')", "-s", "AAPL", "--each-symbol", "--serial"], "already sets symbol"),
        ([FAST, "-s", "AAPL", "--metric", "luck", "--serial"], "cannot rank by 'luck'"),
        ([FAST, "-s", "AAPL", "--report", "out.txt", "--serial"], "name the file *.html"),
        ([FAST, "-s", "AAPL", "--serial", "--scheduler", "tcp://127.0.0.1:1"], "give one of them"),
    ],
)
def test_mistakes_exit_2_before_any_run(args, message):
    result = batch(*args)
    assert result.exit_code == USAGE_ERROR, result.output
    assert message in " ".join(result.output.split())
    assert "Batch of" not in result.output
