"""The live engine's parts that need no gateway: ownership splits, holdings, trader wording, named events."""

from __future__ import annotations

from datetime import UTC, datetime

from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.journal.reconcile import BrokerExecution, PositionMismatch, ReconcileReport
from copilot_quant.live.holdings import describe_holdings
from copilot_quant.live.reconcile_notes import reconcile_notes
from copilot_quant.live.safety import split_by_owner
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.orders import Position
from hypothesis import given
from hypothesis import strategies as st

quantities = st.integers(min_value=-500, max_value=500).map(float)


@given(held=quantities.filter(bool), claims=st.dictionaries(st.sampled_from("ABC"), quantities, max_size=3))
def test_the_kill_switch_splits_a_position_among_its_owners_without_closing_more_than_is_held(held, claims):
    parts = list(split_by_owner(held, "AAPL", {name: {"AAPL": q} for name, q in claims.items()}))
    assert sum(q for _, q in parts) == held  # the whole position is closed, no more
    assert all((q > 0) == (held > 0) for _, q in parts)  # never the other way
    for owner, q in parts:
        if owner != "kill_switch":
            assert abs(q) <= abs(claims[owner])  # a strategy closes at most what its book holds


def test_holdings_say_whose_each_position_is():
    book = StrategyBook(0.0, "RsiRevert")
    book.apply("AAPL", 200, 180.0)
    account = {"AAPL": Position("AAPL", 200), "MSFT": Position("MSFT", 50)}
    assert describe_holdings(account, {"RsiRevert": book, "Breakout2": StrategyBook(0.0, "Breakout2")}) == [
        "the account holds AAPL 200 (RsiRevert 200); MSFT 50 (no running strategy's: left alone)"
    ]
    assert describe_holdings({}, {}) == ["the account holds no positions at start"]
    closed_by_hand = describe_holdings({}, {"RsiRevert": book})
    assert closed_by_hand[1].startswith("needs attention: the journal says RsiRevert 200 of AAPL")


def test_reconciliation_findings_are_news_or_need_attention():
    when = datetime(2024, 3, 4, 15, tzinfo=UTC)
    report = ReconcileReport(
        missing_fills=(BrokerExecution("E1", "cq-1", "AAPL", "buy", 10, 100.0, when),),
        foreign_executions=(BrokerExecution("E2", None, "MSFT", "buy", 2, 50.0, when),),
        position_mismatches=(PositionMismatch("MSFT", 0.0, 2.0),),
    )
    notes = reconcile_notes(report, {}, "while the engine was not running")
    assert notes.news == (
        "while the engine was not running, IB filled order cq-1: 1 execution(s), 10 shares at 100 on average "
        "— recorded in the journal and passed to on_fill; nothing to do",
    )
    assert len(notes.attention) == 2
    assert all(line.startswith("needs attention: ") for line in notes.lines[1:])
    assert "missing fill" not in " ".join(notes.lines)


def test_engine_events_are_named_eventkit_events():
    engine = LiveStrategyEngine(port=7497)  # never connected
    seen: list[tuple[str, str]] = []
    errors: list[tuple[str, str]] = []
    engine.on.event += lambda kind, detail: seen.append((kind, detail))
    engine.on.error += lambda kind, message: errors.append((kind, message))
    engine.kill("drill")  # not connected: carried out once the connection is back
    assert seen == [("kill_switch", "drill (flatten=False)")]
    assert engine.halted == "kill switch engaged: drill"
    assert errors == []
