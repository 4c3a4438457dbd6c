"""`copilot-quant live` against the simulated gateway: status line, clean shutdown, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.cli import app
from typer.testing import CliRunner

from tests.strategy_sources import BUY_ONCE

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

STRATEGY = (
    BUY_ONCE
    + """
    def finalize(self):
        print("finalized")
"""
)


@pytest.fixture
def strategy_file(tmp_path: Path) -> Path:
    path = tmp_path / "buy_once.py"
    path.write_text(STRATEGY)
    return path


def test_live_runs_shows_status_and_shuts_down_cleanly(gateway_factory, strategy_file, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    result = CliRunner().invoke(
        app,
        [
            "live",
            f"{strategy_file}:BuyOnce",
            "--symbols",
            "AAPL",
            "MSFT",
            "--paper",
            "--port",
            str(server.port),
            "--client-id",
            "90",
            "--interval",
            "1d",
            "--duration",
            "2",
            "--update-interval",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "connected" in result.output
    assert "account DU1234567" in result.output
    assert "Stopped. fills 1" in result.output
    assert "finalized" in result.output
    assert wait_until(lambda: not server.core.sessions)  # the CLI disconnected


PARAMETRIZED = """
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.backtest.orders import Order


class BuySome(Strategy):
    def __init__(self, symbol, quantity=1, limit=None, tags=()):
        super().__init__()
        print(f"ARGS {symbol!r} {quantity!r} {type(quantity).__name__} {limit!r} {tags!r}")
        self.symbol, self.quantity = symbol, quantity

    def initialize(self):
        self.done = False

    def on_data(self, timestamp, data):
        if self.done:
            return None
        self.done = True
        return [Order(self.symbol, self.quantity, "market", "buy")]

    def on_fill(self, fill):
        print(f"FILLED {fill.order.symbol} {fill.fill_quantity:g}")
