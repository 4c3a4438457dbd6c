"""Several strategies on one account, live against the simulated gateway: each with its own book and fills."""

from __future__ import annotations

from typing import Any

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.errors import StrategyError
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.journal import TradeJournal
from copilot_quant.risk import RiskLimits
from ib_async import MarketOrder, Stock

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class Scripted(Strategy):
    """Returns the orders scripted for its n-th bar (1-based); records fills and the positions it saw."""

    def __init__(self, name: str, script: dict[int, list[Order]] | None = None) -> None:
        super().__init__()
        self.name = name
        self.script = script or {}
        self.bars = 0
        self.fills: list[Fill] = []

    def on_data(self, timestamp, data):
        self.bars += 1
        orders = self.script.get(self.bars)
        return [o.copy() for o in orders] if orders else None

    def on_fill(self, fill):
        self.fills.append(fill)


def _positions(strategy: Strategy) -> dict[str, float]:
    return {s: p.quantity for s, p in strategy.positions.items()}


def _gateway_positions(gateway: GatewayServer) -> dict[str, float]:
    return {p.contract.symbol: p.position for p in gateway.broker.positions() if p.position}


def _manual_buy(gateway: GatewayServer, symbol: str, quantity: int) -> None:
    """Someone trades by hand in TWS (another client id): an order no strategy placed."""
    with connected_ib(gateway, client_id=5) as ib:
        ib.placeOrder(Stock(symbol, "SMART", "USD"), MarketOrder("BUY", quantity))
        assert wait_until(lambda: any(not o.order_ref for o in gateway.broker.open_orders()))


def test_two_strategies_share_the_account_and_each_sees_only_its_own_orders_fills_and_positions(
    make_engine, gateway, tmp_path
):
    trend = Scripted("Trend", {1: [Order("AAPL", 10, "market", "buy")]})
    pairs = Scripted(
        "Pairs",
        {1: [Order("MSFT", 5, "market", "buy")], 2: [Order("AAPL", 3, "market", "buy")]},
    )
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(trend)
    engine.add_strategy(pairs)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=5)
    gateway.clock.step(1)  # bar 1: both strategies order
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
    gateway.clock.step(1)  # they fill; bar 2: Pairs buys AAPL too
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1 and len(trend.fills) == 1)
    _manual_buy(gateway, "AAPL", 7)  # a trade in TWS, no strategy's
    gateway.clock.step(1)
    assert wait_until(lambda: len(pairs.fills) == 2 and trend.bars == 3)

    assert [(f.symbol, f.fill_quantity) for f in trend.fills] == [("AAPL", 10)]
    assert [(f.symbol, f.fill_quantity) for f in pairs.fills] == [("MSFT", 5), ("AAPL", 3)]
    assert _positions(trend) == {"AAPL": 10}
    assert _positions(pairs) == {"MSFT": 5, "AAPL": 3}
    assert _gateway_positions(gateway) == {"AAPL": 20, "MSFT": 5}  # IB sees the netted account
    summary = engine.get_performance_summary()
    assert summary["positions"] == {"AAPL": 20, "MSFT": 5}
    assert summary["strategies"]["Trend"]["positions"] == {"AAPL": 10}
    assert summary["strategies"]["Pairs"]["positions"] == {"MSFT": 5, "AAPL": 3}
    assert summary["strategies"]["Trend"]["fills"] == 1
    assert summary["strategies"]["Pairs"]["fills"] == 2
    assert summary["strategies"]["Pairs"]["commissions"] > 0
    assert summary["total_fills"] == 3  # the manual trade is no strategy's and never reached on_fill
    # each reads its own sleeve, as in a backtest: an equal share of the account, plus its own P&L
    trend_row, pairs_row = summary["strategies"]["Trend"], summary["strategies"]["Pairs"]
    assert trend_row["capital"] == pairs_row["capital"] > 0
    assert trend.equity == pytest.approx(trend_row["capital"] + trend_row["pnl"])
    (fill,) = trend.fills
    assert trend.cash == pytest.approx(trend_row["capital"] - 10 * fill.fill_price - fill.commission)
    engine.stop()
    with TradeJournal(tmp_path / "journal" / "DU1234567.sqlite", read_only=True) as journal:
        assert sorted((o.strategy, o.symbol, o.quantity) for o in journal.orders()) == [
            ("Pairs", "AAPL", 3),
            ("Pairs", "MSFT", 5),
            ("Trend", "AAPL", 10),
        ]


