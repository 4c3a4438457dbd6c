"""Strategy.cancel()/open_orders() live, against the simulated gateway: real ib_async, real journal.

Live timing contract: cancel() sends the cancel to IB before it returns (from the engine's worker thread,
inside on_data); the order becomes CANCELLED when IB confirms — without waiting for another bar. If IB had
already executed the order, IB refuses the cancel and the order ends FILLED with its fill delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import CANCELLED_BY_STRATEGY, Strategy
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import StrategyError
from copilot_quant.gateway.orders import IbStatus
from copilot_quant.journal import OrderState, TradeJournal

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class PlaceThenCancel(Strategy):
    """Places one GTC limit buy on bar 1 at ``limit_factor`` x the close and cancels it on ``cancel_on``;
    records what open_orders() says on every bar (and right after the cancel)."""

    def __init__(self, limit_factor: float = 0.5, cancel_on: int | None = 3) -> None:
        super().__init__()
        self.limit_factor = limit_factor
        self.cancel_on = cancel_on
        self.bars = 0
        self.placed: list[Order] = []
        self.seen: list[tuple[int, list[str]]] = []
        self.refused: list[str] = []
        self.fills: list[Fill] = []
        self.stamps: list[datetime] = []
        self.done = 0

    def on_data(self, timestamp, data):
        try:
            return self._decide(timestamp, data)
        finally:
            self.done += 1  # tests wait on this: the bar's on_data (and its cancel) is over

    def _decide(self, timestamp, data):
        self.bars += 1
        self.stamps.append(timestamp)
        self.seen.append((self.bars, [str(o.order_id) for o in self.open_orders()]))
        if self.bars == 1:
            close = float(data["Close"].iloc[-1])
            limit = round(close * self.limit_factor, 2)
            self.placed.append(Order("AAPL", 5, "limit", "buy", limit_price=limit, time_in_force="gtc"))
            return list(self.placed)
        if self.bars == self.cancel_on:
            try:
                self.cancel("no-such-order")
            except StrategyError as exc:
                self.refused.append(str(exc))
            for order in self.open_orders():
                self.cancel(order)
            self.seen.append((self.bars, [str(o.order_id) for o in self.open_orders()]))
        return None

    def on_fill(self, fill):
        self.fills.append(fill)


def make_engine(gateway, journal: Path, client_id: int, **kwargs) -> LiveStrategyEngine:
    engine = LiveStrategyEngine(
        paper_trading=True,
        port=gateway.port,
        client_id=client_id,
        update_interval=3600,
        journal=journal,
        **kwargs,
    )
    engine.broker.ack_timeout = 0.2  # resting limit orders: do not hold the worker for the default 2 s
    return engine


def journaled(engine: LiveStrategyEngine, path: Path):
    engine.broker.flush_journal()
    with TradeJournal(path, read_only=True) as journal:
        return journal.orders(), journal.errors()


def test_a_resting_limit_order_is_cancelled_by_the_strategy_on_a_later_bar(gateway, tmp_path):
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenCancel(limit_factor=0.5, cancel_on=3)
    engine = make_engine(gateway, path, client_id=70)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 1)
        (order,) = strategy.placed
        assert wait_until(lambda: len(gateway.call(gateway.broker.open_orders)) == 1)
        assert wait_until(lambda: order.status is OrderStatus.SUBMITTED)
        assert order.timestamp == strategy.stamps[0]  # stamped with its bar, as in a backtest
        gateway.clock.step(1)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 3)
        # sent from on_data of bar 3: IB confirms it without another bar
        assert wait_until(lambda: order.status is OrderStatus.CANCELLED)
        assert gateway.call(gateway.broker.open_orders) == []
        (at_gateway,) = gateway.call(gateway.broker.completed_orders)
        assert at_gateway.status is IbStatus.CANCELLED
        assert at_gateway.order_id == order.broker_order_id
        assert order.reject_reason == CANCELLED_BY_STRATEGY
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 4)
        oid = str(order.order_id)
        assert strategy.seen == [(1, []), (2, [oid]), (3, [oid]), (3, []), (4, [])]
        assert strategy.open_orders() == []
        assert len(strategy.refused) == 1
        assert "unknown order" in strategy.refused[0]
        assert strategy.fills == []
        assert engine.total_errors == 0
        (record,), _ = journaled(engine, path)
        assert record.state is OrderState.CANCELLED
        assert record.reason == CANCELLED_BY_STRATEGY
        assert record.broker_order_id == order.broker_order_id
    finally:
        engine.disconnect()


def test_a_cancel_that_comes_after_ib_filled_the_order_leaves_it_filled(gateway, tmp_path):
    """IB executed the order before the cancel reached it (its executions are still on their way): IB refuses
    the cancel, the fill is delivered as usual and the order is FILLED — neither CANCELLED nor REJECTED."""
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenCancel(limit_factor=1.5, cancel_on=2)  # marketable: fills as soon as it can
    engine = make_engine(gateway, path, client_id=71)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.withhold_executions(True)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 1 and strategy.placed[0].status is OrderStatus.SUBMITTED)
        (order,) = strategy.placed
        # SUBMITTED means sent, not yet at IB: bar 2 must find it on IB's book, or it trades past it
        assert wait_until(lambda: len(gateway.call(gateway.broker.open_orders)) == 1)
        gateway.clock.step(1)  # bar 2 trades through the limit: IB fills it, the report is withheld
        assert wait_until(lambda: strategy.done == 2)
        (at_gateway,) = gateway.call(gateway.broker.completed_orders)
        assert at_gateway.status is IbStatus.FILLED
        assert strategy.seen[1] == (2, [str(order.order_id)])  # the engine did not know yet: it cancelled
        assert wait_until(lambda: any(e.code == 10148 for e in journaled(engine, path)[1]))
        assert order.status is OrderStatus.SUBMITTED  # the refused cancel did not end the order
        gateway.withhold_executions(False)
        assert wait_until(lambda: len(strategy.fills) == 1)
        assert order.status is OrderStatus.FILLED
        assert order.filled_quantity == 5
        assert order.reject_reason == ""
        assert engine.total_errors == 0
        (record,), errors = journaled(engine, path)
        assert record.state is OrderState.FILLED
        assert [e.code for e in errors] == [10148]
    finally:
        engine.disconnect()


def test_an_order_held_while_the_market_is_closed_is_cancelled_without_reaching_ib(gateway, tmp_path):
    strategy = PlaceThenCancel(limit_factor=0.5, cancel_on=2)
    engine = make_engine(gateway, tmp_path / "journal.sqlite", client_id=72, outside_hours="hold")
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)  # daily bars: the broker's clock is then at the close, the market closed
        assert wait_until(lambda: len(engine.strategy_slots[0].held) == 1)
        (order,) = strategy.placed
        assert engine.strategy_slots[0].held == [order]
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        oid = str(order.order_id)
        assert strategy.seen == [(1, []), (2, [oid]), (2, [])]
        assert engine.strategy_slots[0].held == []
        assert order.status is OrderStatus.CANCELLED
        assert order.reject_reason == CANCELLED_BY_STRATEGY
        assert gateway.call(gateway.broker.open_orders) == []
        assert gateway.call(gateway.broker.completed_orders) == []
    finally:
        engine.disconnect()


def test_cancel_order_cancels_the_order_given_even_when_an_adopted_one_shares_its_id(gateway):
    """After a restart both processes count order ids from O1: an adopted order and a new one can share
    an id. cancel_order(order) must cancel that very order, not its namesake (the kill switch relies on it)."""
    now = datetime(2024, 3, 1, tzinfo=UTC)
    first = LiveBrokerAdapter(port=gateway.port, client_id=73, ack_timeout=0.2)
    old = Order("AAPL", 1, "limit", "buy", limit_price=1.0, time_in_force="gtc", order_id="O1")
    try:
        assert first.connect(timeout=5)
        first.execute_order(old, 100.0, now)
        assert old.status is OrderStatus.SUBMITTED
    finally:
        first.disconnect()  # the order keeps working at IB
    second = LiveBrokerAdapter(port=gateway.port, client_id=73, ack_timeout=0.2)
    try:
        assert second.connect(timeout=5)
        assert old.broker_order_id is not None

        # as the engine's reconciliation does before adopting: learn IB's open orders
        async def open_orders() -> object:
            return await second.connection.ib.reqAllOpenOrdersAsync()

        second.connection.run(open_orders(), timeout=10)
        adopted = second.adopt(
            old.copy(order_id="O1", status=OrderStatus.SUBMITTED), "", old.broker_order_id
        ).order
        new = Order("AAPL", 1, "limit", "buy", limit_price=2.0, time_in_force="gtc", order_id="O1")
        second.execute_order(new, 100.0, now)
        assert new.status is OrderStatus.SUBMITTED
        assert second.get_open_orders() == [adopted, new]  # both tracked, whatever their ids
        assert second.cancel_order(adopted, reason="test")
        assert wait_until(lambda: adopted.status is OrderStatus.CANCELLED)
        assert adopted.reject_reason == "test"
        assert [r.order_id for r in gateway.call(gateway.broker.open_orders)] == [new.broker_order_id]
        assert new.status is OrderStatus.SUBMITTED
    finally:
        second.disconnect()


def test_a_cancel_that_could_not_be_sent_is_retried(gateway, tmp_path, monkeypatch):
    """The connection failed just as the strategy cancelled: the engine sends the cancel again as soon as
    its worker runs connected, without waiting for another bar."""
    strategy = PlaceThenCancel(limit_factor=0.5, cancel_on=2)
    engine = make_engine(gateway, tmp_path / "journal.sqlite", client_id=74)
    engine.add_strategy(strategy)
    send = engine.broker.cancel_order
    attempts: list[str] = []

    def flaky(order, **kwargs):
        attempts.append(str(order.order_id))
        return False if len(attempts) == 1 else send(order, **kwargs)

    monkeypatch.setattr(engine.broker, "cancel_order", flaky)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.placed and strategy.placed[0].status is OrderStatus.SUBMITTED)
        (order,) = strategy.placed
        gateway.clock.step(1)
        assert wait_until(lambda: len(attempts) == 1)
        assert strategy.open_orders() == []  # requested: no longer the strategy's working order
        assert wait_until(lambda: strategy.done == 2)
        engine._wake.set()  # the worker's next round (a fill, a tick, the timer) retries it
        assert wait_until(lambda: order.status is OrderStatus.CANCELLED)
        assert attempts == [str(order.order_id)] * 2
        assert order.reject_reason == CANCELLED_BY_STRATEGY
        assert gateway.call(gateway.broker.open_orders) == []
    finally:
        engine.disconnect()


class SharedIds(Strategy):
    """Two resting limit buys under one explicit order_id: cancel(first) on bar 2, cancel("entry") on bar 3."""

    def __init__(self) -> None:
        super().__init__()
        self.bars = 0
        self.placed: list[Order] = []
        self.listed: list[list[Order]] = []

    def on_data(self, timestamp, data):
        self.bars += 1
        self.listed.append(self.open_orders())
        if self.bars == 1:
            close = float(data["Close"].iloc[-1])
            for factor in (0.5, 0.6):
                limit = round(close * factor, 2)
                self.placed.append(
                    Order("AAPL", 5, "limit", "buy", limit_price=limit, time_in_force="gtc", order_id="entry")
                )
            return list(self.placed)
        if self.bars == 2:
            self.cancel(self.placed[0])  # this object, not "the order called entry"
        if self.bars == 3:
            self.cancel("entry")  # the id names the latest order that has it
        return None


def test_orders_sharing_an_explicit_id_are_each_listed_and_cancelled_by_object_or_latest_id(
    gateway, tmp_path
):
    strategy = SharedIds()
    engine = make_engine(gateway, tmp_path / "journal.sqlite", client_id=74)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: len(gateway.call(gateway.broker.open_orders)) == 2)
        first, second = strategy.placed
        assert wait_until(lambda: first.status is second.status is OrderStatus.SUBMITTED)
        gateway.clock.step(1)
        assert wait_until(lambda: first.status is OrderStatus.CANCELLED)
        assert second.status is OrderStatus.SUBMITTED
        assert [o is p for o, p in zip(strategy.listed[1], strategy.placed, strict=True)] == [True, True]
        gateway.clock.step(1)
        assert wait_until(lambda: second.status is OrderStatus.CANCELLED)
        assert strategy.listed[2] == [second]
        assert gateway.call(gateway.broker.open_orders) == []
        assert engine.total_errors == 0
    finally:
        engine.disconnect()
