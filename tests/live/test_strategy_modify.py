"""Strategy.modify() live, against the simulated gateway: real ib_async, real journal.

IB's modify: placeOrder again with the same orderId. The order keeps its id at IB (one order at the gateway,
not two), IB acknowledges the new terms, the journal records the modification as an event of the same
order and keeps the new terms for a restart. A modification IB refuses leaves the order working with its
earlier terms; one of an order that is no longer working is a named outcome that sends nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill, Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.gateway.orders import IbStatus
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.journal import OrderState, TradeJournal
from copilot_quant.model.modify import ModifyOutcome
from copilot_quant.risk import RiskLimits

from .conftest import wait_until
from .test_strategy_cancel import journaled, make_engine

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class PlaceThenModify(Strategy):
    """Places one GTC limit buy on bar 1 at half the close; on bar ``modify_on`` modifies it with
    ``changes(close)``; later bars try again (``again``) to see the named outcomes."""

    def __init__(
        self, changes: Any, modify_on: int = 2, again: dict[str, Any] | None = None, factor: float = 0.5
    ) -> None:
        super().__init__()
        self.changes, self.modify_on, self.again, self.factor = changes, modify_on, again, factor
        self.bars = 0
        self.placed: list[Order] = []
        self.outcomes: list[ModifyOutcome] = []
        self.fills: list[Fill] = []
        self.done = 0

    def on_data(self, timestamp, data):
        try:
            self.bars += 1
            close = float(data["Close"].iloc[-1])
            if self.bars == 1:
                limit = round(close * self.factor, 2)
                self.placed.append(Order("AAPL", 5, "limit", "buy", limit_price=limit, time_in_force="gtc"))
                return list(self.placed)
            if self.bars == self.modify_on:
                self.outcomes.append(self.modify(self.placed[0], **self.changes(close)))
            elif self.bars > self.modify_on and self.again is not None:
                self.outcomes.append(self.modify(self.placed[0], **self.again))
            return None
        finally:
            self.done += 1

    def on_fill(self, fill):
        self.fills.append(fill)


def _history(path: Path, ref: str) -> list[str]:
    with TradeJournal(path, read_only=True) as journal:
        return [h.reason for h in journal.status_history(ref)]


def _working_at_ib(gateway, strategy: PlaceThenModify) -> bool:
    """Bar 1 is over and its order is on IB's book (SUBMITTED here means sent: IB may not have read it yet,
    and the next bar must find it there)."""
    if strategy.done != 1 or strategy.placed[0].status is not OrderStatus.SUBMITTED:
        return False
    return len(gateway.call(gateway.broker.open_orders)) == 1


def _flushed(engine: LiveStrategyEngine, path: Path) -> list[str]:
    """The journaled status history of the engine's one order, after what is queued is written."""
    (record,), _ = journaled(engine, path)
    return _history(path, record.order_ref)


def test_a_limit_moved_to_the_market_fills_as_the_same_order_at_ib(gateway, tmp_path):
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenModify(
        lambda close: {"limit_price": round(close * 1.5, 2)}, again={"limit_price": 1.0}
    )
    engine = make_engine(gateway, path, client_id=75)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: _working_at_ib(gateway, strategy))
        (order,) = strategy.placed
        ib_id = order.broker_order_id
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        assert strategy.outcomes == [ModifyOutcome.SENT]
        # sent is not yet at IB: the next bar must find the new limit on IB's book
        assert wait_until(lambda: gateway.call(gateway.broker.open_orders)[0].lmt_price == order.limit_price)
        (at_gateway,) = gateway.call(gateway.broker.open_orders)  # one order, modified in place
        assert at_gateway.order_id == ib_id
        assert at_gateway.lmt_price == order.limit_price
        gateway.clock.step(1)  # the next price is below the new limit: it fills
        assert wait_until(lambda: len(strategy.fills) == 1)
        assert order.status is OrderStatus.FILLED
        assert order.broker_order_id == ib_id
        assert [o.order_id for o in gateway.call(gateway.broker.completed_orders)] == [ib_id]
        assert wait_until(lambda: strategy.done == 3)
        assert strategy.outcomes == [ModifyOutcome.SENT, ModifyOutcome.ALREADY_FILLED]  # IB's 104, named
        (record,), errors = journaled(engine, path)
        assert record.state is OrderState.FILLED
        assert record.limit_price == order.limit_price  # the journal keeps the terms IB filled it by
        assert any(
            reason.startswith("modify requested (limit_price") for reason in _history(path, record.order_ref)
        )
        assert errors == []
        assert engine.total_errors == 0
    finally:
        engine.disconnect()


