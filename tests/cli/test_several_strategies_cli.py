"""Several strategies on one account from the command line: the spec syntax and ``copilot-quant backtest``."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.cli.strategy_set import load_strategies, parse_strategy_call, split_specs
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.errors import ConfigError, StrategyError
from copilot_quant.examples.sma_cross import SmaCrossFast
from typer.testing import CliRunner

runner = CliRunner()
SMA = "copilot_quant.examples.sma_cross:SmaCrossFast"
FAST = f'{SMA}(fast_period=5, slow_period=20, name="fast")'
SLOW = f'{SMA}(name="slow", capital="30%")'
RANGE = ["--start", "2010-01-01", "--end", "2011-12-31"]


def test_a_call_names_its_arguments_and_a_colon_inside_a_value_is_no_class_separator():
    assert parse_strategy_call(f"{SMA}(tag='10:30', n=2)") == (SMA, {"tag": "10:30", "n": 2})
    assert parse_strategy_call(SMA) == (SMA, {})


def test_specs_and_symbols_are_told_apart_wherever_they_stand():
    assert split_specs([FAST, "MSFT", SLOW, "aapl"]) == ([FAST, SLOW], ["MSFT", "aapl"])


def test_name_and_capital_belong_to_the_command_and_the_rest_to_the_class():
    fast, slow = load_strategies([FAST, SLOW], ["quantity=7"], account=100_000.0)
    assert (fast.name, fast.capital) == ("fast", None)
    assert (slow.name, slow.capital) == ("slow", pytest.approx(30_000.0))
    assert isinstance(fast.instance, SmaCrossFast)
    assert fast.instance.name == "fast"
    assert (fast.instance.fast_period, fast.instance.quantity) == (5, 7)
    assert slow.instance.quantity == 7  # -p applies to every strategy


def test_two_instances_of_one_class_without_names_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"two strategies are named 'SmaCrossFast'.*name="):
        load_strategies([SMA, f"{SMA}(fast_period=3)"], account=100_000.0)


@pytest.mark.parametrize(
    ("capital", "why"),
    [("'0%'", "percentage"), ("-5", "positive amount"), ("'abc'", "positive amount")],
)
def test_a_bad_capital_share_is_refused(capital, why):
    with pytest.raises(ConfigError, match=why):
        load_strategies([f"{SMA}(capital={capital})"], account=100_000.0)


def test_shares_beyond_the_account_are_refused():
    with pytest.raises(ConfigError, match="exceeds --capital"):
        load_strategies([f"{SMA}(name='a', capital=70000)", f"{SMA}(name='b', capital='50%')"], account=1e5)


def test_a_percentage_live_is_refused_because_the_account_value_is_not_known_yet():
    with pytest.raises(ConfigError, match="give an amount"):
        load_strategies([f"{SMA}(capital='10%')"], account=None)


def test_an_unknown_class_argument_is_still_a_named_error():
    with pytest.raises(StrategyError, match="no parameter 'fast'"):
        load_strategies([f"{SMA}(fast=3)"], account=1e5)


def test_backtest_runs_several_strategies_on_one_account_and_prints_each_and_the_account():
    out = runner.invoke(app, ["backtest", FAST, SLOW, "--symbols", "AAPL", *RANGE])
    assert out.exit_code == 0, out.output
    assert "fast: SmaCrossFast(" in out.output
    assert "capital 30,000.00" in out.output
    assert "Per strategy (one account)" in out.output
    table = out.output.split("Per strategy (one account)")[1]
    for row in ("fast", "slow", "account"):
        assert f"│ {row}" in table

    # the same numbers as the library gives for the same account
    engine = BacktestEngine(initial_capital=100_000.0, data_provider=SampleDataProvider())
    engine.add_strategy(_named(5, 20, "fast"))
    engine.add_strategy(_named(10, 30, "slow"), capital=30_000.0)
    result = engine.run("2010-01-01", "2011-12-31", ["AAPL"])
    for key, part in result.strategies.items():
        assert f"{part.final_value:,.2f}" in table, key
    assert f"{result.final_value:,.2f}" in table


def _named(fast: int, slow: int, name: str) -> SmaCrossFast:
    strategy = SmaCrossFast(fast_period=fast, slow_period=slow)
    strategy.name = name
    return strategy


def test_backtest_refuses_two_unnamed_instances_of_one_class_before_running():
    out = runner.invoke(app, ["backtest", SMA, f"{SMA}(fast_period=3)", "--symbols", "AAPL", *RANGE])
    assert out.exit_code == USAGE_ERROR
    assert "two strategies are named" in out.output


def test_one_strategy_prints_no_per_strategy_table():
    out = runner.invoke(app, ["backtest", SMA, "--symbols", "AAPL", *RANGE])
    assert out.exit_code == 0, out.output
    assert "Per strategy" not in out.output


def test_the_summary_of_a_several_strategy_result_lists_each_strategy_and_the_account():
    engine = BacktestEngine(initial_capital=100_000.0, data_provider=SampleDataProvider())
    engine.add_strategy(_named(5, 20, "fast"))
    engine.add_strategy(_named(10, 30, "slow"))
    result = engine.run("2010-01-01", "2011-12-31", ["AAPL"])
    text = result.summary()
    lines = {line.split()[0]: line for line in text.splitlines()[-3:]}
    assert set(lines) == {"fast", "slow", "account"}
    for key, part in [*result.strategies.items(), ("account", result)]:
        assert f"{part.final_value:,.2f}" in lines[key]
        assert lines[key].split()[-1] == str(len(part.fills))


BROKEN = """
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy


class Fine(Strategy):
    def on_data(self, timestamp, data):
        return [Order("AAPL", 1, "market", "buy")] if len(data) == 5 else []


class Broken(Strategy):
    def on_data(self, timestamp, data):
        raise ValueError("boom")
"""


def test_one_strategy_that_raises_on_most_bars_fails_the_run_by_name(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(BROKEN)
    out = runner.invoke(app, ["backtest", f"{path}:Fine", f"{path}:Broken", "--symbols", "AAPL", *RANGE])
    assert out.exit_code == 1, out.output
    assert "Broken raised an exception on" in out.output
    table = out.output.split("Per strategy (one account)")[1]
    broken = next(line for line in table.splitlines() if "│ Broken" in line)
    assert broken.split("│")[-2].strip() != "0"  # its errors are counted in its row
