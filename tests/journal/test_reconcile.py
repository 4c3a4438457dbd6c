"""Reconciliation finds every difference between the journal and the broker, and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from copilot_quant.backtest.orders import OrderSide, OrderStatus
from copilot_quant.errors import JournalError
from copilot_quant.journal import (
    BrokerExecution,
    BrokerOrder,
    JournalOrderState,
    TradeJournal,
    reconcile,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.journal.support import ACCOUNT, T0, buy, reconcile_journal, sell


def execution(  # noqa: PLR0917 - a test factory
    exec_id: str,
    ref: str | None,
    qty: float = 5,
    price: float = 100.0,
    symbol: str = "AAPL",
    side: str = "buy",
    broker_order_id: int | None = None,
) -> BrokerExecution:
    return BrokerExecution(exec_id, ref, symbol, side, qty, price, T0, broker_order_id)


def broker_order(  # noqa: PLR0917 - a test factory
    ref: str | None,
    filled: float = 0,
    status: str = "submitted",
    broker_order_id: int | None = None,
    symbol: str = "AAPL",
    side: str = "buy",
    quantity: float = 10,
) -> BrokerOrder:
    return BrokerOrder(ref, broker_order_id, symbol, side, quantity, filled, status)


def test_a_journal_in_step_with_the_broker_reconciles_clean(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_submitted(ref, 1)
    journal.record_fill(ref, "e1", "AAPL", "buy", 5, 100.0, T0)
    report = reconcile_journal(
        journal, [broker_order(ref, filled=5, status="partially_filled")], [execution("e1", ref)]
    )
    assert report.is_clean, report.summary()
    assert report.summary() == []


def test_fills_made_while_away_are_found_once_and_explain_the_broker_fill(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_submitted(ref, 1)
    journal.record_fill(ref, "e1", "AAPL", "buy", 5, 100.0, T0)
    executions = [
        execution("e1", ref),
        execution("e2", ref, 5, 101.0),
        execution("e2", ref, 5, 101.0),  # reported twice (reqExecutions and the live stream)
    ]
    report = reconcile_journal(journal, [broker_order(ref, filled=10, status="filled")], executions)
    assert [e.exec_id for e in report.missing_fills] == ["e2"]
    assert report.quantity_mismatches == ()  # journal 5 + missing 5 == broker 10
    assert [(c.order_ref, c.broker_status) for c in report.status_changes] == [(ref, OrderStatus.FILLED)]
    for missing in report.missing_fills:  # what the engine does with the report
        assert journal.record_fill(
            missing.order_ref,
            missing.exec_id,
            missing.symbol,
            missing.side,
            missing.quantity,
            missing.price,
            missing.time,
        )
    assert journal.order(ref).state is JournalOrderState.FILLED
    assert reconcile_journal(journal, [broker_order(ref, filled=10, status="filled")], executions).is_clean


def test_orders_placed_outside_the_engine_are_reported_not_adopted(journal: TradeJournal) -> None:
    manual = broker_order(None, broker_order_id=0, symbol="TSLA", side="sell", quantity=3)
    other_engine = broker_order("cq-DU7654321-01HZF4NQY35NBBM2FP11Q65RVB", broker_order_id=9)
    report = reconcile_journal(
        journal, [manual, other_engine], [execution("m1", "", symbol="TSLA", side="sell")]
    )
    assert report.foreign_orders == (manual, other_engine)
    assert [e.exec_id for e in report.foreign_executions] == ["m1"]
    assert report.missing_fills == ()
    assert any("outside the engine" in line for line in report.summary())
    assert journal.orders() == []  # nothing adopted


def test_orders_the_broker_no_longer_lists_are_reported_as_vanished(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    journal.record_submitted(ref, 4)
    report = reconcile_journal(journal, [], [])
    assert [o.order_ref for o in report.vanished_orders] == [ref]


def test_after_a_crash_intents_are_split_into_sent_and_never_sent(journal: TradeJournal) -> None:
    reached = journal.record_intent(buy("AAPL"))
    lost = journal.record_intent(buy("MSFT"))
    filled_away = journal.record_intent(buy("NVDA", 5))
    report = reconcile_journal(
        journal,
        [broker_order(reached, broker_order_id=11)],
        [execution("n1", filled_away, 5, symbol="NVDA")],
    )
    assert [(o.order_ref, b.broker_order_id) for o, b in report.unconfirmed_submissions] == [(reached, 11)]
    assert [o.order_ref for o in report.unsent_intents] == [lost]
    assert [e.exec_id for e in report.missing_fills] == ["n1"]
    assert report.status_changes == ()  # intent vs submitted is the unconfirmed submission, not a change


def test_an_execution_without_order_ref_is_matched_by_broker_order_id(journal: TradeJournal) -> None:
    ref = journal.record_intent(sell(qty=5))
    journal.record_submitted(ref, 42)
    report = reconcile_journal(journal, [], [execution("e9", None, 5, broker_order_id=42, side="sell")])
    assert [(e.exec_id, e.order_ref) for e in report.missing_fills] == [("e9", ref)]


def test_quantity_mismatches_are_reported(journal: TradeJournal) -> None:
    modified = journal.record_intent(buy(qty=10))
    short = journal.record_intent(buy("MSFT", qty=10))
    journal.record_submitted(modified, 1)
    journal.record_submitted(short, 2)
    journal.record_fill(short, "s1", "MSFT", "buy", 6, 10.0, T0)
    report = reconcile_journal(
        journal,
        [
            broker_order(modified, quantity=20),
            broker_order(short, filled=8, status="partially_filled", symbol="MSFT"),
        ],
        [],
    )
    found = {(m.order_ref, m.what): m for m in report.quantity_mismatches}
    assert found[(modified, "quantity")].broker == 20
    assert (found[(short, "filled")].journal, found[(short, "filled")].broker) == (6, 8)
    assert "reqExecutions" in found[(short, "filled")].note


def test_a_completed_report_wins_over_an_open_one_for_the_same_order(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_submitted(ref, 1)
    report = reconcile_journal(
        journal, [broker_order(ref, status="cancelled"), broker_order(ref, status="submitted")], []
    )
    assert [c.broker_status for c in report.status_changes] == [OrderStatus.CANCELLED]


def test_broker_inputs_are_validated_with_fix_it_messages() -> None:
    with pytest.raises(JournalError, match="'buy' or 'sell'"):
        execution("e", None, side="BOT")
    with pytest.raises(JournalError, match="translate it to one of"):
        broker_order(None, status="PreSubmitted")
    with pytest.raises(JournalError, match="quantity"):
        execution("e", None, 0)
    assert broker_order(None).side is OrderSide.BUY


@given(
    fills=st.lists(st.integers(1, 5), min_size=1, max_size=12),
    journaled=st.sets(st.integers(0, 11)),
    repeats=st.lists(st.integers(0, 11), max_size=6),
)
def test_missing_fills_are_exactly_the_executions_the_journal_lacks(
    tmp_path_factory: pytest.TempPathFactory, fills: list[int], journaled: set[int], repeats: list[int]
) -> None:
    path = tmp_path_factory.mktemp("hyp") / f"{ACCOUNT}.sqlite"
    with TradeJournal(path, account=ACCOUNT) as journal:
        ref = journal.record_intent(buy(qty=sum(fills)))
        journal.record_submitted(ref, 1)
        executions = [
            BrokerExecution(f"x{i}", ref, "AAPL", "buy", qty, 100.0 + i, T0 + timedelta(seconds=i))
            for i, qty in enumerate(fills)
        ]
        for i in sorted(journaled):
            if i < len(executions):
                e = executions[i]
                journal.record_fill(ref, e.exec_id, e.symbol, e.side, e.quantity, e.price, e.time)
        reported = executions + [executions[i] for i in repeats if i < len(executions)]
        broker = [broker_order(ref, quantity=sum(fills), filled=sum(fills), status="filled")]
        report = reconcile(journal.orders("active"), broker, reported, journal.fills(), ACCOUNT)
        expected = [e.exec_id for i, e in enumerate(executions) if i not in journaled]
        assert [e.exec_id for e in report.missing_fills] == expected
        assert report.quantity_mismatches == ()
        delivered = [
            e.exec_id
            for e in report.missing_fills
            if journal.record_fill(e.order_ref, e.exec_id, e.symbol, e.side, e.quantity, e.price, e.time)
        ]
        assert delivered == expected  # each delivered exactly once
        again = reconcile(journal.orders("active"), broker, reported, journal.fills(), ACCOUNT)
        assert again.missing_fills == ()
        assert journal.order(ref).state is JournalOrderState.FILLED
