"""What the command line prints of the log: ib_async's routine records at their real level, one line per
event, one red line for an unreachable port, and times as a trader reads them (issue 16)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.cli import app
from copilot_quant.cli.live import _status_line
from copilot_quant.cli.logs import IbAsyncLevels, ib_async_level
from copilot_quant.cli.words import bar_time, cli_words
from copilot_quant.gateway.testing import running_gateway
from typer.testing import CliRunner

from tests.strategy_sources import BUY_ONCE

pytestmark = pytest.mark.timeout(60)


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("name", "message", "level"),
    [
        ("ib_async.wrapper", "Error 202, reqId 12: Order Canceled - reason:", logging.INFO),
        ("ib_async.wrapper", "Error 200, reqId 6: No security definition has been found", logging.INFO),
        ("ib_async.ib", "cancelMktData: No reqId found for contract Stock(symbol='AAPL')", logging.DEBUG),
        ("ib_async.client", "API connection failed: ConnectionRefusedError(111, 'refused')", logging.DEBUG),
        ("ib_async.client", "Make sure API port on TWS/IBG is open", logging.DEBUG),
        # not routine: stays an error
        ("ib_async.wrapper", "Error 321, reqId 3: Error validating request", logging.ERROR),
        ("ib_async.client", "Peer closed connection.", logging.ERROR),
        # not ib_async: never touched
        ("copilot_quant.x", "Error 202, reqId 12: Order Canceled", logging.ERROR),
    ],
)
def test_ib_async_routine_records_get_the_level_they_deserve(name: str, message: str, level: int) -> None:
    assert ib_async_level(_record(name, logging.ERROR, message)) == level


def test_the_filter_applies_the_threshold_after_relevelling() -> None:
    shown = IbAsyncLevels(logging.WARNING)
    cancel = _record("ib_async.wrapper", logging.ERROR, "Error 202, reqId 12: Order Canceled")
    assert not shown.filter(cancel)
    assert (cancel.levelno, cancel.levelname) == (logging.INFO, "INFO")
    assert shown.filter(_record("ib_async.wrapper", logging.ERROR, "Error 321, reqId 3: bad"))
    assert IbAsyncLevels(logging.INFO).filter(_record("ib_async.wrapper", logging.ERROR, "Error 202, x"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


STRATEGY = BUY_ONCE


@pytest.fixture
def strategy_file(tmp_path: Path) -> Path:
    path = tmp_path / "buy_once.py"
    path.write_text(STRATEGY, encoding="utf-8")
    return path


def test_an_unreachable_port_is_one_red_line(strategy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IB_PORT", raising=False)
    result = CliRunner().invoke(
        app, ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", str(_free_port())]
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # 12 lines of ConnectionRefusedError before (issue 16)
    assert lines[0].startswith("Error: could not connect")
    assert "ConnectionRefusedError" not in result.output


def test_a_risk_rejection_is_logged_once(strategy_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("IB_PORT", raising=False)
    with running_gateway(data="synthetic", symbols=["AAPL"], speed=10, start="2024-01-02") as server:
        args = [
            "live",
            f"{strategy_file}:BuyOnce",
            "-s",
            "AAPL",
            "--port",
            str(server.port),
            "--client-id",
            "93",
        ]
        args += ["--duration", "2", "--update-interval", "1", "--max-order-qty", "1"]
        args += ["--journal", str(tmp_path / "journal.sqlite")]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "errors 1" in result.output
    assert result.output.count("exceeds max_order_quantity") == 1, result.output  # three times before


def test_the_status_line_shows_the_bar_date_for_daily_bars() -> None:
    summary = {
        "positions": {"AAPL": 10.0},
        "connection_state": "connected",
        "account": "DU1",
        "account_value": 1.0,
        "cash_balance": 1.0,
        "total_fills": 1,
        "total_errors": 0,
        "last_bar": pd.Timestamp("2013-09-20 20:00", tz="UTC"),
    }
    assert "last bar 2013-09-20" in _status_line(summary, "1d")
    assert "+00:00" not in _status_line(summary, "1d")
    assert "last bar 2013-09-20 16:00 EDT" in _status_line(summary, "1h")


def test_bar_times_read_as_the_exchange_writes_them() -> None:
    assert bar_time(pd.Timestamp("2020-01-16 21:00", tz="UTC")) == "2020-01-16"
    assert bar_time(pd.Timestamp("2020-01-16 15:31", tz="UTC"), "1m") == "2020-01-16 10:31 EST"
    assert bar_time(None) == "-"


def test_library_phrases_read_as_options() -> None:
    assert (
        cli_words("no price data for AAPL; add it to run(symbols=[...])")
        == "no price data for AAPL; add it to --symbols"
    )
    assert "leave the option out" in cli_words("x; leave it unset (None) for no limit; got 2")
    assert cli_words("holdout_from 2011-01-01 leaves no bars") == "--holdout-from 2011-01-01 leaves no bars"


def test_live_says_where_it_journals_and_what_it_leaves_open(
    strategy_file: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("IB_PORT", raising=False)
    journal = tmp_path / "journal.sqlite"
    with running_gateway(data="synthetic", symbols=["AAPL"], speed=10, start="2024-01-02") as server:
        args = [
            "live",
            f"{strategy_file}:BuyOnce",
            "-s",
            "AAPL",
            "--port",
            str(server.port),
            "--client-id",
            "94",
        ]
        args += ["--duration", "2", "--update-interval", "1", "--journal", str(journal)]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"Journal: {journal}" in text
    assert "Stopped. fills 1" in text
    assert "Still open in the account: AAPL 5. Stopping closes no position" in text


def test_a_bad_option_value_is_refused_in_cli_words() -> None:
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "copilot_quant.examples.sma_cross:SimpleMovingAverage",
            "-s",
            "AAPL",
            "--volume-limit",
            "2",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "leave the option out for no limit" in result.stderr
    assert "None" not in result.stderr


def test_library_log_messages_read_in_cli_words(tmp_path: Path) -> None:
    path = tmp_path / "boom.py"
    path.write_text(
        "from copilot_quant.backtest.strategy import Strategy\n\n\n"
        "class Boom(Strategy):\n    def on_data(self, timestamp, data):\n        raise ValueError('boom')\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["backtest", f"{path}:Boom", "-s", "AAPL", "--start", "2005-01-03", "--end", "2005-03-01"]
    )
    assert result.exit_code == 1, result.output
    assert "result.errors" not in result.output
    assert result.output.count("Traceback (most recent call last)") == 1
    assert "Boom.on_data failed at 2005-01-03: boom" in " ".join(result.output.split())  # a date, daily bars
    assert "+00:00" not in result.output


def test_a_reconcile_finding_is_one_line(strategy_file: Path, tmp_path: Path, monkeypatch) -> None:
    # issue 16: the journal of an account whose gateway was restarted without --state holds a position the
    # broker does not: that finding printed twice (a warning per finding, then the event at WARNING)
    monkeypatch.delenv("IB_PORT", raising=False)
    journal = tmp_path / "journal.sqlite"

    def run(client_id: str):
        with running_gateway(data="synthetic", symbols=["AAPL"], speed=10, start="2024-01-02") as server:
            args = ["live", f"{strategy_file}:BuyOnce", "-s", "AAPL", "--port", str(server.port)]
            args += ["--client-id", client_id, "--duration", "2", "--update-interval", "1"]
            return CliRunner().invoke(app, [*args, "--journal", str(journal)])

    first = run("95")
    assert "Stopped. fills 1" in first.output, first.output
    second = run("96")  # a fresh gateway with the same (library default) account id: it holds nothing
    assert second.exit_code == 0, second.output
    text = " ".join(second.output.split())
    assert text.count("position mismatch AAPL: IB holds 0 but the journal's fills explain 5") == 1, (
        second.output
    )


CANCELS = """
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.backtest.orders import Order