def test_a_modification_ib_refuses_leaves_the_order_working_with_its_terms(gateway, tmp_path):
    """The gateway refuses a size the account cannot pay for (201): the order keeps working at IB with its
    earlier terms, and so it does here; the journal keeps the earlier terms and the refusal."""
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenModify(lambda close: {"quantity": 10_000_000}, again={"quantity": 6})
    engine = make_engine(gateway, path, client_id=76)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: _working_at_ib(gateway, strategy))
        (order,) = strategy.placed
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        assert strategy.outcomes == [ModifyOutcome.SENT]
        assert wait_until(lambda: order.quantity == 5)  # refused: its terms come back
        # ... and then the refusal is journaled (its last step, on the client's thread): wait for that too
        assert wait_until(
            lambda: any(r.startswith("modification refused by IB") for r in _flushed(engine, path))
        )
        assert order.status is OrderStatus.SUBMITTED
        assert strategy.open_orders() == [order]
        (at_gateway,) = gateway.call(gateway.broker.open_orders)
        assert at_gateway.quantity == 5
        assert at_gateway.status is not IbStatus.CANCELLED
        engine.broker.flush_journal()
        (record,), errors = journaled(engine, path)
        assert record.quantity == 5
        assert record.state is OrderState.SUBMITTED
        assert [e.code for e in errors] == [201]
        assert any(r.startswith("modification refused by IB") for r in _history(path, record.order_ref))
        assert engine.broker.tracker.record_for(order).ib_order.totalQuantity == 5
        gateway.clock.step(1)  # it still works at IB, so a later modification goes out and is acknowledged
        assert wait_until(lambda: strategy.done == 3)
        assert strategy.outcomes == [ModifyOutcome.SENT, ModifyOutcome.SENT]
        assert wait_until(lambda: gateway.call(gateway.broker.open_orders)[0].quantity == 6)
        assert wait_until(lambda: engine.broker.modification_answered(order))
        assert order.quantity == 6
        assert order.status is OrderStatus.SUBMITTED
    finally:
        engine.disconnect()


def test_risk_limits_are_checked_on_the_new_terms(gateway, tmp_path):
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenModify(lambda close: {"quantity": 500})
    engine = make_engine(gateway, path, client_id=77, risk_limits=RiskLimits(max_order_quantity=100))
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: _working_at_ib(gateway, strategy))
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        assert strategy.outcomes == [ModifyOutcome.NOT_SENT]
        assert strategy.placed[0].quantity == 5
        (at_gateway,) = gateway.call(gateway.broker.open_orders)
        assert at_gateway.quantity == 5
    finally:
        engine.disconnect()


def test_a_restart_adopts_the_order_with_its_modified_terms(gateway, tmp_path):
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenModify(lambda close: {"limit_price": round(close * 0.6, 2), "quantity": 7})
    engine = make_engine(gateway, path, client_id=78)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: _working_at_ib(gateway, strategy))
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        (order,) = strategy.placed
        assert wait_until(lambda: engine.broker.modification_answered(order))  # a new size acknowledged
        assert engine.broker.tracker.record_for(order).modifying is None
        assert order.quantity == 7
        engine.broker.flush_journal()
    finally:
        engine.disconnect()
    again = PlaceThenModify(lambda close: {}, modify_on=99)
    again.bars = 1  # places nothing: it only looks at what it adopted
    engine = make_engine(gateway, path, client_id=78)
    engine.add_strategy(again)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        (adopted,) = again.open_orders()
        assert adopted.order_id == order.order_id
        assert (adopted.quantity, adopted.limit_price) == (7, order.limit_price)
    finally:
        engine.disconnect()


def test_a_restart_takes_the_terms_ib_holds_when_the_journal_missed_a_modification(gateway, tmp_path):
    """The engine died after IB accepted a modification but before its journal recorded it (here: the
    modification is sent by a bare ib_async client with the engine's client id). The next engine adopts the
    order with IB's terms and journals them."""
    path = tmp_path / "journal.sqlite"
    strategy = PlaceThenModify(lambda close: {}, modify_on=99)
    engine = make_engine(gateway, path, client_id=79)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: _working_at_ib(gateway, strategy))
        (order,) = strategy.placed
        engine.broker.flush_journal()
    finally:
        engine.disconnect()
    new_limit = round(order.limit_price * 1.1, 2)
    with connected_ib(gateway, client_id=79) as ib:
        (trade,) = ib.reqOpenOrders()
        trade.order.lmtPrice = new_limit
        trade.order.totalQuantity = 8
        ib.placeOrder(trade.contract, trade.order)
        assert wait_until(lambda: gateway.call(gateway.broker.open_orders)[0].lmt_price == new_limit)
    again = PlaceThenModify(lambda close: {}, modify_on=99)
    again.bars = 1
    engine = make_engine(gateway, path, client_id=79)
    engine.add_strategy(again)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        (adopted,) = again.open_orders()
        assert (adopted.quantity, adopted.limit_price) == (8, new_limit)
        engine.broker.flush_journal()
        (record,), _ = journaled(engine, path)
        assert (record.quantity, record.limit_price) == (8, new_limit)
        assert _history(path, record.order_ref)[-1].startswith("terms as IB holds them (reconciled)")
    finally:
        engine.disconnect()


