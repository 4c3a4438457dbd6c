"""Reconciliation compares the broker's positions with what the journal's fills add up to."""

from __future__ import annotations

import math

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import BrokerExecution, TradeJournal, reconcile
from copilot_quant.journal.reconcile import PositionMismatch
from copilot_quant.journal.records import FillRecord
from hypothesis import given
from hypothesis import strategies as st

from tests.journal.support import ACCOUNT, T0, buy, sell


def _check(journal: TradeJournal, positions, executions=()):
    return reconcile(
        journal.orders("active"), [], executions, journal.fills(), ACCOUNT, broker_positions=positions
    )


def _filled(journal: TradeJournal, order, exec_id: str, qty: float) -> str:
    ref = journal.record_intent(order)
    journal.record_submitted(ref, abs(hash(exec_id)) % 10_000 + 1)
    journal.record_fill(ref, exec_id, order.symbol, order.side, qty, 100.0, T0)
    return ref


def test_positions_explained_by_the_journal_reconcile_clean(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 10), "e1", 10)
    _filled(journal, sell("AAPL", 4), "e2", 4)
    _filled(journal, sell("MSFT", 3), "e3", 3)
    _filled(journal, buy("NVDA", 2), "e4", 2)
    _filled(journal, sell("NVDA", 2), "e5", 2)  # flat: the broker need not list it
    report = _check(journal, {"AAPL": 6, "msft ": -3})
    assert report.position_mismatches == ()
    assert not any("position" in line for line in report.summary())


def test_a_position_the_journal_does_not_know_is_reported_not_adopted(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 10), "e1", 10)
    report = _check(journal, {"AAPL": 10, "TSLA": 5})
    assert report.position_mismatches == (PositionMismatch("TSLA", 0.0, 5.0),)
    assert not report.is_clean
    assert report.summary() == ["position mismatch TSLA: journal 0, broker 5 — reported, not adopted"]
    assert [f.symbol for f in journal.fills()] == ["AAPL"]  # nothing adopted


def test_a_journal_position_the_broker_lacks_and_a_size_difference_are_both_reported(
    journal: TradeJournal,
) -> None:
    _filled(journal, buy("AAPL", 10), "e1", 10)
    _filled(journal, sell("MSFT", 7), "e2", 7)
    report = _check(journal, {"AAPL": 8})
    assert report.position_mismatches == (
        PositionMismatch("AAPL", 10.0, 8.0),
        PositionMismatch("MSFT", -7.0, 0.0),
    )
    assert len([line for line in report.summary() if line.startswith("position mismatch")]) == 2


def test_fills_made_while_away_count_toward_the_journal_position(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy("AAPL", 10))
    journal.record_submitted(ref, 7)
    journal.record_fill(ref, "e1", "AAPL", "buy", 4, 100.0, T0)
    away = BrokerExecution("e2", ref, "AAPL", "buy", 6, 101.0, T0, 7)
    report = _check(journal, {"AAPL": 10}, [away])
    assert [e.exec_id for e in report.missing_fills] == ["e2"]
    assert report.position_mismatches == ()
    # A foreign execution is not ours: it does not explain the broker's position away.
    foreign = BrokerExecution("m1", None, "AAPL", "buy", 3, 99.0, T0)
    report = _check(journal, {"AAPL": 13}, [away, foreign])
    assert report.position_mismatches == (PositionMismatch("AAPL", 10.0, 13.0),)


def test_without_broker_positions_nothing_is_compared(journal: TradeJournal) -> None:
    _filled(journal, buy("AAPL", 10), "e1", 10)
    report = reconcile(journal.orders("active"), [], [], journal.fills(), ACCOUNT)
    assert report.position_mismatches == ()
    assert report.is_clean


def test_a_non_finite_broker_position_is_a_named_error(journal: TradeJournal) -> None:
    with pytest.raises(JournalError, match="finite"):
        _check(journal, {"AAPL": math.nan})


@given(
    trades=st.lists(
        st.tuples(st.sampled_from(["AAPL", "MSFT"]), st.sampled_from(["buy", "sell"]), st.integers(1, 50)),
        max_size=12,
    ),
    drift=st.integers(-5, 5),
)
def test_a_mismatch_is_reported_exactly_when_the_positions_differ(trades, drift) -> None:
    fills = [
        FillRecord(f"e{i}", None, symbol, side, qty, 100.0, T0, None, None, T0)  # type: ignore[arg-type]
        for i, (symbol, side, qty) in enumerate(trades)
    ]
    net = {"AAPL": 0.0, "MSFT": 0.0}
    for symbol, side, qty in trades:
        net[symbol] += qty if side == "buy" else -qty
    broker = {"AAPL": net["AAPL"] + drift, "MSFT": net["MSFT"]}
    report = reconcile([], [], [], fills, ACCOUNT, broker_positions=broker)
    expected = (PositionMismatch("AAPL", net["AAPL"], net["AAPL"] + drift),) if drift else ()
    assert report.position_mismatches == expected
    assert report.is_clean is (drift == 0)
