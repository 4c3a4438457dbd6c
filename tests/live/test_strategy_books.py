"""A strategy means the same live as in its backtest: its own symbols, its own positions, and a clean way out."""

from __future__ import annotations

import logging

import pytest
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.journal import OrderState, TradeJournal
from ib_async import MarketOrder, Stock

from .conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class Scripted(Strategy):
    """Returns the orders scripted for its n-th bar (1-based); records fills and the positions it saw."""

    def __init__(self, script: dict[int, list[Order]] | None = None, name: str | None = None) -> None:
        super().__init__()
        if name is not None:
            self.name = name
        self.script = script or {}
        self.bars = 0
        self.fills: list[Fill] = []
        self.seen: list[dict[str, float]] = []

    def on_data(self, timestamp, data):
        # seen before bars: a test waiting for ``bars`` then reads a complete ``seen``
        self.seen.append({s: p.quantity for s, p in self.positions.items()})
        self.bars += 1
        orders = self.script.get(self.bars)
        return [o.copy() for o in orders] if orders else None

    def on_fill(self, fill):
        self.fills.append(fill)


def _journal_orders(engine_journal_dir) -> list:
    with TradeJournal(engine_journal_dir / "DU1234567.sqlite", read_only=True) as journal:
        return journal.orders()


def test_an_order_for_a_symbol_the_run_does_not_subscribe_is_refused_as_in_a_backtest(
    make_engine, gateway, tmp_path, caplog
):
    order = Order("AAPL", 10, "market", "buy")
    strategy = Scripted({1: [order]})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["MSFT"], lookback_days=5)  # run on MSFT, trades AAPL: a mistake, said loudly
    with caplog.at_level(logging.WARNING):
        gateway.clock.step(1)
        # the error is counted and logged on the engine's thread: wait for both, not just the count
        assert wait_until(
            lambda: (
                strategy.bars == 1
                and engine.total_errors == 1
                and any("no price data for AAPL" in r.getMessage() for r in caplog.records)
            )
        )
    (sent,) = engine.strategy_slots[0].orders
    assert sent.status is OrderStatus.REJECTED
    assert "no price data for AAPL in this live run (symbols: MSFT)" in sent.reject_reason
    assert not gateway.broker.open_orders()
    assert not gateway.broker.completed_orders()  # never sent
    assert engine.errors[0]["type"] == "order"
    assert any(
        "no price data for AAPL" in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records
    )
    engine.stop()
    (journaled,) = _journal_orders(tmp_path / "journal")
    assert journaled.state is OrderState.REJECTED
    assert "no price data for AAPL" in journaled.reason


def test_positions_at_start_belong_to_no_strategy_unless_the_journal_says_it_left_them(
    make_engine, gateway, caplog
):
    first = Scripted({1: [Order("AAPL", 10, "market", "buy")]}, name="RsiRevert")
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(first)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    with Stepper(gateway, interval=0.1):
        assert wait_until(lambda: len(first.fills) == 1)
    engine.disconnect()  # Ctrl-C leaves the 10 shares at IB

    other = Scripted(name="Breakout2")
    engine = make_engine()
    engine.add_strategy(other)
    assert engine.connect(timeout=5)
    with caplog.at_level(logging.INFO, logger="copilot_quant.live"):
        assert engine.start(["AAPL", "MSFT"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: other.bars == 1)
    assert other.seen == [{}]  # before: the account's 10 AAPL, which it then sold as its own
    assert dict(other.positions) == {}
    holdings = [e["detail"] for e in engine.events if e["kind"] == "holdings"]
    assert holdings == ["the account holds AAPL 10 (no running strategy's: left alone)"]
    assert any("the account holds AAPL 10" in r.getMessage() for r in caplog.records)
    engine.disconnect()

    again = Scripted(name="RsiRevert")  # the same strategy carries on: the journal says it left them
    engine = make_engine()
    engine.add_strategy(again)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: again.bars == 1)
    assert again.seen == [{"AAPL": 10.0}]
    assert [e["detail"] for e in engine.events if e["kind"] == "holdings"] == [
        "the account holds AAPL 10 (RsiRevert 10)"
    ]


def test_flatten_on_stop_closes_the_strategys_own_positions_and_cancels_its_orders_only(make_engine, gateway):
    with connected_ib(gateway, client_id=5) as ib:  # someone else's position in the same account
        ib.placeOrder(Stock("MSFT", "SMART", "USD"), MarketOrder("BUY", 5))
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
        gateway.clock.step(1)
        assert wait_until(lambda: [p.position for p in gateway.broker.positions()] == [5])
    strategy = Scripted(
        {
            1: [
                Order("AAPL", 10, "market", "buy"),
                Order("AAPL", 3, "limit", "buy", limit_price=1.0, time_in_force="gtc"),
            ]
        }
    )
    engine = make_engine(fill_timeout=0.0, flatten_on_stop=True)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    with Stepper(gateway, interval=0.1):
        assert wait_until(lambda: len(strategy.fills) == 1)
        engine.stop()  # the market moves on while the closing order is out
    held = {p.contract.symbol: p.position for p in gateway.broker.positions() if p.position}
    assert held == {"MSFT": 5}  # its own AAPL closed, the other position left alone
    assert not [o for o in gateway.broker.open_orders() if o.order_ref]  # its resting GTC limit cancelled
    assert [f.side for f in strategy.fills] == ["buy", "sell"]  # the closing fill reached on_fill
    assert dict(strategy.positions) == {}
    stop = [e for e in engine.events if e["kind"] == "stop"][-1]
    assert "still working" not in stop["detail"]