class PlaceThenCancel(Strategy):
    def on_data(self, timestamp, data):
        for order in self.open_orders():
            self.cancel(order)
        close = float(data["Close"].iloc[-1])
        return [Order("AAPL", 1, "limit", "buy", limit_price=round(close * 0.5, 2), time_in_force="gtc")]
"""


def test_a_cancel_the_strategy_asked_for_logs_no_error(tmp_path: Path, monkeypatch) -> None:
    # issue 16: every cancel logged `ERROR ib_async.wrapper: Error 202 ... Order Canceled`
    monkeypatch.delenv("IB_PORT", raising=False)
    path = tmp_path / "cancels.py"
    path.write_text(CANCELS, encoding="utf-8")
    with running_gateway(data="synthetic", symbols=["AAPL"], speed=10, start="2024-01-02") as server:
        args = [
            "live",
            f"{path}:PlaceThenCancel",
            "-s",
            "AAPL",
            "--port",
            str(server.port),
            "--client-id",
            "97",
        ]
        args += ["--duration", "3", "--update-interval", "1", "--journal", str(tmp_path / "j.sqlite")]
        result = CliRunner().invoke(app, ["-v", *args])  # -v: INFO shows, so the confirmation is visible
        cancelled = [o for o in server.broker.completed_orders() if o.status.value == "Cancelled"]
    assert result.exit_code == 0, result.output
    assert cancelled, "the strategy should have cancelled orders"
    confirmations = [line for line in result.output.splitlines() if "Error 202" in line]
    assert confirmations, result.output  # logged through the CLI's handler ...
    assert all("ERROR" not in line and "INFO" in line for line in confirmations)  # ... as what it is
    assert "ERROR" not in result.output
