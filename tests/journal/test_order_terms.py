"""The journal keeps an order's terms beyond its common columns (OCA group, trail), so an order rebuilt
after a restart is the order that was sent; version-2 journals are read as they are and migrated on write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from copilot_quant.journal import SCHEMA_VERSION, TradeJournal
from copilot_quant.model.orders import Order

from tests.journal.support import ACCOUNT, StepClock


def test_trailing_and_oca_terms_survive_the_round_trip(journal: TradeJournal) -> None:
    trailing = Order("AAPL", 10, "trailing_stop_limit", "sell", trail_percent=1.5, limit_offset=0.2)
    grouped = Order("AAPL", 10, "limit", "sell", limit_price=120.0, oca_group="exit-1", oca_type=2)
    plain = Order("AAPL", 10, "market", "buy")
    refs = [journal.record_intent(o, "s") for o in (trailing, grouped, plain)]
    rebuilt = [journal.order(ref).to_order() for ref in refs]
    assert (rebuilt[0].order_type, rebuilt[0].trail_percent, rebuilt[0].limit_offset) == (
        trailing.order_type,
        1.5,
        0.2,
    )
    assert rebuilt[0].trail_amount is None
    assert (rebuilt[1].oca_group, int(rebuilt[1].oca_type)) == ("exit-1", 2)
    assert rebuilt[2].oca_group == ""
    assert journal.order(refs[2]).terms == ""


def test_a_version_2_journal_is_read_as_is_and_migrated_when_opened_for_writing(journal_path: Path) -> None:
    with TradeJournal(journal_path, account=ACCOUNT, clock=StepClock()) as journal:
        ref = journal.record_intent(Order("AAPL", 10, "market", "buy"), "s")
    with sqlite3.connect(journal_path) as raw:  # as version 2 wrote it: no terms column
        raw.execute("ALTER TABLE orders DROP COLUMN terms")
        raw.execute("PRAGMA user_version = 2")
    with TradeJournal(journal_path, read_only=True) as reader:
        assert reader.order(ref).to_order().symbol == "AAPL"
    with TradeJournal(journal_path, account=ACCOUNT, clock=StepClock()) as journal:
        ref2 = journal.record_intent(Order("AAPL", 5, "trailing_stop", "sell", trail_amount=1.0), "s")
        assert journal.order(ref2).to_order().trail_amount == 1.0
    with sqlite3.connect(journal_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


def test_a_good_till_date_survives_the_round_trip(journal: TradeJournal) -> None:
    import pandas as pd

    until = pd.Timestamp("2024-03-08 16:00", tz="America/New_York").to_pydatetime()
    order = Order("AAPL", 10, "limit", "buy", limit_price=99.0, time_in_force="gtd", good_till=until)
    rebuilt = journal.order(journal.record_intent(order, "s")).to_order()
    assert rebuilt.good_till == until


def test_a_modification_changes_the_terms_not_the_state_and_is_kept_in_the_history(
    journal: TradeJournal,
) -> None:
    import pandas as pd

    order = Order("AAPL", 10, "limit", "buy", limit_price=99.0)
    ref = journal.record_intent(order, "s")
    journal.record_submitted(ref, 7)
    journal.record_fill(ref, "e1", "AAPL", "buy", 4, 99.0, pd.Timestamp("2024-03-04 15:00", tz="UTC"), 1.0)
    until = pd.Timestamp("2024-03-08 16:00", tz="America/New_York").to_pydatetime()
    changed = order.copy(
        order_id=order.order_id, quantity=12, limit_price=100.5, time_in_force="gtd", good_till=until
    )
    journal.record_modified(ref, changed, "modify requested")
    record = journal.order(ref)
    assert (record.quantity, record.limit_price, record.time_in_force.value) == (12, 100.5, "gtd")
    assert (record.state.value, record.filled, record.remaining) == ("partially_filled", 4, 8)
    assert record.to_order().good_till == until
    last = journal.status_history(ref)[-1]
    assert last.reason == "modify requested: quantity 12, limit 100.5, stop None, tif gtd"
    assert last.state.value == "partially_filled"


def test_a_bracket_is_journaled_as_one_unit_and_its_links_survive_the_round_trip(
    journal: TradeJournal,
) -> None:
    entry, take_profit, stop_loss = Order.bracket(
        "AAPL", 10, "buy", limit_price=100.0, take_profit=110.0, stop_loss=95.0
    )
    other = Order("AAPL", 5, "market", "buy")
    refs = [journal.record_intent(o, "s") for o in (entry, other, take_profit, stop_loss)]
    rebuilt = [journal.order(ref).to_order() for ref in refs]
    assert [o.parent_id for o in rebuilt] == ["", "", entry.order_id, entry.order_id]
    group = [o.order_ref for o in journal.bracket(refs[3])]
    assert group == [refs[0], refs[2], refs[3]]  # entry first, from any member
    assert [o.order_ref for o in journal.bracket(refs[0])] == group
    assert journal.bracket(refs[1]) == []  # not in a bracket
