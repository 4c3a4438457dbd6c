"""Fixtures for live-trading tests: a real simulated IB Gateway on a free loopback port, real ib_async."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.gateway.testing import running_gateway

#: The gateway replays known synthetic bars from this date, so tests know the "future" prices.
REPLAY_START = "2024-03-01"
SYMBOLS = ["AAPL", "MSFT"]


class Scripted(Strategy):
    """Returns the orders scripted for its n-th bar (1-based) and records every fill it is told about."""

    def __init__(self, script: dict[int, list[Order]] | None = None) -> None:
        super().__init__()
        self.script = script or {}
        self.bars = 0
        self.fills: list[Fill] = []

    def on_data(self, timestamp, data):
        self.bars += 1
        orders = self.script.get(self.bars)
        return [o.copy() for o in orders] if orders else None

    def on_fill(self, fill):
        self.fills.append(fill)


@pytest.fixture
def feed() -> SyntheticDataProvider:
    return SyntheticDataProvider(seed=42)


@pytest.fixture
def gateway_factory(feed: SyntheticDataProvider) -> Iterator[Callable[..., GatewayServer]]:
    started: list[GatewayServer] = []

    def make(**overrides: object) -> GatewayServer:
        config = GatewayConfig(port=0, data=feed, symbols=list(SYMBOLS), start=REPLAY_START)
        for key, value in overrides.items():
            setattr(config, key, value)
        server = GatewayServer(config).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_engine(gateway: GatewayServer) -> Iterator[Callable[..., LiveStrategyEngine]]:
    """Engines on ``gateway`` (keyword arguments override the defaults), each disconnected after the test."""
    made: list[LiveStrategyEngine] = []

    def make(**kwargs: Any) -> LiveStrategyEngine:
        options: dict[str, Any] = {"port": gateway.port, "client_id": 90, "update_interval": 3600}
        options.update(kwargs)
        engine = LiveStrategyEngine(**options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.disconnect()


@pytest.fixture
def fut_fx_gateway() -> Iterator[GatewayServer]:
    """A paused gateway replaying the futures and forex feed from Monday 2026-11-02 16:00 (the December
    contracts are the front month), 100,000 USD of cash."""
    from tests.gateway.fut_fx_feed import FutFxFeed

    with running_gateway(data=FutFxFeed(), start="2026-11-02 16:00", cash=100_000.0) as gw:
        yield gw


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayServer]) -> GatewayServer:
    """A paused gateway (step its clock by hand) replaying synthetic AAPL and MSFT from REPLAY_START."""
    return gateway_factory()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Stepper:
    """Steps the gateway's clock on a background thread until told to stop (a market that keeps moving)."""

    def __init__(self, server: GatewayServer, interval: float = 0.1) -> None:
        self.server = server
        self.interval = interval
        self.steps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.server.clock.step(1)
            self.steps += 1

    def __enter__(self) -> Stepper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(autouse=True)
def _journal_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Engines journal into the test's tmp dir, never into $HOME."""
    path = tmp_path / "journal"
    monkeypatch.setenv("COPILOT_QUANT_JOURNAL_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def _no_leaked_ib_threads() -> Iterator[None]:
    """Every test must close what it opened: no IB loop thread or engine worker may outlive it."""
    before = {t.ident for t in threading.enumerate()}
    yield

    def leaked() -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("copilot-quant") and t.ident not in before and t.is_alive()
        ]

    wait_until(lambda: not leaked(), timeout=5)
    assert not leaked(), f"threads left running: {leaked()}"
