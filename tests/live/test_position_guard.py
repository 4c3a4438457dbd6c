"""The position guard and the position watch on their own: what the guard refuses and says when a block
begins and ends; when the watch asks for a reconciliation."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.reconciliation import BrokerState
from copilot_quant.errors import ConfigError
from copilot_quant.journal.positions import PositionGap
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.events import EngineEvents, ErrorLog, EventLog
from copilot_quant.live.position_guard import PositionGuard
from copilot_quant.live.position_watch import PositionWatch
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.fills import Position


def _guard() -> tuple[PositionGuard, EventLog, ErrorLog]:
    on = EngineEvents()
    errors = ErrorLog(on, 100, None)
    events = EventLog(on, lambda: None, lambda exc: None)
    return PositionGuard(events=events, errors=errors), events, errors


CLOSED_BY_HAND = PositionGap("AAPL", 0.0, (("fast", 100.0),), 0.0, -100.0)
BOUGHT_BESIDE = PositionGap("MSFT", 30.0, (("slow", 10.0),), 0.0, 20.0)


def test_an_unexplained_gap_blocks_its_symbol_and_its_holders_orders_only() -> None:
    guard, events, errors = _guard()
    assert guard.update([CLOSED_BY_HAND, BOUGHT_BESIDE]) == {"AAPL"}
    assert list(guard.blocked) == ["AAPL"]  # MSFT: explained by today's trade beside the books
    assert "trading in AAPL halted" in (guard.refusal("other", "AAPL") or "")
    assert "fast's book holds AAPL" in (guard.refusal("fast", "MSFT") or "")
    assert guard.refusal("other", "MSFT") is None
    assert guard.refusal(None, "MSFT") is None
    assert [e["type"] for e in errors.entries] == ["position"]
    assert [e["kind"] for e in events.entries] == ["halt"]
    assert guard.summary()[0]["books"] == {"fast": 100.0}


def test_a_block_is_said_once_and_its_end_resumes_the_symbol() -> None:
    guard, events, errors = _guard()
    guard.update([CLOSED_BY_HAND])
    assert guard.update([CLOSED_BY_HAND]) == set()  # the same gap again: nothing new to say
    assert len(errors.entries) == 1
    guard.update([])
    assert guard.blocked == {}
    assert guard.refusal("fast", "AAPL") is None
    assert [e["kind"] for e in events.entries] == ["halt", "resume"]
    assert "trading in AAPL resumes" in events.entries[-1]["detail"]


def test_the_adopt_option_and_method_refuse_what_they_cannot_honour() -> None:
    with pytest.raises(ConfigError, match="adopt_broker_positions must be True or False"):
        LiveStrategyEngine(port=7497, adopt_broker_positions="fast")  # type: ignore[arg-type]
    engine = LiveStrategyEngine(port=7497)  # never connected

    class Fast(Strategy):
        def on_data(self, timestamp, data):
            return None

    strategy = Fast()
    strategy.name = "fast"
    engine.add_strategy(strategy)
    with pytest.raises(ConfigError, match=r"strategy='slow'\): no such strategy; it has 'fast'"):
        engine.adopt_broker_positions(strategy="slow")


class _Reconciler:
    """Stands in for the reconciler: its last state, and how often a re-check was asked for."""

    reconciled = True

    def __init__(self) -> None:
        self.last_state = BrokerState((), (), {})
        self.asked = 0

    def recheck_soon(self) -> None:
        self.asked += 1


class _Slot:
    def __init__(self) -> None:
        self.book = StrategyBook(0.0, "fast")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _watch(
    positions: dict[str, float], clock: _Clock
) -> tuple[PositionWatch, _Reconciler, _Slot, AccountState]:
    reconciler, slot, account = _Reconciler(), _Slot(), AccountState()
    account.positions = {s: Position(s, q) for s, q in positions.items()}
    watch = PositionWatch(reconciler=reconciler, slots=lambda: [slot], account=account, clock=clock)  # type: ignore[arg-type]
    return watch, reconciler, slot, account


def test_the_position_watch_asks_for_a_reconciliation_only_for_a_move_the_books_do_not_make() -> None:
    clock = _Clock()
    watch, reconciler, slot, account = _watch({"AAPL": 10}, clock)
    slot.book.apply("AAPL", 10, 100.0)
    watch.check()  # the baseline, right after a reconciliation
    slot.book.apply("AAPL", 5, 100.0)  # the strategy's own fill ...
    watch.check()
    clock.now += 3  # ... before IB's position shows it: a difference for a moment
    account.positions = {"AAPL": Position("AAPL", 15)}
    watch.check()
    clock.now += 60
    watch.check()
    assert reconciler.asked == 0  # IB and the books moved alike
    account.positions = {}  # closed by hand in TWS
    watch.check()
    clock.now += 4
    watch.check()
    assert reconciler.asked == 0  # not yet: IB's position may run ahead of the executions it reports
    clock.now += 1
    watch.check()
    assert reconciler.asked == 1  # the same difference for 5 s: reconcile now
    clock.now += 5
    watch.check()
    assert reconciler.asked == 1  # not again within 10 s
    reconciler.last_state = BrokerState((), (), {})  # the reconciliation ran: a new baseline
    watch.check()
    clock.now += 60
    watch.check()
    assert reconciler.asked == 1
