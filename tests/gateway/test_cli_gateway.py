"""`copilot-quant gateway` starts, says where it listens, and reports bad settings in one line."""

from __future__ import annotations

import json
import re
import socket

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.words import bar_time
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(60)


def test_gateway_command_prints_where_it_listens_and_how_to_connect():
    result = CliRunner().invoke(app, ["gateway", "--port", "0", "--data", "sample", "--run-for", "0.2"])
    assert result.exit_code == 0, result.output
    assert "listening on 127.0.0.1:" in result.output
    assert "ib.connect('127.0.0.1'" in result.output
    assert re.search(r"account DU\d{7},", result.output)


def _account(output: str) -> str:
    found = re.search(r"account (DU\d+),", output)
    assert found, output
    return found.group(1)


def test_a_fresh_gateway_presents_a_fresh_paper_account_each_run(monkeypatch: pytest.MonkeyPatch):
    # issue 16: every fresh gateway was DU1234567, so `live` compared it with the old journal of that id
    # ("position mismatch AAPL: journal 50, broker 0")
    monkeypatch.delenv("IB_PAPER_ACCOUNT", raising=False)
    first, second = (_gateway("--data", "sample", "--run-for", "0.1") for _ in range(2))
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert _account(first.output) != _account(second.output)
    assert "a fresh paper account for this run (no --state)" in " ".join(first.output.split())


def test_the_state_file_keeps_the_account_and_an_explicit_one_wins(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IB_PAPER_ACCOUNT", raising=False)
    state = str(tmp_path / "gw.json")
    first = _gateway("--data", "sample", "--state", state, "--run-for", "0.1")
    again = _gateway("--data", "sample", "--state", state, "--run-for", "0.1")
    assert first.exit_code == again.exit_code == 0, first.output + again.output
    assert _account(first.output) == _account(again.output)
    assert "DU7654321," in _gateway("--data", "sample", "--account", "DU7654321", "--run-for", "0.1").output
    monkeypatch.setenv("IB_PAPER_ACCOUNT", "DU5550001")
    assert "DU5550001," in _gateway("--data", "sample", "--run-for", "0.1").output


def test_gateway_command_rejects_an_unknown_data_source():
    result = CliRunner().invoke(app, ["gateway", "--port", "0", "--data", "nonsense", "--run-for", "0.1"])
    assert result.exit_code == 2  # bad input
    assert "Unknown data source" in result.output


def test_gateway_command_exits_1_when_its_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app, ["gateway", "--port", str(port), "--data", "sample", "--run-for", "0.1"]
        )
    assert result.exit_code == 1, result.output  # a runtime failure, not bad input
    assert "could not listen" in result.output


def _gateway(*args: str):
    return CliRunner().invoke(app, ["gateway", "--port", "0", *args])


def test_gateway_command_refuses_a_symbol_the_sample_data_lacks_and_lists_what_it_has():
    result = _gateway("--data", "sample", "--symbols", "AAPL,ZZZZ", "--run-for", "0.1")
    assert result.exit_code == 2, result.output  # bad input: most likely a typo
    text = " ".join(result.output.split())
    assert "has no ZZZZ" in text
    assert "AAPL, FB, GOOG, IBM, MSFT" in text
    assert "listening" not in text


def test_gateway_command_serves_any_symbol_from_synthetic_data():
    result = _gateway("--data", "synthetic", "--symbols", "ZZZZ", "--run-for", "0.1")
    assert result.exit_code == 0, result.output
    assert "symbols: ZZZZ" in result.output


@pytest.mark.parametrize("given", [["AAPL", "MSFT"], ["AAPL,MSFT"], ["aapl", "--symbols", "msft"]])
def test_gateway_command_takes_symbols_in_both_forms_as_backtest_and_live_do(given: list[str]):
    # issue 16: `gateway --symbols AAPL MSFT` failed where backtest and live accept both forms
    result = _gateway("--data", "sample", "--symbols", *given, "--run-for", "0.1")
    assert result.exit_code == 0, result.output
    assert "symbols: AAPL, MSFT" in result.output