"""


def test_live_builds_the_strategy_from_its_params(gateway_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    path = tmp_path / "buy_some.py"
    path.write_text(PARAMETRIZED)
    server = gateway_factory(speed=10)
    args = ["live", f"{path}:BuySome", "-s", "AAPL", "MSFT", "--port", str(server.port), "--client-id", "96"]
    args += ["--duration", "2", "--update-interval", "1"]
    args += ["-p", "symbol=MSFT", "--param", "quantity=3", "-p", "limit=none", "-p", "tags=['a', 1]"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ARGS 'MSFT' 3 int None ['a', 1]" in result.output
    assert "Strategy: BuySome(symbol='MSFT', quantity=3, limit=None, tags=['a', 1])" in result.output
    assert "FILLED MSFT 3" in result.output
    assert "Stopped. fills 1" in result.output
    assert wait_until(lambda: not server.core.sessions)


def test_live_refuses_a_missing_required_param_before_connecting(gateway_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    path = tmp_path / "buy_some.py"
    path.write_text(PARAMETRIZED)
    server = gateway_factory(speed=10)
    args = ["live", f"{path}:BuySome", "-s", "AAPL", "--port", str(server.port), "--client-id", "97"]
    result = CliRunner().invoke(app, [*args, "--duration", "2", "-p", "quantity=3"])
    assert result.exit_code == 2, result.output
    assert "BuySome needs a value for symbol" in result.stderr
    assert "Connecting" not in result.output
    assert not server.core.sessions  # it never connected


def test_live_reports_an_unreachable_gateway(strategy_file):
    result = CliRunner().invoke(app, ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", "1"])
    assert result.exit_code == 1  # a runtime failure, not bad input
    assert "could not connect" in result.output


def test_live_reports_a_bad_strategy_spec(tmp_path):
    result = CliRunner().invoke(app, ["live", f"{tmp_path}/missing.py:Nope", "--symbols", "AAPL"])
    assert result.exit_code == 2


def _one_line(output: str) -> str:
    return " ".join(output.split())


def test_live_refuses_a_live_port_in_paper_mode_in_cli_words(strategy_file):
    result = CliRunner().invoke(app, ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", "7496"])
    assert result.exit_code == 2
    text = _one_line(result.output)
    assert "LIVE trading port" in text
    assert "--port is 7496" in text
    assert "use --live --confirm-live if you really mean to trade real money" in text
    assert "paper_trading" not in text  # the CLI has no such option


def test_live_trading_needs_confirm_live_in_cli_words(strategy_file, monkeypatch):
    monkeypatch.delenv("COPILOT_QUANT_CONFIRM_LIVE", raising=False)
    result = CliRunner().invoke(
        app, ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--live", "--port", "1"]
    )
    assert result.exit_code == 2
    text = _one_line(result.output)
    assert "--live trades real money" in text
    assert "add --confirm-live or set COPILOT_QUANT_CONFIRM_LIVE=yes" in text
    assert "confirm_live=True" not in text
    assert "paper_trading" not in text
    assert "Connecting" not in text


def test_paper_mode_on_a_live_account_is_refused_in_cli_words(gateway_factory, strategy_file, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(live_account=True, account="U7654321")
    args = ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "98"]
    result = CliRunner().invoke(app, [*args, "--duration", "1"])
    assert result.exit_code == 2, result.output
    text = _one_line(result.output)
    assert "live account(s) U7654321" in text
    assert "use --live --confirm-live to trade real money" in text
    assert "paper_trading" not in text


def test_live_exits_2_for_a_symbol_ib_does_not_know(gateway_factory, strategy_file, tmp_path, monkeypatch):
    """Bad input, as in `backtest` (it was 1, a runtime failure)."""
    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    journal = tmp_path / "j.sqlite"
    args = ["live", f"{strategy_file}:BuyOnce", "-s", "ZZZZ", "--port", str(server.port), "--client-id", "99"]
    result = CliRunner().invoke(app, [*args, "--duration", "1", "--journal", str(journal)])
    assert result.exit_code == 2, result.output
    assert "IB knows no US stock 'ZZZZ'" in _one_line(result.output)
    assert not journal.exists()  # refused before the journal was opened
    assert wait_until(lambda: not server.core.sessions)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--interval", "2h"], "unsupported interval '2h'"),
        (["--lookback-days", "0"], "--lookback-days must be at least 1"),
    ],
)
def test_live_refuses_bad_bar_settings_before_connecting(
    gateway_factory, strategy_file, monkeypatch, option, message
):
    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    args = ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "89"]
    result = CliRunner().invoke(app, [*args, *option, "--duration", "1"])
    assert result.exit_code == 2, result.output
    assert message in _one_line(result.output)
    assert "Connecting" not in result.output  # it used to connect first and fail after the kill-switch line
    assert "Kill switch" not in result.output
    assert not server.core.sessions


def test_live_help_shows_the_price_band_in_percent(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per option: rich wraps help text at the width
    result = CliRunner().invoke(app, ["live", "--help"])
    assert result.exit_code == 0
    assert "at most this % from the last price" in _one_line(result.output)
    assert "%%" not in result.output


def test_live_applies_risk_limits_and_journals(gateway_factory, strategy_file, tmp_path, monkeypatch):
    from copilot_quant.journal import OrderState, TradeJournal

    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    journal = tmp_path / "cli-journal.sqlite"
    args = ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "91"]
    args += ["--duration", "2", "--update-interval", "1", "--max-order-qty", "1", "--journal", str(journal)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Stopped. fills 0, errors 1" in result.output
    with TradeJournal(journal, read_only=True) as opened:
        (order,) = opened.orders()
    assert order.state is OrderState.REJECTED
    assert "max_order_quantity" in order.reason


def test_the_kill_command_writes_the_file_the_engine_watches(tmp_path):
    from copilot_quant.cli import app
    from typer.testing import CliRunner

    path = tmp_path / "kill" / "now"
    result = CliRunner().invoke(
        app, ["kill", "--kill-switch-file", str(path), "--flatten", "--reason", "desk"]
    )
    assert result.exit_code == 0, result.output
    text = path.read_text(encoding="utf-8")
    assert "desk" in text
    assert "flatten" in text.lower()  # what the engine's _check_kill_file looks for


def test_live_exits_1_when_the_engine_cannot_start_trading(gateway_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    path = tmp_path / "broken_start.py"
    path.write_text(
        "from copilot_quant.backtest.strategy import Strategy\n\n\n"
        "class BrokenStart(Strategy):\n"
        "    def initialize(self):\n"
        "        raise RuntimeError('no model file')\n\n"
        "    def on_data(self, timestamp, data):\n"
        "        return None\n"
    )
    server = gateway_factory(speed=10)
    args = ["live", f"{path}:BrokenStart", "-s", "AAPL", "--port", str(server.port), "--client-id", "92"]
    args += ["--journal", str(tmp_path / "j.sqlite"), "--duration", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # connected, then failed at runtime: not bad input
    assert "could not start" in result.output
    assert "no model file" in result.output


# ------------------------------------------------------------------------------- kill --account
RESTING = """
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.backtest.orders import Order