def test_an_order_held_while_the_market_is_closed_is_modified_in_place_and_sent_so(gateway, tmp_path):
    strategy = PlaceThenModify(lambda close: {"quantity": 9})
    engine = make_engine(gateway, tmp_path / "journal.sqlite", client_id=80, outside_hours="hold")
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)  # daily bars: the broker's clock is then at the close, the market closed
        assert wait_until(lambda: len(engine.strategy_slots[0].held) == 1)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        assert strategy.outcomes == [ModifyOutcome.APPLIED]  # never sent: simply changed
        assert engine.strategy_slots[0].held[0].quantity == 9
        assert gateway.call(gateway.broker.open_orders) == []
    finally:
        engine.disconnect()


class ShrinkAfterPartialFill(PlaceThenModify):
    """On bar 2, with some shares filled: asks for fewer than filled (refused), then for exactly what filled."""

    def on_data(self, timestamp, data):
        if self.bars != 1:
            return super().on_data(timestamp, data)
        try:
            self.bars += 1
            order = self.placed[0]
            self.filled_then = order.filled_quantity
            self.outcomes.append(self.modify(order, quantity=1))
            self.outcomes.append(self.modify(order, quantity=self.filled_then))
            return None
        finally:
            self.done += 1


def test_a_size_below_what_filled_is_refused_and_the_filled_size_completes_the_order(
    gateway_factory, tmp_path
):
    gateway = gateway_factory(partial_fill_size=1)  # one share per price: the order fills over several bars
    strategy = ShrinkAfterPartialFill(lambda close: {}, modify_on=99, factor=1.5)
    engine = make_engine(gateway, tmp_path / "journal.sqlite", client_id=83)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: _working_at_ib(gateway, strategy))
        (order,) = strategy.placed
        gateway.clock.step(1)  # a few shares fill on bar 2's prices; then the strategy shrinks the order
        assert wait_until(lambda: strategy.done == 2)
        assert 1 < strategy.filled_then < 5
        assert strategy.outcomes == [ModifyOutcome.BELOW_FILLED, ModifyOutcome.SENT]
        assert wait_until(lambda: order.status is OrderStatus.FILLED)  # what filled is now the whole order
        assert order.quantity == strategy.filled_then == order.filled_quantity
        (done,) = gateway.call(gateway.broker.completed_orders)
        assert (done.quantity, done.filled) == (strategy.filled_then, strategy.filled_then)
    finally:
        engine.disconnect()


class BracketThenMoveStop(Strategy):
    """A bracket whose entry rests far below the market; on bar 2 its held stop-loss is raised."""

    def __init__(self) -> None:
        super().__init__()
        self.bars = 0
        self.placed: list[Order] = []
        self.outcomes: list[ModifyOutcome] = []
        self.done = 0

    def on_data(self, timestamp, data):
        try:
            self.bars += 1
            close = float(data["Close"].iloc[-1])
            if self.bars == 1:
                self.placed = Order.bracket(
                    "AAPL",
                    5,
                    "buy",
                    limit_price=round(close * 0.5, 2),
                    take_profit=round(close * 2, 2),
                    stop_loss=round(close * 0.4, 2),
                    time_in_force="gtc",
                )
                return list(self.placed)
            if self.bars == 2:
                self.new_stop = round(close * 0.45, 2)
                self.outcomes.append(self.modify(self.placed[2], stop_price=self.new_stop))
            return None
        finally:
            self.done += 1


def test_a_held_bracket_exit_is_modified_at_ib_and_stays_held(gateway, tmp_path):
    strategy = BracketThenMoveStop()
    engine = make_engine(gateway, tmp_path / "journal.sqlite", client_id=84)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 1 and len(gateway.call(gateway.broker.open_orders)) == 3)
        gateway.clock.step(1)
        assert wait_until(lambda: strategy.done == 2)
        assert strategy.outcomes == [ModifyOutcome.SENT]
        stop = strategy.placed[2]
        assert wait_until(lambda: engine.broker.modification_answered(stop))
        assert stop.stop_price == strategy.new_stop
        held = {o.order_id: o for o in gateway.call(gateway.broker.open_orders)}
        at_ib = held[stop.broker_order_id]
        assert at_ib.aux_price == strategy.new_stop
        assert at_ib.status.value == "PreSubmitted"  # still waiting for its entry
        assert len(held) == 3
    finally:
        engine.disconnect()