def test_gateway_command_refuses_a_stray_token_that_is_no_ticker():
    result = _gateway("--data", "sample", "--symbols", "AAPL", "data/x.csv", "--run-for", "0.1")
    assert result.exit_code == 2, result.output
    assert "'DATA/X.CSV' is not a ticker symbol" in result.output


def test_gateway_command_refuses_a_negative_account_update_interval():
    result = _gateway("--data", "sample", "--account-update-interval", "-5", "--run-for", "0.1")
    assert result.exit_code == 2, result.output
    assert "account_update_interval must be >= 0 seconds" in " ".join(result.output.split())


def test_gateway_command_refuses_a_start_after_the_data_ends_and_says_the_range():
    result = _gateway("--data", "sample", "--start", "2099-01-01", "--run-for", "0.1")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "after the end of the data" in text
    assert "from 2000-03-01 to 2013-03-01" in text


def test_gateway_command_starts_at_a_start_inside_the_data():
    result = _gateway("--data", "sample", "--start", "2012-06-01", "--run-for", "0.1")
    assert result.exit_code == 0, result.output
    assert "market time 2012-06-01" in result.output
    assert "Warning" not in result.output


def test_gateway_banner_says_in_words_whether_the_clock_runs():
    paused = _gateway("--data", "sample", "--clock", "replay", "--run-for", "0.1")
    assert paused.exit_code == 0, paused.output
    text = " ".join(paused.output.split())
    assert "clock paused" in text
    assert "--speed N" in text
    assert "paused bars/s" not in text
    with_control = _gateway(
        "--data", "sample", "--clock", "replay", "--control-port", "0", "--run-for", "0.1"
    )
    assert "gateway-ctl --port" in " ".join(with_control.output.split())
    running = _gateway("--data", "sample", "--speed", "2", "--run-for", "0.1")
    assert "clock running at 2 bars per second" in " ".join(running.output.split())


def test_gateway_command_warns_when_the_data_has_no_bars_at_the_replay_interval():
    result = _gateway("--data", "sample", "--bar-interval", "1h", "--run-for", "0.1")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Warning: the data source 'sample' has no 1h bars for AAPL" in text
    assert "generated" in text


def test_gateway_command_resumes_the_market_clock_from_its_state_file(tmp_path):
    state = tmp_path / "gw.json"
    first = _gateway("--data", "sample", "--state", str(state), "--speed", "40", "--run-for", "0.5")
    assert first.exit_code == 0, first.output
    saved = json.loads(state.read_text())["market_time"]
    assert saved > "2013-03-02"  # the clock ran past the sample's last bar (2013-03-01)
    second = _gateway("--data", "sample", "--state", str(state), "--clock", "replay", "--run-for", "0.1")
    assert second.exit_code == 0, second.output
    assert f"market time {bar_time(saved)}," in second.output  # daily bars: the exchange date


def test_a_bare_gateway_runs_the_wall_clock_paper_market_and_says_so():
    result = _gateway("--run-for", "0.1")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "paper market on the wall clock, open around the clock" in text
    assert "1m bars complete in real time" in text
    assert "replay" not in text.split("(--clock replay")[0]
    exchange = _gateway("--hours", "exchange", "--run-for", "0.1")
    assert "open in NYSE sessions (holidays closed)" in " ".join(exchange.output.split())


def test_replay_settings_on_the_wall_clock_are_refused_with_the_way_out():
    result = _gateway("--clock", "wall", "--speed", "2", "--run-for", "0.1")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "speed is a setting of the market replay" in text
    assert "--clock replay" in text
    hours = _gateway("--clock", "replay", "--hours", "exchange", "--run-for", "0.1")
    assert hours.exit_code == 2, hours.output
    assert "hours applies to the wall-clock market" in " ".join(hours.output.split())
    bad = _gateway("--clock", "sundial", "--run-for", "0.1")
    assert bad.exit_code == 2, bad.output


def test_gateway_command_offers_a_futures_root_and_a_pair_from_synthetic_data():
    result = _gateway(
        "--data", "synthetic", "--clock", "replay", "--symbols", "MES", "EUR.USD", "AAPL", "--run-for", "0.1"
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"symbols: AAPL, EUR\.USD, MES[HMUZ]\d\b", result.output)
    assert found, result.output  # MES stands for its front contract
