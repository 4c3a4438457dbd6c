"""`copilot-quant console` refusals and `copilot-quant live … --console PORT` serving next to the engine."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import USAGE_ERROR
from typer.testing import CliRunner

from tests.console.conftest import ACCOUNT

STRATEGY = """
from copilot_quant.backtest.strategy import Strategy


class Idle(Strategy):
    def on_data(self, timestamp, data):
        return None
"""


def test_console_without_a_journal_is_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["console", "--journal-dir", str(tmp_path), "--account", ACCOUNT])
    assert result.exit_code == USAGE_ERROR
    assert "no journal at" in result.output


def test_console_refuses_a_non_loopback_host_without_tls(journal_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "console",
            "--journal-dir",
            str(journal_file.parent),
            "--account",
            ACCOUNT,
            "--host",
            "0.0.0.0",
            "--token-file",
            str(tmp_path / "token"),
        ],
    )
    assert result.exit_code == USAGE_ERROR
    assert "without TLS" in result.output
    assert not (tmp_path / "token").exists()


@pytest.mark.network
@pytest.mark.timeout(90)
def test_live_with_console_serves_it_prints_the_token_once_and_stops_it(
    gateway_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IB_PORT", raising=False)
    strategy = tmp_path / "idle.py"
    strategy.write_text(STRATEGY)
    server = gateway_factory(speed=10)
    token_file = tmp_path / "console.token"

    def run() -> str:
        result = CliRunner().invoke(
            app,
            [
                "live",
                f"{strategy}:Idle",
                "--symbols",
                "AAPL",
                "--port",
                str(server.port),
                "--client-id",
                "93",
                "--duration",
                "1",
                "--console",
                "0",
                "--console-token-file",
                str(token_file),
            ],
        )
        assert result.exit_code == 0, result.output
        return result.output

    first = run()
    token = token_file.read_text().strip()
    assert "Console: http://127.0.0.1:" in first
    assert f"?token={token}" in first
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    second = run()
    assert "Console: http://127.0.0.1:" in second
    assert token not in second  # printed once, when created
