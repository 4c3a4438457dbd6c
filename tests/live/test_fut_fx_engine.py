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


def test_a_futures_date_range_from_ib_holds_its_dates_whole_sessions_as_in_a_backtest(
    gateway: GatewayServer,
) -> None:
    """MES's Monday session opens Sunday 17:00 Chicago: a range ending on a Sunday stops at Friday's close,
    one starting on a Tuesday begins at Monday's evening open — the bars the backtest's provider gives."""
    from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter

    adapter = LiveDataFeedAdapter(paper_trading=True, port=gateway.port, client_id=62)
    try:
        assert adapter.connect(timeout=5)
        feed = FutFxFeed()
        for start, end in (
            ("2026-10-19", "2026-10-25"),
            ("2026-10-20", "2026-10-23"),
        ):  # to a Sunday; from a Tuesday
            live = adapter.get_historical_data("MES", start, end, "1h")
            backtest = feed.get_historical_data("MES", start, end, "1h")
            assert len(live) > 0
            pd.testing.assert_index_equal(live.index, backtest.index)
        sunday = adapter.get_historical_data("MES", "2026-10-19", "2026-10-25", "1h")
        assert sunday.index[-1] == pd.Timestamp("2026-10-23 21:00", tz="UTC")  # Friday's 16:00 Chicago close
        tuesday = adapter.get_historical_data("MES", "2026-10-20", "2026-10-23", "1h")
        assert tuesday.index[0] == pd.Timestamp("2026-10-19 23:00", tz="UTC")  # Monday 17:00 Chicago + 1 h
    finally:
        adapter.disconnect()
