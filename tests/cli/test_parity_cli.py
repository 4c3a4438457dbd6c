"""`copilot-quant parity` through typer's CliRunner: real strategy files, a real in-process gateway."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import typer
from copilot_quant.cli import parity as parity_cli
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    parity_cli.register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command keeps `parity` a sub-command, as in the real app
        """Nothing."""

    return app


def invoke(*args: str):
    return runner.invoke(_app(), list(args))


def test_parity_holds_for_the_guide_strategy_and_exits_0():
    result = invoke(
        "parity",
        f"{EXAMPLE}:SimpleMovingAverage",
        "--symbols",
        "AAPL",
        "--start",
        "2010-01-01",
        "--end",
        "2010-06-30",
        "--commission",
        "0.001",
        "--slippage",
        "0.0005",
    )
    assert result.exit_code == 0, result.output
    assert "backtest vs live" in result.stdout
    assert "PARITY: identical" in result.stdout
    assert "Differences" not in result.stdout


def test_a_strategy_that_differs_live_exits_1_with_a_diff_table(tmp_path: Path):
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
            """
        ),
        encoding="utf-8",
    )
    result = invoke(
        "parity",
        f"{path}:SecondRunBuysMore",
        "--symbols",
        "AAPL",
        "--start",
        "2010-01-01",
        "--end",
        "2010-01-20",
    )
    assert result.exit_code == parity_cli.PARITY_FAILED, result.output
    assert "Differences" in result.stdout
    assert "quantity" in result.stdout
    assert "PARITY FAILED" in result.stdout


def test_bad_input_is_one_red_line_and_exit_2(tmp_path: Path):
    missing = invoke(
        "parity",
        f"{tmp_path / 'nope.py'}:X",
        "--symbols",
        "AAPL",
        "--start",
        "2010-01-01",
        "--end",
        "2010-02-01",
    )
    assert missing.exit_code == 2
    assert "not found" in missing.output
    reversed_dates = invoke(
        "parity",
        f"{EXAMPLE}:SimpleMovingAverage",
        "--symbols",
        "AAPL",
        "--start",
        "2010-02-01",
        "--end",
        "2010-01-01",
    )
    assert reversed_dates.exit_code == 2
    no_bars = invoke(
        "parity",
        f"{EXAMPLE}:SimpleMovingAverage",
        "--symbols",
        "AAPL",
        "--start",
        "1990-01-01",
        "--end",
        "1990-02-01",
    )
    assert no_bars.exit_code == 2
    assert "no 1d bars" in no_bars.output


RAISERS = textwrap.dedent(
    """
    import threading

    from copilot_quant.backtest.orders import Order
    from copilot_quant.backtest.strategy import Strategy


    class AlwaysRaises(Strategy):
        def on_data(self, timestamp, data):
            raise ValueError("nothing works")


    class RaisesOnEvenBars(Strategy):
        def initialize(self):
            self.bar = 0

        def on_data(self, timestamp, data):
            self.bar += 1
            if self.bar % 2 == 0:
                raise KeyError("even bar")
            return [Order("AAPL", 1, "market", "buy")] if self.bar == 1 else []


    class NeverTrades(Strategy):
        def on_data(self, timestamp, data):
            return []


    class TradesAapl(Strategy):
        def on_data(self, timestamp, data):
            return [Order("AAPL", 1, "market", "buy")] if len(data) % 5 == 0 else []


    class RaisesOnlyLive(Strategy):
        def on_data(self, timestamp, data):
            if threading.current_thread() is not threading.main_thread():  # the live engine's worker
                raise ValueError("only live")
            return []
    """
)


@pytest.fixture
def raisers(tmp_path: Path) -> Path:
    path = tmp_path / "raisers.py"
    path.write_text(RAISERS, encoding="utf-8")
    return path


def _parity(spec: str):
    return invoke("parity", spec, "--symbols", "AAPL", "--start", "2010-01-01", "--end", "2010-02-26")


def test_a_strategy_that_raises_on_every_bar_is_summarised_not_traced_and_exits_1(raisers: Path):
    result = _parity(f"{raisers}:AlwaysRaises")
    assert result.exit_code == 1, result.output
    assert result.output.count("Traceback") <= 2  # the first error of each engine, not one per bar
    assert len(result.output.splitlines()) < 150
    assert "Strategy errors" in result.stdout  # a row of the side-by-side table
    assert "37 on 37 of 37 bars" in result.stdout
    assert "backtest: 37 strategy error(s) on 37 of 37 bars; first (on_data at 2010-01-05): " in (
        result.stdout
    )
    assert "live: 37 strategy error(s) on 37 of 37 bars" in result.stdout
    assert "ValueError: nothing works" in result.stdout
    assert "PARITY: identical —" not in result.stdout
    assert "PARITY: identical, but not a pass" in result.stdout
    assert "raised an exception on 37 of 37 bars of the backtest and the live run" in result.output


def test_a_strategy_that_raises_on_some_bars_is_identical_but_not_clean_and_exits_0(raisers: Path):
    result = _parity(f"{raisers}:RaisesOnEvenBars")
    assert result.exit_code == 0, result.output
    assert "PARITY: identical, but the strategy raised on 18 of 37 bars" in result.stdout
    assert "KeyError: 'even bar'" in result.stdout
    assert "PARITY: identical —" not in result.stdout


def test_identical_runs_in_which_nothing_filled_are_not_a_pass(raisers: Path):
    result = _parity(f"{raisers}:NeverTrades")
    assert result.exit_code == 1, result.output
    assert "PARITY: identical, but not a pass" in result.stdout
    assert "nothing filled in either run (0 orders)" in result.stderr


def test_a_strategy_that_trades_a_symbol_the_run_has_no_data_for_is_not_a_pass(raisers: Path):
    result = invoke(
        "parity", f"{raisers}:TradesAapl", "-s", "MSFT", "--start", "2010-01-01", "--end", "2010-02-26"
    )
    assert result.exit_code == 1, result.output
    assert (
        "backtest: 7 of 7 orders rejected: 7 × no price data for AAPL in this backtest (symbols: MSFT); add it"
        in (result.stdout)
    )
    assert "PARITY: identical —" not in result.stdout


def test_a_strategy_that_raises_only_live_is_a_parity_failure(raisers: Path):
    result = _parity(f"{raisers}:RaisesOnlyLive")
    assert result.exit_code == parity_cli.PARITY_FAILED, result.output
    assert "PARITY FAILED" in result.stdout
    assert "strategy_errors" in result.stdout  # a row of the differences table
    assert "live: 37 strategy error(s) on 37 of 37 bars" in result.stdout
    assert "backtest:" not in result.stdout  # the backtest raised nothing
