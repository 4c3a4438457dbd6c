"""`copilot-quant data download` through typer's CliRunner against the simulated gateway (pacing on)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from copilot_quant.cli.data import app
from copilot_quant.data.store import ParquetStore
from copilot_quant.gateway.server import GatewayServer
from typer.testing import CliRunner

runner = CliRunner()


def _download(port: int, store: Path, *extra: str) -> object:
    args = ["download", "--source", "ib", "--port", str(port), "--client-id", "9", "--store", str(store)]
    return runner.invoke(app, [*args, *extra])


def test_download_fills_the_store_and_a_second_run_asks_for_nothing(
    gateway_factory: Callable[..., GatewayServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = gateway_factory(pacing=True)
    store = tmp_path / "store"
    window = ["--interval", "1m", "--start", "2024-02-05", "--end", "2024-02-07"]
    result = _download(server.port, store, "--symbols", "aapl,MSFT", *window)
    assert result.exit_code == 0, result.output
    assert "6 request(s)" in result.output
    assert "Sessions without bars" in result.output
    assert ParquetStore(store).symbols("1m") == ["AAPL", "MSFT"]
    assert len(ParquetStore(store).bars("AAPL", "1m")) == 3 * 390
    monkeypatch.setenv("IB_PORT", str(server.port))  # IB_PORT / IB_CLIENT_ID as for `copilot-quant live`
    monkeypatch.setenv("IB_CLIENT_ID", "12")
    again = runner.invoke(app, ["download", "--store", str(store), "--symbols", "AAPL", "MSFT", *window])
    assert again.exit_code == 0, again.output
    assert "0 request(s)" in again.output
    assert f"127.0.0.1:{server.port} (client id 12)" in again.output
    assert server.core.pacer.violations == 0


def test_bad_arguments_are_named_with_the_fix(
    gateway_factory: Callable[..., GatewayServer], tmp_path: Path
) -> None:
    server = gateway_factory()
    wrong_source = _download(
        server.port, tmp_path, "--source", "yfinance", "--symbols", "AAPL", "--start", "2024-02-05"
    )
    assert wrong_source.exit_code == 2
    assert "data import" in wrong_source.output
    no_symbols = _download(server.port, tmp_path, "--start", "2024-02-05")
    assert no_symbols.exit_code == 2
    assert "--symbols" in no_symbols.output
    weekly = _download(
        server.port, tmp_path, "--symbols", "AAPL", "--interval", "1wk", "--start", "2024-02-05"
    )
    assert weekly.exit_code == 2
    assert "download 1d" in weekly.output


def test_an_unreachable_gateway_is_a_runtime_failure(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe closes
    result = _download(port, tmp_path, "--symbols", "AAPL", "--start", "2024-02-05", "--timeout", "2")
    assert result.exit_code == 1
    assert "cannot reach" in result.output
