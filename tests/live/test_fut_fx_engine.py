"""A live engine run trades a futures contract and a forex pair at the simulated gateway (#14)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway

from tests.gateway.fut_fx_feed import FutFxFeed

from .conftest import Scripted, Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start="2026-11-02 16:00", cash=100_000.0) as gw:
        yield gw


@pytest.fixture
def engine(gateway: GatewayServer) -> Iterator[LiveStrategyEngine]:
    e = LiveStrategyEngine(paper_trading=True, port=gateway.port, client_id=61, update_interval=3600)
    yield e
    e.disconnect()


class Recording(Scripted):
    def __init__(self, script: dict[int, list[Order]]) -> None:
        super().__init__(script)
        self.frames: list[pd.DataFrame] = []

    def on_data(self, timestamp, data):
        self.frames.append(data)
        return super().on_data(timestamp, data)


def test_a_live_run_trades_mes_and_eur_usd(engine: LiveStrategyEngine, gateway: GatewayServer) -> None:
    strategy = Recording(
        {
            1: [Order("MESZ6", 2, "market", "buy"), Order("EUR.USD", 20_000, "market", "buy")],
            3: [Order("MESZ6", 2, "market", "sell")],
        }
    )
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["MESZ6", "EUR.USD"], lookback_days=10)
    with Stepper(gateway, interval=0.1):
        assert wait_until(lambda: len(strategy.fills) == 3, timeout=30)
    data = strategy.frames[0]
    ts = data.index[-1]
    assert data.loc[ts, ("Close", "MESZ6")] > 1000
    assert 0.5 < data.loc[ts, ("Close", "EUR.USD")] < 2.0
    # live bars carry the stamps of the backtest's data: CME's and IDEALPRO's day ends, not the NYSE's
    feed = FutFxFeed()
    for symbol in ("MESZ6", "EUR.USD"):
        stamps = feed.get_historical_data(symbol).index
        assert set(data[("Close", symbol)].dropna().index) <= set(stamps)
    by_symbol = {(f.order.symbol, f.order.side.value): f for f in strategy.fills}
    assert by_symbol[("MESZ6", "buy")].commission == pytest.approx(1.24)
    assert by_symbol[("EUR.USD", "buy")].commission == pytest.approx(2.0)
    summary = engine.get_performance_summary()
    assert summary["positions"] == {"EUR.USD": 20_000.0}
    assert summary["total_fills"] == 3