def test_fills_while_the_engine_is_down_go_to_the_strategy_that_placed_the_order_and_manual_trades_to_none(
    make_engine, gateway, feed
):
    bars = feed.get_historical_data("AAPL", "2024-03-01", "2024-03-06")
    limit = round((bars["Low"].iloc[2] + min(bars["Close"].iloc[0], bars["Low"].iloc[1])) / 2, 2)
    resting = Order("AAPL", 7, "limit", "buy", limit_price=limit, time_in_force="gtc")
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(Scripted("Trend", {1: [resting]}))
    engine.add_strategy(Scripted("Pairs", {1: [Order("MSFT", 5, "market", "buy")]}))
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)  # MSFT filled, the limit rests
    engine.disconnect()  # Ctrl-C: the GTC limit stays at IB
    gateway.clock.step(1)  # it fills while no engine runs
    assert wait_until(lambda: not [o for o in gateway.broker.open_orders() if o.order_ref])
    _manual_buy(gateway, "MSFT", 2)
    gateway.clock.step(1)
    assert wait_until(lambda: _gateway_positions(gateway) == {"AAPL": 7, "MSFT": 7})

    trend, pairs = Scripted("Trend"), Scripted("Pairs")
    restarted = make_engine()
    restarted.add_strategy(pairs)  # another order of adding: attribution is by name, not by place
    restarted.add_strategy(trend)
    assert restarted.connect(timeout=5)
    assert restarted.start(["AAPL", "MSFT"], lookback_days=5)
    assert wait_until(lambda: len(trend.fills) == 1)
    assert [(f.symbol, f.fill_quantity) for f in trend.fills] == [("AAPL", 7)]
    assert pairs.fills == []  # its MSFT fill was delivered in the first run; the manual trade is no one's
    gateway.clock.step(1)
    assert wait_until(lambda: trend.bars == 1)
    assert _positions(trend) == {"AAPL": 7}
    assert _positions(pairs) == {"MSFT": 5}  # not the 2 bought by hand
    (holdings,) = [e["detail"] for e in restarted.events if e["kind"] == "holdings"]
    assert "AAPL 7 (Trend 7)" in holdings
    assert "MSFT 7 (Pairs 5; 2 no running strategy's: left alone)" in holdings
    notes = restarted.reconciler.last_notes
    assert notes is not None
    assert any("IB filled Trend's order" in line for line in notes.news)
    assert any("a trade made outside the engine: buy 2 MSFT" in line for line in notes.attention)


def test_strategies_must_have_different_names():
    engine = LiveStrategyEngine(port=7497)  # never connected
    engine.add_strategy(Scripted("Trend"))
    with pytest.raises(StrategyError, match="already added"):
        engine.add_strategy(Scripted("Trend"))
    engine.add_strategy(Scripted("Trend2"))
    assert [s.name for s in engine.strategy_slots] == ["Trend", "Trend2"]
    assert engine.strategy is not None
    assert engine.strategy.name == "Trend"