class RestOnce(Strategy):
    def initialize(self):
        self.done = False

    def on_data(self, timestamp, data):
        if self.done:
            return None
        self.done = True
        return [Order("AAPL", 5, "limit", "buy", limit_price=1.0, time_in_force="gtc")]  # never fills
"""


@pytest.fixture
def resting_file(tmp_path: Path) -> Path:
    path = tmp_path / "rest_once.py"
    path.write_text(RESTING)
    return path


def _journal_dir() -> Path:
    import os

    return Path(os.environ["COPILOT_QUANT_JOURNAL_DIR"])  # the test's own (conftest's _journal_in_tmp)


def _kill_events(account: str) -> list[str]:
    from copilot_quant.journal import TradeJournal

    with TradeJournal(_journal_dir() / f"{account}.sqlite", read_only=True) as journal:
        return [e.detail for e in journal.events(kind="kill_switch")]


def test_kill_account_halts_a_running_live_session(gateway_factory, resting_file, monkeypatch):
    """End to end: `copilot-quant live` in its own process, `copilot-quant kill --account` from this one."""
    import os
    import signal
    import subprocess
    import sys

    from copilot_quant.journal import OrderState, TradeJournal

    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    account = server.broker.account_id
    args = [sys.executable, "-m", "copilot_quant", "live", f"{resting_file}:RestOnce", "-s", "AAPL"]
    args += ["--port", str(server.port), "--client-id", "93", "--duration", "40", "--update-interval", "1"]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    try:
        assert wait_until(
            lambda: len(server.broker.open_orders()) == 1 or proc.poll() is not None, timeout=30
        )
        assert proc.poll() is None, proc.communicate()[0]
        result = CliRunner().invoke(app, ["kill", "--account", account, "--reason", "desk says stop"])
        assert result.exit_code == 0, result.output
        # the engine cancels the resting order within about a second (its worker polls the file)
        assert wait_until(lambda: not server.broker.open_orders(), timeout=10)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert f"Kill switch: `copilot-quant kill --account {account}`" in output
    (detail,) = _kill_events(account)
    assert "desk says stop" in detail
    assert f"{account}.kill" in detail
    with TradeJournal(_journal_dir() / f"{account}.sqlite", read_only=True) as journal:
        (order,) = journal.orders()
    assert order.state is OrderState.CANCELLED


def test_live_refuses_a_stale_account_kill_file_until_it_is_cleared(
    gateway_factory, resting_file, monkeypatch
):
    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    account = server.broker.account_id
    assert CliRunner().invoke(app, ["kill", "--account", account, "--reason", "last night"]).exit_code == 0
    args = ["live", f"{resting_file}:RestOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "94"]
    args += ["--duration", "1", "--update-interval", "1"]

    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1, refused.output  # connected, then refused at runtime
    text = " ".join(refused.output.split())
    assert "last night" in text
    assert f"copilot-quant kill --account {account} --clear" in text
    assert not server.broker.open_orders()  # nothing was traded
    assert wait_until(lambda: not server.core.sessions)  # and it disconnected

    cleared = CliRunner().invoke(app, ["kill", "--account", account, "--clear"])
    assert cleared.exit_code == 0, cleared.output
    started = CliRunner().invoke(app, args)
    assert started.exit_code == 0, started.output
    assert "Stopped." in started.output
    assert not _kill_events(account)


def test_live_with_its_own_kill_file_also_obeys_kill_account(
    gateway_factory, resting_file, tmp_path, monkeypatch
):
    import threading

    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    account = server.broker.account_id

    def kill_when_the_order_rests() -> None:
        if wait_until(lambda: len(server.broker.open_orders()) == 1, timeout=20):
            CliRunner().invoke(app, ["kill", "--account", account, "--reason", "other desk"])

    killer = threading.Thread(target=kill_when_the_order_rests, daemon=True)
    killer.start()
    args = ["live", f"{resting_file}:RestOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "95"]
    args += ["--duration", "5", "--update-interval", "1", "--kill-switch-file", str(tmp_path / "STOP")]
    result = CliRunner().invoke(app, args)
    killer.join(timeout=20)
    assert result.exit_code == 0, result.output
    assert not server.broker.open_orders()  # cancelled by the kill, not by the stop (which keeps orders)
    (detail,) = _kill_events(account)
    assert "other desk" in detail


def test_live_flatten_on_stop_closes_the_strategys_position_when_the_run_ends(
    gateway_factory, strategy_file, monkeypatch
):
    monkeypatch.delenv("IB_PORT", raising=False)
    server = gateway_factory(speed=10)
    args = ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", str(server.port), "--client-id", "93"]
    result = CliRunner().invoke(
        app, [*args, "--duration", "2", "--update-interval", "1", "--flatten-on-stop"]
    )
    assert result.exit_code == 0, result.output
    assert "Stopped. fills 2" in result.output  # the buy, and the sell that closed it on stop
    assert not [p for p in server.broker.positions() if p.position]


TWO = """
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.backtest.orders import Order


