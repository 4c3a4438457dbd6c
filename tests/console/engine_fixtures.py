"""A real engine trading on the simulated gateway with its console attached (engine mode, with controls)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.console import ConsoleServer, ServeOptions
from copilot_quant.gateway.server import GatewayServer

STRATEGY = "Seesaw"


class Seesaw(Strategy):
    """Buys 1 AAPL on even bars and sells it on odd ones: a fill on every bar."""

    def __init__(self) -> None:
        super().__init__()
        self.name = STRATEGY
        self.bars = 0

    def on_data(self, timestamp, data):
        self.bars += 1
        side = "buy" if self.bars % 2 else "sell"
        return [Order("AAPL", 1, "market", side)]


@dataclass
class LiveConsole:
    engine: LiveStrategyEngine
    server: ConsoleServer
    gateway: GatewayServer
    kill_file: Path


def live_console(
    gateway: GatewayServer, tmp_path: Path, client_id: int, port: int = 0
) -> Iterator[LiveConsole]:
    engine = LiveStrategyEngine(port=gateway.port, client_id=client_id, update_interval=3600)
    engine.add_strategy(Seesaw())
    engine.kill_switch_file = tmp_path / "account.kill"
    server = None
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        server = ConsoleServer.for_engine(
            engine, ServeOptions(port=port, token_file=tmp_path / "token")
        ).start()
        yield LiveConsole(engine, server, gateway, engine.kill_switch_file)
    finally:
        if server is not None:
            server.stop()
        engine.disconnect()
