"""What IB reports while the engine stops reaches the journal before it closes, or is said to be left for the
next start's reconciliation — never a "journal is closed" failure (which engaged the kill switch and
cancelled the orders the stop meant to leave at IB)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.journal import TradeJournal

from .conftest import Scripted, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


def _started(make_engine, gateway, strategy: Scripted):
    engine = make_engine(fill_timeout=0.0)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)  # the strategy's market order goes out; the paused market does not fill it yet
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    return engine


def _journal_errors(engine) -> list[str]:
    return [e["error"] for e in engine.errors if e["type"] == "journal"]


def test_a_fill_that_arrives_while_the_engine_stops_is_journaled_before_the_journal_closes(
    make_engine, gateway, tmp_path: Path
):
    engine = _started(make_engine, gateway, Scripted({1: [Order("AAPL", 10, "market", "buy")]}))
    journal = engine.journal
    assert journal is not None
    path = journal.path
    # A slow disk: the journal writer is busy (with another file) while the stop goes on, so the fill's write
    # is still queued when the stop reaches the journal's close. Before the fix that write then ran on the
    # closed journal: a JournalError, the kill switch engaged, and the fill missing from the journal.
    scratch = TradeJournal(tmp_path / "scratch.sqlite", account="DU1234567")

    def slow_disk(_journal: TradeJournal) -> None:
        wait_until(lambda: journal.closed, timeout=3)

    def on_event(kind: str, detail: str) -> None:
        if kind != "stop":
            return
        engine.broker._writer.submit(scratch, slow_disk)  # the adapter's journal writer (no public handle)
        gateway.clock.step(1)  # the working order fills just as the engine stops
        assert wait_until(lambda: engine.broker.fills_passed == 1)  # IB's report is in: its write queued

    engine.register_event_callback(on_event)
    engine.stop()
    scratch.close()
    assert journal.closed
    assert _journal_errors(engine) == []
    assert not engine.kill_switch.is_engaged
    assert len(gateway.broker.executions()) == 1
    with TradeJournal(path, read_only=True) as opened:
        fills = opened.fills()
        assert [(f.symbol, f.quantity) for f in fills] == [("AAPL", 10)]
        (order,) = opened.orders()
        assert order.state == "filled"  # IB's status report during the stop is journaled too
        assert order.filled == 10
        assert opened.events(kind="stop")  # the stop is journaled, after what came in during it


def test_a_fill_after_the_journal_closed_is_logged_and_left_to_the_next_starts_reconciliation(
    make_engine, gateway, caplog
):
    strategy = Scripted({1: [Order("AAPL", 10, "market", "buy")]})
    engine = _started(make_engine, gateway, strategy)
    engine.stop()  # the order stays working at IB; the journal this engine opened is closed
    assert engine.journal is None
    with caplog.at_level(logging.INFO, logger="copilot_quant.live"):
        gateway.clock.step(1)  # it fills while the engine is stopped but still connected
        assert wait_until(lambda: engine.broker.fills_passed == 1)
        assert wait_until(lambda: any("journal closed" in r.getMessage() for r in caplog.records))
    said = [r for r in caplog.records if "journal closed" in r.getMessage()]
    assert said[0].levelno == logging.WARNING
    assert "next start's reconciliation" in said[0].getMessage()
    assert _journal_errors(engine) == []
    assert not engine.kill_switch.is_engaged
    # the next start (the same engine) records it from IB's executions and passes it to on_fill once
    assert engine.start(["AAPL"], lookback_days=5)
    assert wait_until(lambda: len(strategy.fills) == 1)
    assert engine.get_performance_summary()["strategies"]["Scripted"]["positions"] == {"AAPL": 10}
    assert engine.blocked_symbols == {}  # the books agree with IB
    path = engine.journal.path
    engine.stop()
    assert len(strategy.fills) == 1
    with TradeJournal(path, read_only=True) as opened:
        assert [(f.symbol, f.quantity) for f in opened.fills()] == [("AAPL", 10)]
