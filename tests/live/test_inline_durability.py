"""What is durable when, with inline dispatch (copilot_quant.live.inline, copilot_quant.brokers.fill_gate):
an order's intent is on the disk (synced to the journal's intent log) before ``placeOrder``; a fill reaches ``on_fill`` at
once and is journaled just after, and one whose commit a crash prevented comes back from IB's executions
at the restart. Against the simulated gateway, with a real ib_async client and a real SQLite journal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.journal import intent_log, storage
from copilot_quant.journal.intent_log import intent_log_path
from copilot_quant.journal.journal import TradeJournal

from .conftest import Scripted, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


def _start(make_engine, strategy: Scripted):
    engine = make_engine(fill_timeout=0.0)
    engine.broker.ack_timeout = 0.0
    engine.add_strategy(strategy)
    assert engine.connect(timeout=10, retry_count=1)
    assert engine.start(["AAPL"], lookback_days=5)
    return engine


def _step(gateway, strategy: Scripted, orders_at_gateway: int) -> None:
    seen = strategy.bars
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars > seen), "the bar reached on_data"
    assert wait_until(lambda: _orders_at(gateway) >= orders_at_gateway), "the order reached the gateway"


def _orders_at(gateway) -> int:
    return gateway.call(lambda: len(gateway.broker.open_orders()) + len(gateway.broker.completed_orders()))


def _durable_intent(journal_path: Path, order_ref: str) -> str | None:
    """The order id of ``order_ref``'s intent as a process opening the journal now would recover it (from
    SQLite, or from the intent log's lines), None if it would not."""
    with sqlite3.connect(journal_path) as other:
        row = other.execute("SELECT order_id FROM orders WHERE order_ref = ?", (order_ref,)).fetchone()
    if row is not None:
        return str(row[0])
    for line in intent_log_path(journal_path).read_bytes().split(b"\n"):
        if (
            line.startswith(b"[") and json.loads(line)[0] == order_ref
        ):  # an intent (the first line names the journal)
            return str(json.loads(line)[3])
    return None


def test_the_intent_is_on_the_disk_before_place_order_and_each_fill_is_journaled_once(
    make_engine, gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = {n: [Order("AAPL", 1, "market", "buy" if n % 2 else "sell")] for n in range(1, 6)}
    strategy = Scripted(script)
    engine = _start(make_engine, strategy)
    journal = engine.journal
    assert journal is not None
    events: list[tuple[str, Any]] = []  # in order, from every thread
    real_sync, real_log_sync, real_intents = (
        storage._datasync,
        intent_log._datasync,
        TradeJournal.record_intents,
    )

    def datasync(fd: int) -> None:
        real_sync(fd)
        events.append(("synced", None))

    def log_sync(fd: int) -> None:
        real_log_sync(fd)
        events.append(("synced", None))

    def record_intents(self: TradeJournal, items: Sequence[tuple[Order, str | None]]) -> list[str]:
        events.extend(("intent", order.order_id) for order, _ in items)
        return real_intents(self, items)

    ib = engine.connection.ib
    real_place = ib.placeOrder
    committed: dict[str, str] = {}  # order_ref -> order_id, as another process reads it at placeOrder

    def place_order(contract: Any, ib_order: Any) -> Any:
        order_id = _durable_intent(journal.path, ib_order.orderRef)  # what a restart would recover
        assert order_id is not None, f"{ib_order.orderRef} sent before its intent was written"
        committed[ib_order.orderRef] = order_id
        events.append(("place", order_id))
        return real_place(contract, ib_order)

    monkeypatch.setattr(storage, "_datasync", datasync)
    monkeypatch.setattr(intent_log, "_datasync", log_sync)
    monkeypatch.setattr(TradeJournal, "record_intents", record_intents)
    monkeypatch.setattr(ib, "placeOrder", place_order)
    for n in range(1, 6):
        _step(gateway, strategy, n)
    assert wait_until(lambda: len(strategy.fills) >= 4)

    assert engine.inline.bars >= 4, "the bars ran inline"
    assert len(committed) == 5
    for order_id in committed.values():
        intent = events.index(("intent", order_id))
        place = events.index(("place", order_id))
        assert ("synced", None) in events[intent:place], f"order {order_id} sent before its intent was synced"
    # every fill on_fill was told of is in the journal, once, for its order
    assert engine.broker.flush_journal(5)
    exec_ids = {fill.fill_id for fill in strategy.fills}
    journaled = [f.exec_id for f in journal.fills()]
    assert exec_ids <= set(journaled)
    assert len(journaled) == len(set(journaled))


def test_a_crash_before_a_delivered_fill_is_committed_loses_nothing(make_engine, gateway) -> None:
    """The fill's journal write is lost as a crash would lose it (after on_fill, before its commit); the
    restart's reconciliation finds the execution at IB and journals it, once, for its order."""
    first = Scripted({1: [Order("AAPL", 10, "market", "buy")]})
    engine = _start(make_engine, first)
    gate = engine.broker._gate
    lost: list[str] = []
    gate._submit_staged = lambda item: lost.append(item.exec_id)  # the process "dies" before the write
    _step(gateway, first, 1)
    gateway.clock.step(1)  # the order fills at this bar's open: the fill comes with the bar
    assert wait_until(lambda: len(first.fills) == 1), "on_fill was told at once"
    assert first.fills[0].order.status.value == "filled"
    assert wait_until(lambda: lost == [first.fills[0].fill_id]), "its write was staged"
    assert engine.journal is not None
    journal_path = engine.journal.path
    engine.disconnect()
    with TradeJournal(journal_path, read_only=True) as crashed:
        assert crashed.fills() == [], "the crash took the fill's commit"
        [intent] = crashed.orders()

    second = Scripted()
    restarted = make_engine()
    restarted.add_strategy(second)
    assert restarted.connect(timeout=10, retry_count=1)
    assert restarted.start(["AAPL"], lookback_days=5)
    assert restarted.journal is not None
    assert restarted.broker.flush_journal(5)
    assert wait_until(lambda: len(restarted.journal.fills()) == 1)
    [fill] = restarted.journal.fills()
    assert fill.exec_id == lost[0]
    assert fill.order_ref == intent.order_ref
    assert restarted.journal.order(intent.order_ref).filled == pytest.approx(10)
    assert wait_until(lambda: len(second.fills) == 1), "passed to on_fill as a fill made while it was down"
