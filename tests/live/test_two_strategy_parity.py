"""Parity for a two-strategy account: each strategy's orders and fills are the same live as in its backtest.

The backtest runs both strategies on one account (each with an equal capital share); the live engine runs
both on the simulated gateway replaying the same bars, stepped one bar at a time. Both strategies size
their orders from ``self.equity`` — their own sleeve — so a sleeve marked differently live would show at once.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import commission_model, slippage_model
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.model.spread import DEFAULT_SPREAD, grid_frame, with_spread
from copilot_quant.parity import _ReplayFeed

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]

CAPITAL = 100_000.0
START, END = "2010-01-01", "2010-04-30"


class SleeveSizer(Strategy):
    """Every ``period`` bars, rebalances ``symbol`` to ``weight`` of its own equity (to a hundredth of a share)."""

    def __init__(self, name: str, symbol: str, period: int, weight: float, skip_first: bool) -> None:
        super().__init__()
        self.name = name
        self.symbol, self.period, self.weight = symbol, period, weight
        self.skip_first = skip_first  # the range's first bar is history live: the backtest skips it too
        self.bar = 0

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order]:
        if self.skip_first:
            self.skip_first = False
            return []
        self.bar += 1
        if self.bar % self.period:
            return []
        close = float(data[("Close", self.symbol)].iloc[-1])
        target = math.floor(self.equity * self.weight / close * 100) / 100
        change = round(target - self.position(self.symbol), 2)
        if abs(change) < 0.01:
            return []
        side = "buy" if change > 0 else "sell"
        return [Order(self.symbol, abs(change), "market", side, allow_fractional=True)]


def _strategies(skip_first: bool) -> list[SleeveSizer]:
    return [
        SleeveSizer("Trend", "AAPL", 3, 0.6, skip_first),
        SleeveSizer("Pairs", "MSFT", 2, 0.4, skip_first),
    ]


def _fill_rows(fills: list[Fill]) -> list[tuple[str, str, float, float, float]]:
    return [
        (f.symbol, str(f.side), round(f.fill_quantity, 6), round(f.fill_price, 4), round(f.commission, 4))
        for f in fills
    ]


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_two_strategies_on_one_account_trade_the_same_live_as_in_their_backtest(tmp_path):
    provider = SampleDataProvider()
    frames = {
        s: provider.get_historical_data(s, start_date=START, end_date=END)[
            ["Open", "High", "Low", "Close", "Volume"]
        ]
        for s in ("AAPL", "MSFT")
    }
    stamps = pd.DatetimeIndex(sorted(set(frames["AAPL"].index) & set(frames["MSFT"].index)))
    # on the tick grid, as the gateway prints them (adjusted sample data is off it): both sides walk the same bars
    frames = {s: grid_frame(f.loc[stamps].astype(float)) for s, f in frames.items()}
    # the same slippage object on both sides, with the default (data-derived) spread in it
    cost, slip = commission_model(0.001), with_spread(slippage_model(0.0005), DEFAULT_SPREAD)

    backtest = BacktestEngine(
        initial_capital=CAPITAL, data_provider=_ReplayFeed(frames), commission=cost, slippage=slip
    )
    for strategy in _strategies(skip_first=True):
        backtest.add_strategy(strategy)
    result = backtest.run(stamps[0], stamps[-1], ["AAPL", "MSFT"])

    config = GatewayConfig(
        port=0,
        data=_ReplayFeed(frames),
        symbols=["AAPL", "MSFT"],
        cash=CAPITAL,
        bar_interval="1d",
        start=stamps[0],
        commission=cost,
        slippage=slip,
    )
    live = _strategies(skip_first=False)
    live_fills: dict[str, list[Fill]] = {}
    with GatewayServer(config) as gateway:
        engine = LiveStrategyEngine(
            port=gateway.port,
            client_id=95,
            update_interval=0.05,
            enable_reconnect=False,
            fill_timeout=0.0,
            stale_after=None,
            cancel_on_stop=True,
            journal=tmp_path / "journal.sqlite",
        )
        engine.broker.ack_timeout = 0.0
        for strategy in live:
            engine.add_strategy(strategy)
        try:
            assert engine.connect(timeout=10, retry_count=1)
            assert engine.start(["AAPL", "MSFT"], lookback_days=(stamps[-1] - stamps[0]).days + 2)
            broker = gateway.broker
            for stamp in stamps[1:]:
                gateway.clock.step()
                _wait(lambda s=stamp: engine.last_bar is not None and engine.last_bar >= s, f"bar {stamp}")
                sent = sum(1 for r in engine.broker.tracker.records() if r.ib_order_id)
                _wait(
                    lambda n=sent: (
                        gateway.call(lambda: len(broker.open_orders()) + len(broker.completed_orders())) >= n
                    ),
                    "the gateway to acknowledge orders",
                )
                _wait(
                    lambda: len(engine.fills) >= gateway.call(lambda: len(broker.executions())),
                    "fills to reach the strategies",
                )
            engine.stop()
            for slot in engine.strategy_slots:
                live_fills[slot.name] = [f for f in engine.fills if slot.owns(f.order)]
            summary = engine.get_performance_summary()
        finally:
            engine.disconnect()

    for strategy in live:
        name = strategy.name
        mine = result.strategies[name]
        assert len(mine.fills) >= 10, f"{name} traded"
        assert _fill_rows(live_fills[name]) == _fill_rows(mine.fills), name
        assert summary["strategies"][name]["capital"] == pytest.approx(CAPITAL / 2)
        backtest_positions = {s: p.quantity for s, p in mine.positions.items() if p.quantity}
        assert summary["strategies"][name]["positions"] == pytest.approx(backtest_positions)
