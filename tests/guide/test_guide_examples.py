"""Every code example of the live-trading guide, run verbatim against the simulated gateway on port 7497."""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import signal
import sys
import threading
import time
import unittest
from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import ConfigError

from .conftest import GUIDE, fast_time, guide_blocks, run, snippet, statements

pytestmark = [pytest.mark.guide, pytest.mark.network, pytest.mark.timeout(90)]


def _wait(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# CI and developers have shared/ beside the repository root
SHARED_GUIDE = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "LIVE_INTEGRATION_GUIDE.md"


@pytest.mark.skipif(not SHARED_GUIDE.exists(), reason="the original guide is not available here")
def test_the_guide_copy_is_verbatim():
    # A formatter must never touch the copy (ruff formats code blocks in .md files): compare byte for byte.
    assert GUIDE.read_bytes() == SHARED_GUIDE.read_bytes()


def test_the_guide_copy_has_all_examples():
    assert len(guide_blocks("python")) == 16
    assert len(guide_blocks("bash")) == 1


# ---------------------------------------------------------------------------------- Usage Examples
def test_basic_live_trading_until_sigint(guide_gateway, capsys):
    code = snippet(
        "from copilot_quant.backtest.live_engine import LiveStrategyEngine\nfrom copilot_quant.strategies"
    )
    namespace = {"__name__": "guide", "time": fast_time()}
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:  # Ctrl-C once the loop has printed a few summaries
        _wait(lambda: capsys.readouterr is not None and "engine" in namespace, 10)
        engine = namespace["engine"]
        _wait(lambda: engine.get_performance_summary()["bars_processed"] > 3, 15)
        time.sleep(0.5)
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    killer = threading.Thread(target=interrupt, daemon=True)
    killer.start()
    try:
        run(code, namespace)
    finally:
        signal.signal(signal.SIGINT, previous)
        killer.join(5)
    out = capsys.readouterr().out
    assert "Connected to IBKR" in out
    assert "Account Value: $" in out
    assert "Positions: {" in out
    assert "Stopping..." in out
    engine = namespace["engine"]
    assert not engine.is_running()
    assert not engine.is_connected()
    assert engine.bars_processed > 3


def test_using_adapters_directly(guide_gateway, capsys):
    code = snippet(
        "from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter\nfrom copilot_quant.brokers.live_broker"
    )
    namespace = run(code, {"__name__": "guide"})
    out = capsys.readouterr().out
    loaded = int(out.split("Loaded ")[1].split(" bars")[0])
    assert loaded > 200  # daily bars since 2024-01-01
    assert "Current price: $" in out
    assert "Order filled @ $" in out
    assert "AAPL: 10.0 shares" in out
    assert not namespace["data_feed"].is_connected()
    assert not namespace["broker"].is_connected()


def test_strategy_compatibility_backtest_then_live(guide_gateway, capsys, monkeypatch, tmp_path):
    # "pre-filling the provider's cache instead of the network": YFinanceProvider reads primed bars offline.
    monkeypatch.setenv("COPILOT_QUANT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COPILOT_QUANT_OFFLINE", "1")
    from copilot_quant.data.providers import YFinanceProvider

    bars = SyntheticDataProvider(seed=7).get_historical_data("AAPL", "2022-06-01", "2024-01-31")
    YFinanceProvider().prime("AAPL", bars, "1d")

    code = snippet(
        "from copilot_quant.backtest.strategy import Strategy\nfrom copilot_quant.backtest.orders import Order"
    )
    namespace = {"__name__": "guide", "LiveStrategyEngine": LiveStrategyEngine}
    try:
        run(code, namespace)
        live_engine = namespace["live_engine"]
        assert live_engine.is_running()
        assert live_engine.is_connected()
        assert _wait(lambda: live_engine.bars_processed > 0)
    finally:
        if "live_engine" in namespace:
            namespace["live_engine"].stop()
            namespace["live_engine"].disconnect()
    result = namespace["result"]
    assert len(result.trades) > 0  # the same class traded in the backtest
    assert "Fill: " in capsys.readouterr().out


# ---------------------------------------------------------------------------------- Error Handling
def test_connection_loss_handling_fallback_and_manual_reconnect(guide_gateway, capsys):
    parts = statements(snippet("# LiveDataFeedAdapter automatically attempts reconnection"))
    namespace = run("".join(parts[:2]), {"__name__": "guide", "LiveDataFeedAdapter": LiveDataFeedAdapter})
    adapter = namespace["adapter"]
    try:
        adapter.get_historical_data("AAPL", interval="1d")  # something cached
        guide_gateway.refuse_connections(2.0)
        guide_gateway.drop_all()
        assert _wait(lambda: not adapter.is_connected())
        run("".join(parts[2:]), namespace)  # the checks, while the gateway is unreachable
        out = capsys.readouterr().out
        assert "Using cached data due to connection loss" in out
        assert "Reconnected successfully" not in out
        assert _wait(adapter.is_connected, 30)  # automatic reconnection once the gateway is back
        run("".join(parts[2:]), namespace)
        out = capsys.readouterr().out
        assert "Using cached data due to connection loss" not in out
        assert "Reconnected successfully" in out
    finally:
        adapter.disconnect()


def test_data_fallback_serves_the_cache(guide_gateway):
    parts = statements(snippet("# Enable caching (enabled by default)"))
    assert len(parts) == 3
    # adapter + first (cached) request
    namespace = run("".join(parts[:2]), {"__name__": "guide", "LiveDataFeedAdapter": LiveDataFeedAdapter})
    adapter = namespace["adapter"]
    try:
        hist = namespace["hist_data"]
        assert not hist.empty
        guide_gateway.stop()  # connection lost
        assert _wait(lambda: not adapter.is_connected())
        run(parts[2], namespace)
        pd.testing.assert_frame_equal(namespace["current_data"], hist)
        assert adapter.is_fallback_mode()
    finally:
        adapter.disconnect()


def test_order_execution_errors(guide_gateway, capsys):
    broker = LiveBrokerAdapter(paper_trading=True)
    assert broker.connect()
    try:
        namespace = {
            "__name__": "guide",
            "broker": broker,
            "order": Order(symbol="AAPL", quantity=10, order_type="market", side="buy"),
            "price": 100.0,
            "timestamp": dt.datetime.now(dt.UTC),
        }
        run(snippet("# Check buying power before order execution"), namespace)
        assert "Order executed" in capsys.readouterr().out
        guide_gateway.reject_next_order("Simulated rejection")
        rejected = Order(symbol="AAPL", quantity=10, order_type="market", side="buy")
        assert broker.execute_order(rejected, 100.0, dt.datetime.now(dt.UTC)) is None
        assert rejected.status is OrderStatus.REJECTED
        assert "Order error: " in capsys.readouterr().out  # the registered on_error ran
        namespace["order"] = Order(symbol="AAPL", quantity=10_000_000, order_type="market", side="buy")
        run(snippet("# Check buying power before order execution"), namespace)
        assert "Insufficient buying power" in capsys.readouterr().out
    finally:
        broker.disconnect()


class Exploding(Strategy):
    def on_data(self, timestamp, data):
        raise ValueError("bad signal")


def test_strategy_errors_are_listed(guide_gateway, capsys):
    engine = LiveStrategyEngine(paper_trading=True, update_interval=1.0)
    engine.add_strategy(Exploding())
    try:
        assert engine.connect()
        assert engine.start(["AAPL"])
        assert _wait(lambda: engine.total_errors >= 2)
        run(
            snippet("# Errors in strategy.on_data() are caught and logged"),
            {"__name__": "guide", "engine": engine},
        )
        out = capsys.readouterr().out
        assert "Total errors: " in out
        assert "ValueError: bad signal" in out
        assert engine.is_running()
    finally:
        engine.disconnect()


# ---------------------------------------------------------------------------------- Configuration
def test_env_file_configuration(guide_gateway, tmp_path: Path):
    env = snippet("# .env file", "bash")
    (tmp_path / ".env").write_text(env)
    adapter = LiveDataFeedAdapter(paper_trading=True)
    settings = adapter.connection.settings
    assert (settings.host, settings.port, settings.paper_account) == ("127.0.0.1", 7497, "DU12345")
    assert settings.client_id == 2  # IB_CLIENT_ID=1; the data adapter's own socket uses id + 1
    with pytest.raises(ConfigError, match="IB_PAPER_ACCOUNT=DU12345"):
        adapter.connect()  # the gateway manages DU1234567, not DU12345: refused, never silently rerouted
    adapter.disconnect()


def test_connection_parameters(guide_gateway):
    namespace = run(
        snippet("# Explicit parameters override environment variables"),
        {"__name__": "guide", "LiveDataFeedAdapter": LiveDataFeedAdapter},
    )
    adapter = namespace["adapter"]
    assert adapter.connection.settings.port == 7497
    assert adapter.connect()
    adapter.disconnect()


# ---------------------------------------------------------------------------------- Best Practices
def test_start_with_paper_trading():
    namespace = run(
        snippet("engine = LiveStrategyEngine(paper_trading=True)"), {"LiveStrategyEngine": LiveStrategyEngine}
    )
    assert namespace["engine"].connection.settings.port == 7497


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler interrupts this sleep


def test_graceful_shutdown_with_signal_handlers(guide_gateway, capsys):
    engine = LiveStrategyEngine(paper_trading=True, update_interval=60.0)
    engine.add_strategy(Exploding())
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert engine.connect()
        assert engine.start(["AAPL"])
        run(
            snippet("import signal\n\ndef signal_handler"),
            {"__name__": "guide", "engine": engine, "sys": sys},
        )
        with pytest.raises(SystemExit) as exit_info:
            _terminate_self()
        assert exit_info.value.code == 0
        assert "Shutting down..." in capsys.readouterr().out
        assert not engine.is_running()
        assert not engine.is_connected()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.disconnect()


def test_monitor_connection_status(guide_gateway, capsys):
    code = snippet("if not engine.is_connected():")
    engine = LiveStrategyEngine(paper_trading=True)
    run(code, {"engine": engine})
    assert "WARNING: Lost connection to IBKR" in capsys.readouterr().out
    assert engine.connect()
    run(code, {"engine": engine})
    assert "WARNING" not in capsys.readouterr().out
    engine.disconnect()


def test_log_everything(tmp_path: Path):
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = []  # basicConfig only configures an unconfigured root logger
    try:
        run(snippet("import logging\n\nlogging.basicConfig("), {"__name__": "guide"})
        logging.getLogger("copilot_quant.test").info("hello from the guide")
        for handler in root.handlers:
            handler.flush()
        assert "hello from the guide" in (tmp_path / "live_trading.log").read_text()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)


