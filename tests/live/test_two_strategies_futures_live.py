"""Two strategies on one account trading the continuous MES live against the simulated gateway, across a
quarterly roll: every order (the automatic roll's too) is tagged with its strategy in the journal, each fill
is attributed to its strategy, and each strategy's book holds its own contracts in money (P&L x 5)."""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.backtest.costs import commission_model, slippage_model
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.rolls import Roll
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.cli.journal_strategies import strategy_summaries
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.journal import TradeJournal
from copilot_quant.parity_replay import ReplayFeed, bar_frames, contract_frames

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


class Holds(Strategy):
    """Trades ``side`` ``contracts`` of MES once, on its first bar, and holds them; records its rolls."""

    def __init__(self, name: str, side: str, contracts: int) -> None:
        super().__init__()
        self.name, self.side, self.contracts = name, side, contracts
        self.rolls: list[Roll] = []
        self.seen: list[float] = []

    def on_roll(self, roll: Roll) -> None:
        self.rolls.append(roll)

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.seen.append(self.position("MES"))
        if not self.rolls and self.position("MES") == 0 and not self.open_orders() and len(self.seen) == 1:
            return [Order("MES", self.contracts, "market", self.side)]
        return None


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_two_strategies_on_mes_are_tagged_attributed_booked_and_rolled_each_on_its_own(tmp_path) -> None:
    provider = SyntheticDataProvider()
    frames, first, last = bar_frames(provider, ["MES"], "2026-09-01", "2026-09-30", "1d")
    stamps = pd.DatetimeIndex(sorted(frames["MES"].index))
    frames |= contract_frames(provider, ["MES"], first, last, interval="1d", roll_days=5)
    cost, slip = commission_model(0.001), slippage_model(0.0)
    config = GatewayConfig(
        port=0,
        data=ReplayFeed(frames),
        symbols=sorted(frames),
        cash=100_000.0,
        bar_interval="1d",
        start=stamps[0],
        commission=cost,
        slippage=slip,
    )
    long, short = Holds("Long", "buy", 3), Holds("Short", "sell", 1)
    journal_path = tmp_path / "journal.sqlite"
    with GatewayServer(config) as gateway:
        engine = LiveStrategyEngine(
            port=gateway.port,
            client_id=96,
            update_interval=0.05,
            enable_reconnect=False,
            fill_timeout=0.0,
            stale_after=None,
            cancel_on_stop=True,
            journal=journal_path,
            auto_roll=True,
        )
        engine.broker.ack_timeout = 0.0
        engine.add_strategy(long, capital=60_000)
        engine.add_strategy(short)
        try:
            assert engine.connect(timeout=10, retry_count=1)
            assert engine.start(["MES"], lookback_days=(stamps[-1] - stamps[0]).days + 2)
            broker = gateway.broker
            for stamp in stamps[1:]:
                gateway.clock.step()
                _wait(lambda s=stamp: engine.last_bar is not None and engine.last_bar >= s, f"bar {stamp}")
                _wait(
                    lambda: len(engine.fills) >= gateway.call(lambda: len(broker.executions())),
                    "fills to reach the strategies",
                )
            summary = engine.get_performance_summary()
            held_at_ib = {s: p.quantity for s, p in engine.broker.get_positions().items() if p.quantity}
            engine.stop()
        finally:
            engine.disconnect()

    # each strategy rolled its own contracts (MESU6 into MESZ6 on 2026-09-14)
    ((l_roll,), (s_roll,)) = long.rolls, short.rolls
    assert [(o.symbol, o.side.value, o.quantity) for o in l_roll.orders] == [
        ("MESU6", "sell", 3.0),
        ("MESZ6", "buy", 3.0),
    ]
    assert [(o.symbol, o.side.value, o.quantity) for o in s_roll.orders] == [
        ("MESU6", "buy", 1.0),
        ("MESZ6", "sell", 1.0),
    ]
    assert set(long.seen[1:]) == {3.0}
    assert set(short.seen[1:]) == {-1.0}
    # IB holds the net; each strategy's book its own side, in the new contract
    assert held_at_ib == {"MESZ6": 2.0}
    mine = summary["strategies"]
    assert mine["Long"]["positions"] == {"MESZ6": 3.0}
    assert mine["Short"]["positions"] == {"MESZ6": -1.0}
    # in money: 3 contracts x 5 per point, not the notional of ~6,000 a contract
    assert abs(mine["Long"]["equity"] - 60_000) < 5_000
    assert mine["Long"]["equity"] + mine["Short"]["equity"] == pytest.approx(
        100_000 + (mine["Long"]["pnl"] + mine["Short"]["pnl"])
    )
    # the journal tags every order (the rolls' included) with its strategy; the fills follow the tags
    journal = TradeJournal(journal_path)
    try:
        orders, fills = journal.orders(), journal.fills()
    finally:
        journal.close()
    tagged = [(o.strategy, o.symbol, str(getattr(o.side, "value", o.side)).upper()) for o in orders]
    assert sorted(tagged) == sorted(
        [
            ("Long", "MESU6", "BUY"),
            ("Short", "MESU6", "SELL"),
            ("Long", "MESU6", "SELL"),
            ("Long", "MESZ6", "BUY"),
            ("Short", "MESU6", "BUY"),
            ("Short", "MESZ6", "SELL"),
        ]
    ), tagged
    books = {s.name: s.positions for s in strategy_summaries(orders, fills)}
    assert books == {"Long": {"MESZ6": 3.0}, "Short": {"MESZ6": -1.0}}
