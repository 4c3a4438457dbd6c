"""`copilot-quant backtest` and `copilot-quant demo` through typer's CliRunner, on real files and data."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
from copilot_quant.backtest.results import format_metric
from copilot_quant.cli import app
from copilot_quant.cli.backtest import errored_bars, every_bar_errored, load_strategy_class, run_backtest
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, USAGE_ERROR
from copilot_quant.errors import StrategyError
from copilot_quant.examples.sma_cross import SimpleMovingAverage, SmaCrossFast
from typer.testing import CliRunner

EXAMPLE = Path(__file__).resolve().parents[2] / "copilot_quant" / "examples" / "sma_cross.py"

runner = CliRunner()

STRATEGY_FILE = textwrap.dedent(
    """
    from copilot_quant.backtest.orders import Order
    from copilot_quant.backtest.strategy import Strategy


    class BuyAndHoldEach(Strategy):
        '''Buys 10 shares of every symbol on the first bar and holds them.'''

        def initialize(self):
            self.done = False

        def on_data(self, timestamp, data):
            if self.done:
                return []
            self.done = True
            symbols = data.columns.get_level_values(1).unique() if data.columns.nlevels == 2 else ["AAPL"]
            return [Order(s, 10, "market", "buy") for s in symbols]


    class NotAStrategy:
        pass


    def helper():
        return 1
    """
)


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def strategy_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_strategy.py"
    path.write_text(STRATEGY_FILE, encoding="utf-8")
    return path


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == USAGE_ERROR == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error:")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------------- happy paths
def test_backtest_of_the_example_file_prints_metrics_and_writes_the_report(tmp_path: Path):
    report = tmp_path / "out.html"
    result = invoke(
        "backtest",
        f"{EXAMPLE}:SimpleMovingAverage",
        "--symbols",
        "AAPL",
        "MSFT",
        "--start",
        "2005-01-01",
        "--end",
        "2012-12-31",
        "--data",
        "sample",
        "--capital",
        "100000",
        "--commission",
        "0.001",
        "--report",
        str(report),
        "--param",
        "symbol=AAPL",
    )
    assert result.exit_code == 0, result.output
    # the numbers printed are the numbers of the same run done in Python
    direct = run_backtest(
        SimpleMovingAverage(symbol="AAPL"),
        ["AAPL", "MSFT"],
        start="2005-01-01",
        end="2012-12-31",
        commission=0.001,
    )
    stats = direct.metrics
    assert stats["total_trades"] > 10
    for key in ("final_value", "sharpe_ratio", "max_drawdown", "total_trades", "win_rate"):
        assert format_metric(key, stats[key]) in result.stdout, key
    assert "SimpleMovingAverage on AAPL, MSFT" in result.stdout
    assert report.exists()
    text = report.read_text(encoding="utf-8")
    assert 'id="trades"' in text
    assert f"{stats['sharpe_ratio']:.2f}" in text
    assert "Report written to" in result.stdout


def test_a_strategy_can_be_named_by_module_and_symbols_by_comma():
    result = invoke(
        "backtest",
        "copilot_quant.examples.sma_cross:SmaCrossFast",
        "--symbols",
        "aapl,msft",
        "--start",
        "2010-01-01",
        "--end",
        "2011-12-31",
        "--fill-at",
        "close",
        "--slippage",
        "0",
        "-p",
        "symbol=msft",
    )
    assert result.exit_code == 0, result.output
    assert "SmaCrossFast on AAPL, MSFT" in result.stdout
    assert "Sharpe ratio" in result.stdout


def test_a_user_file_with_one_strategy_needs_no_class_name(strategy_file: Path):
    result = invoke(
        "backtest", str(strategy_file), "-s", "IBM", "GOOG", "--start", "2011-01-01", "--end", "2011-06-30"
    )
    assert result.exit_code == 0, result.output
    assert "BuyAndHoldEach on IBM, GOOG" in result.stdout
    assert "Open trades (marked)" in result.stdout  # both positions are still held at the end


def test_the_symbols_option_may_come_before_the_strategy(strategy_file: Path):
    result = invoke(
        "backtest", "--symbols", "IBM", "MSFT", f"{strategy_file}:BuyAndHoldEach", "--end", "2001-03-01"
    )
    assert result.exit_code == 0, result.output
    assert "BuyAndHoldEach on IBM, MSFT" in result.stdout


def test_synthetic_data_serves_any_symbol():
    result = invoke(
        "backtest", f"{EXAMPLE}:SmaCrossFast", "-s", "AAPL", "--data", "synthetic:7", "--start", "2020-01-01",
        "--end", "2020-12-31",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Closed trades" in result.stdout


def test_rejected_orders_are_reported_not_hidden(strategy_file: Path):
    # 10 shares of GOOG (~$300+) cannot be bought with $100
    result = invoke(
        "backtest", f"{strategy_file}:BuyAndHoldEach", "-s", "GOOG", "MSFT", "--capital", "100",
        "--start", "2010-01-01", "--end", "2010-03-01",
    )  # fmt: skip
    # every order rejected: the metrics say nothing, and the exit code says so (issue 16)
    assert result.exit_code == RUNTIME_FAILURE, result.output
    assert "2 of 2 orders rejected: 2 × insufficient cash: buying 10 GOOG" in result.stdout
    assert "Error: 2 of 2 orders were rejected" in result.stderr


ALWAYS_AAPL = textwrap.dedent(
    """
    from copilot_quant.backtest.strategy import Strategy


    class AlwaysAapl(Strategy):
        def on_data(self, timestamp, data):
            return [self.order()] if len(data) % 5 == 0 else None

        def order(self):
            from copilot_quant.backtest.orders import Order
            return Order("AAPL", 1, "market", "buy")
    """
)


def test_orders_for_a_symbol_the_run_has_no_data_for_fail_the_backtest(tmp_path: Path):
    path = tmp_path / "aapl.py"
    path.write_text(ALWAYS_AAPL, encoding="utf-8")
    result = invoke("backtest", f"{path}:AlwaysAapl", "--symbols", "MSFT", "--end", "2010-03-01")
    assert result.exit_code == RUNTIME_FAILURE, result.output
    assert "no price data for AAPL in this backtest (symbols: MSFT); add it to --symbols" in result.stdout
    assert "run(symbols" not in result.output
    assert "orders were for AAPL, which this run has no data for (symbols: MSFT)" in result.stderr


def test_a_minority_of_rejected_orders_is_reported_and_the_run_passes(strategy_file: Path):
    # GOOG is too dear for $2,000 but MSFT and IBM are not: one order in two rejected is not "most"
    result = invoke(
        "backtest", f"{strategy_file}:BuyAndHoldEach", "-s", "GOOG", "MSFT", "IBM", "--capital", "2000",
        "--start", "2010-01-01", "--end", "2010-03-01",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 of 3 orders rejected: insufficient cash: buying 10 GOOG" in result.stdout


# ------------------------------------------------------------------------------------------- strategy errors
FAILING_STRATEGIES = textwrap.dedent(
    """
    from copilot_quant.backtest.strategy import FastStrategy, Strategy


    class GuideTrapEveryBar(Strategy):
        '''The guide's 'Close' in data.columns test without its warm-up: raises on every multi-symbol bar.'''

        def on_data(self, timestamp, data):
            closes = data['Close'] if 'Close' in data.columns else data[('Close', 'AAPL')]
            if closes.tail(1).mean() > 0:  # a Series when data['Close'] is a frame: ambiguous truth value
                return []
            return []


    class GuideTrapAfterWarmUp(Strategy):
        '''The guide's SimpleMovingAverage shape: returns early for 29 bars, then raises on every bar.'''

        def on_data(self, timestamp, data):
            closes = data['Close'] if 'Close' in data.columns else data[('Close', 'AAPL')]
            if len(closes) < 30:
                return []
            if closes.tail(10).mean() > closes.tail(30).mean():
                return []
            return []


    class FastFailsEveryBar(FastStrategy):
        def indicators(self, data):
            return {'close': data[('Close', 'AAPL')] if data.columns.nlevels == 2 else data['Close']}

        def on_bar(self, timestamp, close):
            raise ZeroDivisionError('no signal')


    class FailsOnlyInFinalize(Strategy):
        def on_data(self, timestamp, data):
            return []

        def finalize(self):
            raise RuntimeError('finalize broke')
    """
)


@pytest.fixture
def failing_file(tmp_path: Path) -> Path:
    path = tmp_path / "failing.py"
    path.write_text(FAILING_STRATEGIES, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "symbols"), [("GuideTrapEveryBar", ["AAPL", "MSFT"]), ("FastFailsEveryBar", ["AAPL"])]
)
def test_a_strategy_that_fails_on_every_bar_exits_1_after_the_summary(
    failing_file: Path, tmp_path: Path, name: str, symbols: list[str]
):
    report = tmp_path / "failed.html"
    result = invoke(
        "backtest", f"{failing_file}:{name}", "-s", *symbols, "--start", "2010-01-01", "--end", "2010-03-31",
        "--report", str(report),
    )  # fmt: skip
    assert result.exit_code == RUNTIME_FAILURE == 1, result.output
    direct = run_backtest(
        load_strategy_class(f"{failing_file}:{name}")(), symbols, start="2010-01-01", end="2010-03-31"
    )
    bars = len(direct.equity_curve)
    assert bars > 50
    assert every_bar_errored(direct)
    # the summary and the error count with the first error (and the guide-trap hint) are still printed
    assert f"{name} on {', '.join(symbols)}" in result.stdout
    assert "Sharpe ratio" in result.stdout
    assert f"{bars} strategy error(s) on {bars} of {bars} bars" in result.stdout
    if name == "GuideTrapEveryBar":
        assert "data[('Close', 'AAPL')]" in result.stdout
    assert report.exists()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [k for k, line in enumerate(lines) if line.startswith("Error:")]
    assert len(errors) == 1  # after the log (the first traceback), one red line
    assert f"raised an exception on {bars} of {bars} bars" in " ".join(lines[errors[0] :])
    # the first traceback once, the others counted (issue 16: five tracebacks, ~85 lines, before)
    assert result.output.count("Traceback (most recent call last)") <= 1


def test_a_strategy_that_fails_on_most_bars_exits_1_and_says_how_many(failing_file: Path):
    result = invoke(
        "backtest", f"{failing_file}:GuideTrapAfterWarmUp", "-s", "AAPL", "MSFT", "--start", "2010-01-01",
        "--end", "2010-12-31",
    )  # fmt: skip
    # issue 16: raising on most bars is a failed run, not a metrics table and exit 0
    assert result.exit_code == RUNTIME_FAILURE, result.output
    direct = run_backtest(
        load_strategy_class(f"{failing_file}:GuideTrapAfterWarmUp")(),
        ["AAPL", "MSFT"],
        start="2010-01-01",
        end="2010-12-31",
    )
    bars = len(direct.equity_curve)
    assert errored_bars(direct) == bars - 29  # every bar after the 29 warm-up bars
    assert not every_bar_errored(direct)
    assert f"{bars - 29} strategy error(s) on {bars - 29} of {bars} bars" in result.stdout
    assert "hint:" in result.stdout
    assert f"raised an exception on {bars - 29} of {bars} bars" in result.stderr


def test_errors_after_the_last_bar_are_not_bar_errors(failing_file: Path):
    result = invoke(
        "backtest", f"{failing_file}:FailsOnlyInFinalize", "-s", "AAPL", "--start", "2010-01-04",
        "--end", "2010-01-04",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 strategy error(s) on 0 of 1 bars" in result.stdout
    assert "finalize broke" in result.stdout


def test_the_demo_exits_1_when_its_live_half_differs(tmp_path: Path, monkeypatch):
    from copilot_quant.cli import backtest as backtest_cli

    monkeypatch.setattr(backtest_cli, "_demo_live_half", lambda console: False)
    result = invoke("demo", "--out", str(tmp_path / "demo.html"))
    assert result.exit_code == RUNTIME_FAILURE, result.output
    assert (tmp_path / "demo.html").exists()


# ------------------------------------------------------------------------------------------- errors
def test_a_missing_file_is_one_red_line_and_exit_2(tmp_path: Path):
    result = invoke("backtest", f"{tmp_path / 'nope.py'}:X", "--symbols", "AAPL")
    assert_one_line_error(result, "nope.py", "not found")


def test_a_missing_class_lists_the_strategies_in_the_file(strategy_file: Path):
    result = invoke("backtest", f"{strategy_file}:Missing", "--symbols", "AAPL")
    assert_one_line_error(result, "no class 'Missing'", "BuyAndHoldEach")


@pytest.mark.parametrize("name", ["NotAStrategy", "helper"])
def test_a_class_that_is_not_a_strategy_is_refused(strategy_file: Path, name: str):
    result = invoke("backtest", f"{strategy_file}:{name}", "--symbols", "AAPL")
    assert_one_line_error(result, f"'{name}'", "is not a Strategy")


def test_a_file_that_fails_to_import_says_why(tmp_path: Path):
    bad = tmp_path / "broken.py"
    bad.write_text("import nonexistent_package_xyz\n", encoding="utf-8")
    result = invoke("backtest", f"{bad}:X", "--symbols", "AAPL")
    assert_one_line_error(result, "broken.py", "ModuleNotFoundError", "nonexistent_package_xyz")


def test_a_missing_module_is_reported():
    result = invoke("backtest", "no_such_pkg.strategies:X", "--symbols", "AAPL")
    assert_one_line_error(result, "no_such_pkg.strategies")


def test_an_unknown_symbol_names_the_available_ones():
    result = invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage", "--symbols", "ZZZZ", "--data", "sample")
    assert_one_line_error(result, "ZZZZ", "AAPL")


def test_start_after_end_is_refused():
    result = invoke(
        "backtest",
        f"{EXAMPLE}:SimpleMovingAverage",
        "-s",
        "AAPL",
        "--start",
        "2012-01-01",
        "--end",
        "2005-01-01",
    )
    assert_one_line_error(result, "start 2012-01-01 is after end 2005-01-01")


@pytest.mark.parametrize("flag", ["--start", "--end"])
def test_an_unparsable_date_is_refused(flag: str):
    result = invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", flag, "31/31/2020")
    assert_one_line_error(result, flag, "31/31/2020")


def test_a_range_without_bars_is_an_error_not_an_empty_report():
    result = invoke(
        "backtest",
        f"{EXAMPLE}:SimpleMovingAverage",
        "-s",
        "AAPL",
        "--start",
        "1990-01-01",
        "--end",
        "1990-12-31",
    )
    assert_one_line_error(result, "No bars for AAPL")


def test_missing_symbols_and_bad_options_are_refused():
    assert_one_line_error(invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage"), "--symbols")
    assert_one_line_error(
        invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", "--fill-at", "noon"), "--fill-at"
    )
    assert_one_line_error(
        invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", "--data", "bogus"), "bogus"
    )
    assert_one_line_error(  # refused before the run, not after it
        invoke("backtest", f"{EXAMPLE}:SimpleMovingAverage", "-s", "AAPL", "--report", "out.png"), "*.html"
    )


# ------------------------------------------------------------------------------------------- loader
def test_load_strategy_class_by_file_and_by_module():
    assert load_strategy_class(f"{EXAMPLE}:SmaCrossFast").__name__ == "SmaCrossFast"
    assert load_strategy_class("copilot_quant.examples.sma_cross:SmaCrossFast") is SmaCrossFast
    with pytest.raises(StrategyError, match="Say which strategy"):
        load_strategy_class(str(EXAMPLE))  # two strategies there


def test_an_abstract_strategy_is_refused(tmp_path: Path):
    path = tmp_path / "abstract.py"
    path.write_text(
        "from copilot_quant.backtest.strategy import Strategy\nclass Half(Strategy):\n    pass\n",
        encoding="utf-8",
    )
    with pytest.raises(StrategyError, match="abstract; implement on_data"):
        load_strategy_class(f"{path}:Half")


# ------------------------------------------------------------------------------------------- demo
@pytest.mark.timeout(120)
def test_demo_backtests_then_runs_live_with_parity_without_network(tmp_path: Path, monkeypatch):
    real_connect = socket.socket.connect
    real_create = socket.create_connection

    def host_of(address) -> str:
        return str(address[0]) if isinstance(address, tuple) else str(address)

    def loopback_only(sock, address):
        if host_of(address) not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"the demo must not use the network (connect to {address})")
        return real_connect(sock, address)

    def create_loopback_only(address, *args, **kwargs):
        if host_of(address) not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"the demo must not use the network (connect to {address})")
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    monkeypatch.setattr(socket, "create_connection", create_loopback_only)
    monkeypatch.setenv("COPILOT_QUANT_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.chdir(tmp_path)
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    report = tmp_path / "out" / "report.html"
    assert report.exists()
    assert "SimpleMovingAverage on AAPL, 2005-2012" in result.stdout
    assert "Sharpe ratio" in result.stdout
    assert "Closed trades" in result.stdout
    text = report.read_text(encoding="utf-8")
    assert "SimpleMovingAverage" in text
    assert 'id="trades"' in text
    # the live half: both results side by side and the verdict
    assert "backtest vs live" in result.stdout
    assert "Live (simulated gateway)" in result.stdout
    assert "PARITY: identical" in result.stdout


def test_demo_accepts_another_output_path(tmp_path: Path):
    target = tmp_path / "reports" / "demo.html"
    result = invoke("demo", "--out", str(target), "--no-live")
    assert result.exit_code == 0, result.output
    assert target.exists()