def test_the_orders_of_one_bar_are_journaled_in_one_write_before_any_is_sent(make_engine, gateway):
    """Three strategies order on the same bar: one synced append to the intent log (one disk sync) holds
    all three intents, and it is on the disk before the first order reaches IB."""
    strategies = [Scripted(f"S{k}", {1: [Order("AAPL", 1 + k, "market", "buy")]}) for k in range(3)]
    engine = make_engine(fill_timeout=0.0)
    for strategy in strategies:
        engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    assert engine.journal is not None
    intent_log = engine.journal._store.intent_log
    assert intent_log is not None
    steps: list[tuple[str, int]] = []  # in order, from every thread
    append, original = intent_log.append, gateway.broker.place_order

    def logged(rows: Any) -> None:
        append(rows)
        steps.append(("intents on the disk", len(rows)))

    def place_order(*args: Any, **kwargs: Any) -> Any:  # the gateway's side of placeOrder
        steps.append(("sent", 1))
        return original(*args, **kwargs)

    intent_log.append = logged  # type: ignore[method-assign]
    gateway.broker.place_order = place_order  # type: ignore[method-assign]
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 3)

    assert steps == [("intents on the disk", 3), ("sent", 1), ("sent", 1), ("sent", 1)]
    assert [o.quantity for o in gateway.broker.open_orders()] == [1, 2, 3]  # in the order added
    assert [(o.strategy, o.quantity) for o in engine.journal.orders()] == [("S0", 1), ("S1", 2), ("S2", 3)]


def test_a_risk_limit_counts_the_earlier_orders_of_the_same_bar(make_engine, gateway):
    """Routed together, the second strategy's order is checked with the first's as working (not sent yet)."""
    first = Scripted("First", {1: [Order("AAPL", 10, "market", "buy")]})
    second = Scripted("Second", {1: [Order("AAPL", 10, "market", "buy")]})
    engine = make_engine(fill_timeout=0.0, risk_limits=RiskLimits(max_position_per_symbol=15))
    engine.add_strategy(first)
    engine.add_strategy(second)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: second.bars == 1 and engine.total_errors >= 1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    (refused,) = engine.strategy_slots[1].orders
    assert refused.status is OrderStatus.REJECTED
    assert "max_position_per_symbol" in (refused.reject_reason or "")
    assert [o.quantity for o in gateway.broker.open_orders()] == [10]


class SameOrderTwice(Strategy):
    """Returns one Order object twice on its first bar (a bug in a strategy): it must reach IB once."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "Twice"
        self.order = Order("AAPL", 4, "market", "buy")
        self.bars = 0

    def on_data(self, timestamp, data):
        self.bars += 1
        return [self.order, self.order] if self.bars == 1 else None


def test_an_order_object_returned_twice_in_one_bar_is_sent_once_and_the_others_still_go(make_engine, gateway):
    twice = SameOrderTwice()
    other = Scripted("Other", {1: [Order("AAPL", 2, "market", "buy")]})
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(twice)
    engine.add_strategy(other)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: other.bars == 1 and engine.total_errors >= 1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
    assert sorted(o.quantity for o in gateway.broker.open_orders()) == [2, 4]
    assert any("already sent" in e["error"] for e in engine.errors)


class AddsAColumn(Scripted):
    def on_data(self, timestamp, data):
        data["signal"] = 1.0  # a strategy's own column, on its own window
        return super().on_data(timestamp, data)


class SeesColumns(Scripted):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.columns: list[list[str]] = []

    def on_data(self, timestamp, data):
        self.columns.append([str(c) for c in data.columns])
        return super().on_data(timestamp, data)


def test_a_column_one_strategy_adds_to_its_window_is_not_in_the_next_ones_live_or_backtest(
    make_engine, gateway, feed
):
    """As in a backtest (where each strategy's data is its own slice), not the same object for all."""
    from copilot_quant.backtest.engine import BacktestEngine

    live_first, live_second = AddsAColumn("First"), SeesColumns("Second")
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(live_first)
    engine.add_strategy(live_second)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    for n in range(1, 3):
        gateway.clock.step(1)
        assert wait_until(lambda n=n: live_second.bars >= n)
    backtest = BacktestEngine(initial_capital=100_000, data_provider=feed)
    backtest.add_strategy(AddsAColumn("First"))
    backtest.add_strategy(second := SeesColumns("Second"))
    backtest.run("2024-02-01", "2024-02-10", ["AAPL"])
    expected = ["Open", "High", "Low", "Close", "Volume"]
    assert second.columns
    assert all(columns == expected for columns in second.columns)
    assert all(columns == expected for columns in live_second.columns)