class BuyOnceOf(Strategy):
    def __init__(self, symbol, quantity):
        super().__init__()
        self.symbol, self.quantity, self.done = symbol, quantity, False

    def on_data(self, timestamp, data):
        if self.done:
            return None
        self.done = True
        return [Order(self.symbol, self.quantity, "market", "buy")]
"""


def test_live_runs_two_strategies_on_one_account_and_reports_each(gateway_factory, tmp_path, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    path = tmp_path / "two.py"
    path.write_text(TWO)
    server = gateway_factory(speed=10)
    journal = tmp_path / "journal.sqlite"
    args = [
        "live",
        f"{path}:BuyOnceOf(symbol='AAPL', quantity=5, name='apples', capital=40000)",
        f"{path}:BuyOnceOf(symbol='AAPL', quantity=3, name='more apples')",
        "--symbols",
        "AAPL",
        "--port",
        str(server.port),
        "--client-id",
        "93",
        "--duration",
        "2",
        "--update-interval",
        "1",
        "--journal",
        str(journal),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Strategies (one account):" in result.output
    assert "Stopped. fills 2" in result.output
    lines = {line.split(":")[0].strip(): line for line in result.output.splitlines() if " fills 1, " in line}
    assert "AAPL 5" in lines["apples"]
    assert "capital 40,000.00" in lines["apples"]
    assert "AAPL 3" in lines["more apples"]
    # the journal knows whose each order was: the journal command shows it per strategy
    shown = CliRunner().invoke(app, ["journal", "--path", str(journal), "strategies"])
    assert shown.exit_code == 0, shown.output
    rows = {line.split("│")[1].strip(): line for line in shown.output.splitlines() if line.count("│") > 3}
    assert "AAPL 5" in rows["apples"]
    assert "AAPL 3" in rows["more apples"]


def test_live_refuses_a_percentage_capital_before_connecting(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(TWO)
    spec = f"{path}:BuyOnceOf(symbol='AAPL', quantity=5, capital='50%')"
    result = CliRunner().invoke(app, ["live", spec, "--symbols", "AAPL", "--port", "1"])
    assert result.exit_code == 2
    assert "give an amount" in result.output