def test_reasonable_update_intervals():
    namespace = run(
        snippet("engine = LiveStrategyEngine(\n    update_interval=60.0"),
        {"LiveStrategyEngine": LiveStrategyEngine},
    )
    assert namespace["engine"].update_interval == 60.0


def test_handle_market_hours_snippet_runs_inside_a_loop_body():
    code = snippet("from datetime import datetime, time\n\ndef is_market_open():")
    # Its last lines `return []` belong inside "your strategy or engine loop": run it as that body.
    body = (
        "def engine_loop():\n"
        + "".join("    " + line for line in code.splitlines(keepends=True))
        + "    return None\n"
    )
    namespace = run(body, {"__name__": "guide"})
    assert namespace["engine_loop"]() in ([], None)


# ---------------------------------------------------------------------------------- Testing
def test_the_guides_unit_tests_pass(guide_gateway):
    namespace = run(
        snippet("import unittest\nfrom copilot_quant.brokers.live_data_adapter"),
        {"__name__": "guide", "datetime": dt.datetime},
    )
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(namespace["TestLiveDataAdapter"])
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    assert result.wasSuccessful(), result.failures + result.errors
    assert result.testsRun == 2


def test_the_guides_integration_test_passes(guide_gateway, capsys):
    namespace = run(
        snippet("def test_live_integration():"),
        {
            "__name__": "guide",
            "Strategy": Strategy,
            "LiveStrategyEngine": LiveStrategyEngine,
            "time": fast_time(),
        },
    )
    namespace["test_live_integration"]()
    assert "✓ Integration test passed" in capsys.readouterr().out
