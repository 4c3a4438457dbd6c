"""The daily-loss rail reads IB's P&L stream (``reqPnL``, about every second), not NetLiquidation, which
real IB pushes only on change or about every 3 minutes (docs/ib-behaviours.md row 11); the status line
says why the connection is degraded. Each test failed before the engine was wired to the P&L stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.cli.live import _status_line
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.risk import RiskLimits, RiskManager, RiskRule

from .conftest import wait_until

T0 = datetime(2024, 6, 3, 14, 0, tzinfo=UTC)


def _risk(max_daily_loss: float) -> RiskManager:
    return RiskManager(RiskLimits(max_daily_loss=max_daily_loss), clock=lambda: T0)


def test_the_daily_loss_rail_reads_the_pnl_stream_before_the_lagging_account_value() -> None:
    risk = _risk(500)
    buy = Order("AAPL", 10, side="buy")
    # NetLiquidation has not moved yet (IB pushes it every ~3 min); IB's P&L stream already shows the loss
    decision = risk.check(buy, None, {}, 100_000.0, 100_000.0, daily_pnl=-600.0)
    assert not decision.ok
    assert decision.rule is RiskRule.DAILY_LOSS
    assert "600" in decision.reason
    # a lagging NetLiquidation that still shows a loss no longer decides once the stream says otherwise
    assert risk.check(buy, None, {}, 99_000.0, 100_000.0, daily_pnl=-10.0).ok


@pytest.mark.parametrize("daily", [None, float("nan")])
def test_without_a_pnl_the_rail_falls_back_to_the_account_values(daily: float | None) -> None:
    risk = _risk(500)
    buy = Order("AAPL", 10, side="buy")
    assert not risk.check(buy, None, {}, 99_000.0, 100_000.0, daily_pnl=daily).ok
    assert risk.check(buy, None, {}, 99_900.0, 100_000.0, daily_pnl=daily).ok
    refused = risk.check(buy, None, {}, None, None, daily_pnl=daily)
    assert refused.rule is RiskRule.DAILY_LOSS
    assert "daily_pnl" in refused.reason


class BuysOnce(Strategy):
    def on_data(self, timestamp, data):
        if not self.positions:
            return [Order("AAPL", 50, "limit", "buy", limit_price=10_000.0, time_in_force="gtc")]
        return None


@pytest.fixture
def engine(gateway: GatewayServer) -> Iterator[LiveStrategyEngine]:
    made = LiveStrategyEngine(
        port=gateway.port,
        client_id=94,
        update_interval=3600,
        risk_limits=RiskLimits(max_daily_loss=1_000_000),
    )
    yield made
    made.disconnect()


@pytest.mark.network
@pytest.mark.timeout(90)
def test_the_engine_reads_the_days_pnl_while_account_values_are_throttled(engine, gateway) -> None:
    engine.add_strategy(BuysOnce())
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    # IB refreshes account values every 3 minutes of market time; a daily step is longer, so the drill
    # stretches the cycle past the test's bars to show the lag
    gateway.faults.throttle_account_updates(30 * 86_400)
    gateway.clock.step(1)  # the strategy's order goes out
    assert wait_until(lambda: gateway.call(gateway.broker.open_orders))
    value = engine.account.value
    gateway.clock.step(1)  # it fills; the market moves
    assert wait_until(lambda: engine.fills and engine.fills[0].order.status is OrderStatus.FILLED)
    # the simulated session ends with each daily bar (its daily P&L starts over): the engine's reading
    # is IB's stream's, while NetLiquidation stays where the throttle froze it
    pnl = engine.broker.account_pnl()
    assert pnl.unrealized != 0.0  # the stream moved with the market
    assert wait_until(lambda: engine.account.daily_pnl == pytest.approx(engine.broker.account_pnl().daily))
    assert engine.account.value == value  # NetLiquidation lags, as at IB


def test_the_status_line_says_why_the_connection_is_degraded() -> None:
    summary = {
        "positions": {},
        "connection_state": "degraded",
        "connection_problems": ["data farm ushmds broken"],
        "account": "DU1",
        "account_value": 1.0,
        "cash_balance": 1.0,
        "total_fills": 0,
        "total_errors": 0,
        "last_bar": pd.Timestamp("2013-09-20 20:00", tz="UTC"),
    }
    assert "degraded[/] (data farm ushmds broken)" in _status_line(summary, "1d")


@pytest.mark.network
@pytest.mark.timeout(90)
def test_a_loss_only_the_pnl_stream_shows_stops_new_risk(gateway) -> None:
    engine = LiveStrategyEngine(
        port=gateway.port, client_id=95, update_interval=3600, risk_limits=RiskLimits(max_daily_loss=500)
    )
    try:
        # the account lost 2,000 today before the engine started: the engine's own baseline (the first
        # NetLiquidation it sees) cannot know it; IB's daily P&L does
        def lost_today() -> None:
            account = gateway.broker._account
            account.day_start_equity += 2_000
            account.start_day = lambda: None  # the drill's whole run is one trading day

        gateway.call(lost_today)
        strategy = BuysOnce()
        engine.add_strategy(strategy)
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        assert engine.account.daily_pnl == pytest.approx(-2_000)
        gateway.clock.step(1)
        assert wait_until(lambda: any("max_daily_loss" in e["error"] for e in engine.errors))
        assert not gateway.call(gateway.broker.open_orders)
    finally:
        engine.disconnect()


def test_the_status_line_names_symbols_with_market_data_problems() -> None:
    summary = {
        "positions": {},
        "connection_state": "connected",
        "market_data_problems": {"AAPL": "delayed market data (IB 10167)"},
        "account": "DU1",
        "account_value": 1.0,
        "cash_balance": 1.0,
        "total_fills": 0,
        "total_errors": 0,
        "last_bar": None,
    }
    assert "market data: AAPL delayed market data (IB 10167)" in _status_line(summary, "1d")
