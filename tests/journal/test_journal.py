"""The trade journal records every step of an order's life, once, and reads it back faithfully."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.backtest.orders import OrderSide, OrderStatus, OrderType
from copilot_quant.errors import ConfigError, JournalError
from copilot_quant.journal import (
    JOURNAL_DIR_ENV,
    SCHEMA_VERSION,
    EventKind,
    JournalOrderState,
    TradeJournal,
    UnknownOrderRefError,
    default_journal_path,
    is_journal_ref,
)

from tests.journal.support import ACCOUNT, T0, StepClock, buy, sell


def test_a_new_journal_is_created_in_wal_mode_with_a_versioned_schema(journal: TradeJournal) -> None:
    assert journal.path.is_file()
    assert journal.account == ACCOUNT
    with sqlite3.connect(journal.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_intent_is_recorded_before_sending_with_a_unique_order_ref(journal: TradeJournal) -> None:
    order = buy("aapl", 10, order_type="limit", limit_price=187.5, tag="entry")
    refs = {journal.record_intent(order, strategy="SmaCross") for _ in range(50)}
    assert len(refs) == 50
    ref = refs.pop()
    assert ref.startswith(f"cq-{ACCOUNT}-")
    assert is_journal_ref(ref, ACCOUNT)
    assert not is_journal_ref(ref, "DU7654321")
    record = journal.order(ref)
    assert record.state is JournalOrderState.INTENT
    assert (record.symbol, record.side, record.quantity) == ("AAPL", OrderSide.BUY, 10.0)
    assert (record.order_type, record.limit_price, record.tag) == (OrderType.LIMIT, 187.5, "entry")
    assert record.strategy == "SmaCross"
    assert record.order_id == order.order_id
    assert record.remaining == 10.0
    assert record.submitted_at is None


def test_order_ids_are_the_strategy_ids_journaled_once_each(journal: TradeJournal) -> None:
    journal.record_intent(buy(order_id="O41"))
    journal.record_intent(buy(order_id="O41"))  # an explicit id used twice
    journal.record_intent(buy(order_id="entry"))
    assert sorted(journal.order_ids()) == ["O41", "entry"]


def test_unsent_intents_lists_only_orders_the_broker_never_confirmed(journal: TradeJournal) -> None:
    sent = journal.record_intent(buy())
    unsent = journal.record_intent(buy("MSFT"))
    refused = journal.record_intent(buy("TSLA"))
    journal.record_submitted(sent, broker_order_id=7, perm_id=123456)
    journal.record_rejected(refused, "max_order_quantity exceeded")
    assert [o.order_ref for o in journal.unsent_intents()] == [unsent]
    record = journal.order(sent)
    assert record.state is JournalOrderState.SUBMITTED
    assert (record.broker_order_id, record.perm_id) == (7, 123456)
    assert record.submitted_at is not None
    assert journal.order_ref_for(7) == sent
    assert journal.order_ref_for(8) is None
    rejected = journal.order(refused)
    assert rejected.state is JournalOrderState.REJECTED
    assert rejected.reason == "max_order_quantity exceeded"
    assert rejected.to_order().status is OrderStatus.REJECTED
    assert rejected.to_order().reject_reason == "max_order_quantity exceeded"


def test_recording_the_same_execution_twice_is_a_no_op(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_submitted(ref, 1)
    assert journal.record_fill(ref, "0001.01", "AAPL", "buy", 4, 100.0, T0) is True
    assert journal.record_fill(ref, "0001.01", "AAPL", "buy", 4, 100.0, T0) is False
    assert journal.record_fill(ref, "0001.01", "AAPL", "buy", 4, 99.0, T0 + timedelta(seconds=1)) is False
    assert journal.has_execution("0001.01")
    assert not journal.has_execution("0001.02")
    assert len(journal.fills()) == 1
    record = journal.order(ref)
    assert (record.filled, record.remaining, record.state) == (4.0, 6.0, JournalOrderState.PARTIALLY_FILLED)


def test_fills_drive_the_order_to_filled_with_the_volume_weighted_price(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_submitted(ref, 1)
    journal.record_fill(ref, "e1", "AAPL", OrderSide.BUY, 4, 100.0, T0)
    journal.record_fill(ref, "e2", "AAPL", OrderSide.BUY, 6, 101.0, T0 + timedelta(seconds=1))
    record = journal.order(ref)
    assert record.state is JournalOrderState.FILLED
    assert record.filled == 10.0
    assert record.remaining == 0.0
    assert record.avg_price == pytest.approx((4 * 100 + 6 * 101) / 10)
    rebuilt = record.to_order()
    assert rebuilt.status is OrderStatus.FILLED
    assert rebuilt.filled_quantity == 10.0


def test_a_fill_proves_an_intent_reached_the_broker(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_fill(ref, "e1", "AAPL", "buy", 3, 50.0, T0)  # execution seen before the ack
    assert journal.unsent_intents() == []
    record = journal.order(ref)
    assert record.state is JournalOrderState.PARTIALLY_FILLED
    assert record.submitted_at is not None


def test_a_fill_for_an_unknown_order_is_still_kept(journal: TradeJournal, caplog) -> None:
    assert journal.record_fill(None, "manual-1", "spy", "sell", 5, 500.0, T0)
    assert journal.record_fill("someone-else", "manual-2", "SPY", "s", 5, 500.0, T0)
    fills = journal.fills()
    assert [(f.exec_id, f.order_ref, f.symbol, f.side) for f in fills] == [
        ("manual-1", None, "SPY", OrderSide.SELL),
        ("manual-2", "someone-else", "SPY", OrderSide.SELL),
    ]
    assert "unknown order" in caplog.text


def test_commission_reports_update_the_fill_in_either_arrival_order(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_fill(ref, "e1", "AAPL", "buy", 10, 100.0, T0)
    assert journal.record_commission("e1", 1.25) is True
    assert journal.record_commission("e2", 0.75, realized_pnl=12.5) is False  # before its execution
    journal.record_fill(ref, "e2", "AAPL", "buy", 1, 100.0, T0)
    by_id = {f.exec_id: f for f in journal.fills()}
    assert by_id["e1"].commission == 1.25
    assert by_id["e1"].realized_pnl is None
    assert (by_id["e2"].commission, by_id["e2"].realized_pnl) == (0.75, 12.5)


def test_ib_unset_values_are_stored_as_unknown(journal: TradeJournal) -> None:
    journal.record_fill(None, "e1", "AAPL", "buy", 1, 100.0, T0)
    journal.record_commission("e1", 1.0, realized_pnl=1.7976931348623157e308)
    assert journal.fills()[0].realized_pnl is None
    with pytest.raises(JournalError, match="commission"):
        journal.record_commission("e1", -1.0)


def test_status_reports_never_reopen_a_finished_order_or_reduce_its_fills(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_submitted(ref, 3)
    assert journal.record_status(ref, OrderStatus.SUBMITTED, filled=6, remaining=4, avg_price=99.0)
    assert journal.order(ref).state is JournalOrderState.PARTIALLY_FILLED  # IB says "Submitted" while partial
    assert journal.record_status(ref, "cancelled", 6, 0, 99.0, reason="cancelled by the user")
    late = journal.record_status(ref, OrderStatus.SUBMITTED, filled=2, remaining=8, avg_price=98.0)
    assert late is False
    record = journal.order(ref)
    assert (record.state, record.filled, record.avg_price) == (JournalOrderState.CANCELLED, 6.0, 99.0)
    assert record.reason == "cancelled by the user"
    assert record.remaining == 0.0
    history = journal.status_history(ref)
    assert [h.state for h in history] == [
        JournalOrderState.INTENT,
        JournalOrderState.SUBMITTED,
        JournalOrderState.SUBMITTED,
        JournalOrderState.CANCELLED,
        JournalOrderState.SUBMITTED,
    ]
    assert history[-1].filled == 6.0


def test_a_complete_fill_overrides_an_earlier_cancel(journal: TradeJournal) -> None:
    ref = journal.record_intent(sell(qty=5))
    journal.record_status(ref, OrderStatus.CANCELLED)
    journal.record_fill(ref, "e1", "AAPL", "sell", 5, 10.0, T0)  # the fill raced the cancel and won
    assert journal.order(ref).state is JournalOrderState.FILLED


def test_states_map_to_the_domain_order_status() -> None:
    assert JournalOrderState.INTENT.to_order_status() is OrderStatus.CREATED
    for status in OrderStatus:
        assert JournalOrderState.from_order_status(status).to_order_status() is status
        assert JournalOrderState.parse(status.value).to_order_status() is status
    with pytest.raises(JournalError, match="unknown order state"):
        JournalOrderState.parse("PreSubmittedish")


def test_orders_filter_by_group_state_symbol_and_time(journal: TradeJournal) -> None:
    a = journal.record_intent(buy("AAPL"))
    b = journal.record_intent(buy("MSFT"))
    c = journal.record_intent(buy("MSFT"))
    journal.record_submitted(b, 2)
    journal.record_submitted(c, 3)
    journal.record_status(c, OrderStatus.FILLED, 10, 0, 1.0)
    assert [o.order_ref for o in journal.orders()] == [a, b, c]
    assert [o.order_ref for o in journal.orders("active")] == [a, b]
    assert [o.order_ref for o in journal.orders("working")] == [b]
    assert [o.order_ref for o in journal.orders("done")] == [c]
    assert [o.order_ref for o in journal.orders(OrderStatus.CREATED)] == [a]
    assert [o.order_ref for o in journal.orders(["intent", JournalOrderState.FILLED])] == [a, c]
    assert [o.order_ref for o in journal.orders(symbol="msft")] == [b, c]
    since = journal.order(b).created_at
    assert [o.order_ref for o in journal.orders(since=since)] == [b, c]


def test_errors_and_events_are_kept_in_order(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    journal.record_error(ref, 201, "Order rejected - reason: insufficient buying power")
    journal.record_error(None, 1100, "Connectivity between IB and TWS has been lost")
    journal.record_event(EventKind.START, "SmaCross on DU1234567")
    journal.record_event("reconnect", "after 12s")
    assert [(e.code, e.order_ref) for e in journal.errors()] == [(201, ref), (1100, None)]
    assert [(e.kind, e.detail) for e in journal.events()] == [
        ("start", "SmaCross on DU1234567"),
        ("reconnect", "after 12s"),
    ]
    assert [e.kind for e in journal.events(kind=EventKind.RECONNECT)] == ["reconnect"]
    assert journal.events(since=datetime(2100, 1, 1, tzinfo=UTC)) == []
    with pytest.raises(JournalError, match="kind"):
        journal.record_event("  ")


def test_unknown_refs_and_bad_input_raise_named_errors(journal: TradeJournal) -> None:
    with pytest.raises(UnknownOrderRefError, match="record_intent"):
        journal.record_submitted("cq-nope", 1)
    with pytest.raises(UnknownOrderRefError):
        journal.record_status("cq-nope", "filled")
    with pytest.raises(UnknownOrderRefError):
        journal.order("cq-nope")
    with pytest.raises(JournalError, match="naive"):
        journal.record_fill(None, "e1", "AAPL", "buy", 1, 1.0, datetime(2024, 1, 2, 10, 0))
    with pytest.raises(JournalError, match="quantity"):
        journal.record_fill(None, "e1", "AAPL", "buy", 0, 1.0, T0)
    with pytest.raises(JournalError, match="side"):
        journal.record_fill(None, "e1", "AAPL", "long", 1, 1.0, T0)
    with pytest.raises(JournalError, match="exec_id"):
        journal.record_fill(None, " ", "AAPL", "buy", 1, 1.0, T0)
    with pytest.raises(JournalError, match="reason"):
        journal.record_rejected(journal.record_intent(buy()), "")
    assert journal.fills() == []  # none of the refused calls left anything behind


def test_a_journal_belongs_to_one_account(journal_path: Path) -> None:
    TradeJournal(journal_path, account=ACCOUNT).close()
    with TradeJournal(journal_path) as reopened:  # the account is read from the file
        assert reopened.account == ACCOUNT
    with pytest.raises(JournalError, match="belongs to account 'DU1234567'"):
        TradeJournal(journal_path, account="DU7654321")
    with pytest.raises(JournalError, match="pass account="):
        TradeJournal(journal_path.with_name("new.sqlite"))
    with pytest.raises(ConfigError, match="account"):
        TradeJournal(account="../etc/passwd")
    with pytest.raises(ConfigError, match=r"account= .* or path="):
        TradeJournal()


def test_the_default_path_is_one_file_per_account_in_the_configured_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JOURNAL_DIR_ENV, str(tmp_path / "j"))
    with TradeJournal(account="DU1111111") as journal:
        assert journal.path == tmp_path / "j" / "DU1111111.sqlite"
    assert default_journal_path("DU2222222") == tmp_path / "j" / "DU2222222.sqlite"
    monkeypatch.delenv(JOURNAL_DIR_ENV)
    assert default_journal_path("DU1") == Path.home() / ".copilot_quant" / "journal" / "DU1.sqlite"


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE t (x)")
    with pytest.raises(JournalError, match="not a copilot_quant journal"):
        TradeJournal(other, account=ACCOUNT)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a healthy journal"):
        TradeJournal(garbage, account=ACCOUNT)


def test_a_newer_schema_is_refused_with_upgrade_advice(journal_path: Path) -> None:
    TradeJournal(journal_path, account=ACCOUNT).close()
    with sqlite3.connect(journal_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(JournalError, match="upgrade copilot_quant"):
        TradeJournal(journal_path)


def test_a_closed_journal_refuses_to_record(journal: TradeJournal) -> None:
    journal.close()
    journal.close()  # idempotent
    assert journal.closed
    with pytest.raises(JournalError, match="closed"):
        journal.record_event("start")


def test_a_read_only_journal_reads_while_the_writer_is_open_and_never_writes(journal: TradeJournal) -> None:
    ref = journal.record_intent(buy())
    journal.record_fill(ref, "e1", "AAPL", "buy", 10, 100.0, T0)
    with TradeJournal(journal.path, read_only=True) as reader:
        assert reader.account == ACCOUNT
        assert [f.exec_id for f in reader.fills()] == ["e1"]
        with pytest.raises(JournalError, match="read-only"):
            reader.record_event("start")
        journal.record_fill(ref, "e2", "AAPL", "buy", 1, 100.0, T0)  # the writer carries on
        assert reader.has_execution("e2")
    with pytest.raises(JournalError, match="no journal at"):
        TradeJournal(journal.path.with_name("missing.sqlite"), read_only=True)


def test_tables_come_back_as_frames_with_utc_times_and_export_to_csv_and_parquet(
    journal: TradeJournal, tmp_path: Path
) -> None:
    ref = journal.record_intent(buy(qty=10))
    journal.record_fill(ref, "e1", "AAPL", "buy", 10, 100.0, T0)
    frame = journal.to_frame("fills")
    assert list(frame["exec_id"]) == ["e1"]
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame["time"].iloc[0] == pd.Timestamp(T0)
    assert frame["commission"].dtype == "float64"
    orders = journal.to_frame("orders")
    assert list(orders["state"]) == ["filled"]
    csv = journal.export(tmp_path / "out" / "fills.csv", "fills")
    assert pd.read_csv(csv)["exec_id"].tolist() == ["e1"]
    parquet = journal.export(tmp_path / "orders.parquet", "orders")
    back = pd.read_parquet(parquet)
    assert back["order_ref"].tolist() == [ref]
    assert back["created_at"].iloc[0] == orders["created_at"].iloc[0]
    with pytest.raises(ConfigError, match="unknown journal table"):
        journal.to_frame("pending_commissions")
    with pytest.raises(ConfigError, match=r"csv or \*\.parquet"):
        journal.export(tmp_path / "orders.xlsx")


def test_concurrent_writers_on_threads_lose_and_double_nothing(journal: TradeJournal) -> None:
    refs = [journal.record_intent(buy(qty=40)) for _ in range(4)]
    barrier = threading.Barrier(4)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(40):
            ref = refs[i % 4]
            # every thread tries every execution; exactly one insert of each may win
            new = journal.record_fill(ref, f"x{i}", "AAPL", "buy", 4, 100.0 + n, T0)
            with lock:
                results.append(new)
            journal.record_event("tick", f"{n}:{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(results) == 40
    assert len(journal.fills()) == 40
    assert len(journal.events()) == 160
    for ref in refs:
        record = journal.order(ref)
        assert record.filled == 40.0
        assert record.state is JournalOrderState.FILLED


def test_recording_times_come_from_the_injected_clock(journal_path: Path) -> None:
    clock = StepClock()
    with TradeJournal(journal_path, account=ACCOUNT, clock=clock) as journal:
        ref = journal.record_intent(buy())
        assert journal.order(ref).created_at == clock.now
        assert journal.order(ref).created_at.tzinfo is not None


def test_the_journals_order_states_are_the_order_lifecycle_with_intent_for_created() -> None:
    # Two enums on purpose (see journal/states.py): they may differ only in their first state.
    assert {s.value for s in OrderStatus} - {"created"} == {s.value for s in JournalOrderState} - {"intent"}
    for status in OrderStatus:
        state = JournalOrderState.from_order_status(status)
        assert state.to_order_status() is status
        assert state.is_done == status.is_done
    assert JournalOrderState.parse("created") is JournalOrderState.INTENT
