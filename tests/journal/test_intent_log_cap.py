"""The intent log under the journal's ``max_bytes`` cap: an intent SQLite could not hold is refused before
its order is sent, and a journal at its cap opens again with that cap.

Before: the log took any intent, so with the cap reached one more order was sent (its intent in the log
only), trading halted at the next write (SQLite could not take the row), and every writable open failed
(recovering the row) until the cap was raised.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import JournalFullError, JournalOrderState, TradeJournal, intent_log
from copilot_quant.journal.intent_log import intent_log_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.journal.support import ACCOUNT, T0, abandon, buy, logged


def _pages(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as conn:
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        return pages, int(conn.execute("PRAGMA page_size").fetchone()[0])


def _capped(path: Path, room_pages: int) -> tuple[TradeJournal, int]:
    """A journal on ``path`` whose ``max_bytes`` cap leaves ``room_pages`` pages free; and that cap."""
    TradeJournal(path, account=ACCOUNT).close()
    pages, page_size = _pages(path)
    max_bytes = (pages + room_pages) * page_size
    return TradeJournal(path, max_bytes=max_bytes), max_bytes


def _trade_until_full(journal: TradeJournal) -> tuple[list[str], JournalFullError]:
    """An engine's writes: an intent, its acknowledgement, a fill, until an intent is refused."""
    sent: list[str] = []
    for i in range(10_000):
        try:
            ref = journal.record_intent(buy())
        except JournalFullError as exc:
            return sent, exc
        sent.append(ref)  # the engine sends it now: what follows it must be journaled too
        journal.record_submitted(ref, i)
        journal.record_fill(ref, f"e{i}", "AAPL", "buy", 10, 100.0, T0)
    raise AssertionError("the cap never refused an intent")


def test_an_intent_the_cap_cannot_hold_is_refused_before_it_is_sent(journal_path: Path) -> None:
    journal, max_bytes = _capped(journal_path, 60)
    with journal:
        sent, refused = _trade_until_full(journal)
        message = str(refused)
        assert str(journal_path) in message
        assert f"max_bytes cap ({max_bytes} bytes)" in message
        assert "none was sent" in message
        assert "raise max_bytes" in message
        assert len(sent) > 3
        # Every order sent is journaled whole, and the refused one as rejected: never sent, said why.
        orders = journal.orders()
        assert [o.order_ref for o in orders[:-1]] == sent
        assert all(o.state is JournalOrderState.FILLED for o in orders[:-1])
        (rejected,) = [o for o in orders if o.order_ref not in sent]
        assert rejected.state is JournalOrderState.REJECTED
        assert rejected.broker_order_id is None
        assert "max_bytes" in rejected.reason
        assert [h.state for h in journal.status_history(rejected.order_ref)] == [
            JournalOrderState.INTENT,
            JournalOrderState.REJECTED,
        ]
        assert rejected.order_ref.encode() not in intent_log_path(journal_path).read_bytes()
        # The room kept for what follows sent orders: a late fill, a cancel, the halt's own event.
        journal.record_event("halt", message)
        journal.record_status(sent[-1], "filled", 10, 0, 100.0)
        with pytest.raises(JournalFullError):  # still full: halted until the cap is raised
            journal.record_intent(buy("MSFT"))


def test_a_journal_at_its_cap_opens_again_with_that_cap_and_recovers_its_log(journal_path: Path) -> None:
    journal, max_bytes = _capped(journal_path, 60)
    sent, _ = _trade_until_full(journal)
    abandon(journal)  # a crash right after the refusal
    with TradeJournal(journal_path, max_bytes=max_bytes) as reopened:
        assert [o.order_ref for o in reopened.orders() if o.order_ref in sent] == sent
        assert logged(journal_path) == []
        reopened.record_status(sent[-1], "filled", 10, 0, 100.0)  # reconciliation's writes still fit
        with pytest.raises(JournalFullError):
            reopened.record_intent(buy())


def test_intents_the_cap_took_are_recovered_at_the_next_open_with_it(journal_path: Path) -> None:
    """Intents appended up to the cap and never written to SQLite (a crash right after them): the next
    open, with the same cap, records them all (before: it failed, SQLite full, until the cap was raised)."""
    journal, max_bytes = _capped(journal_path, 60)
    log = journal._store.intent_log
    assert log is not None
    assert log._room is not None
    refs: list[str] = []
    while log._room - sum(log._costs) >= 2 * (intent_log.INTENT_PAGES + 1):  # as much as the log takes
        refs.extend(journal.record_intents([(buy(), None), (buy("MSFT"), None)]))
    assert len(refs) >= 4
    assert log.has_pending  # in the log only
    abandon(journal)
    with TradeJournal(journal_path, max_bytes=max_bytes) as reopened:
        assert {o.order_ref for o in reopened.unsent_intents()} == set(refs)
        for i, ref in enumerate(refs):  # and what follows them fits too
            reopened.record_submitted(ref, i)


def test_a_log_the_cap_cannot_hold_is_recovered_past_it_with_a_warning(
    journal_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A log SQLite has no room for (written by an older version, or another journal took the room): its
    rows are orders that may have been sent, so the open records them past the cap, and says so."""
    journal, max_bytes = _capped(journal_path, 60)
    row = None
    with journal:
        journal.record_intent(buy())
        row = json.loads(logged(journal_path)[0])
    lines = []
    for i in range(400):  # far more than 60 pages hold
        row[0] = f"{row[0][:-4]}{i:04d}"
        lines.append(json.dumps(row).encode() + b"\n")
    intent_log_path(journal_path).write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING), TradeJournal(journal_path, max_bytes=max_bytes) as reopened:
        assert len(reopened.unsent_intents()) == 401
        with pytest.raises(JournalFullError, match="raise max_bytes"):
            reopened.record_intent(buy())
    assert f"leaves no room for new orders under its max_bytes cap ({max_bytes} bytes)" in caplog.text
    assert logged(journal_path) == []


def test_without_a_cap_the_log_counts_nothing(journal: TradeJournal) -> None:
    log = journal._store.intent_log
    assert log is not None
    journal.record_intents([(buy(), None), (buy("MSFT"), None)])
    assert log._room is None
    assert log._costs == []


# An engine's writes under a cap: intents (one, or a bar's several), their acknowledgements, fills, crashes.
_OPS = st.lists(st.sampled_from(["intent", "intents", "ack", "fill", "crash"]), min_size=1, max_size=80)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(room=st.integers(1, 80), ops=_OPS, cut_often=st.booleans())
def test_under_any_cap_an_intent_returned_is_never_one_sqlite_cannot_hold(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    room: int,
    ops: list[str],
    cut_often: bool,
) -> None:
    """Whatever the cap and the writes, an order whose intent was returned (and sent) is journaled, its
    acknowledgement fits, and the journal opens again with its cap; a refused one is never an intent."""
    if cut_often:
        monkeypatch.setattr(intent_log, "_CUT_BYTES", 200)
    path = tmp_path_factory.mktemp("cap") / f"{ACCOUNT}.sqlite"
    journal, max_bytes = _capped(path, room)
    sent: list[str] = []
    acked: set[str] = set()
    for step, op in enumerate(ops):
        try:
            if op == "intent":
                sent.append(journal.record_intent(buy()))
            elif op == "intents":
                sent.extend(journal.record_intents([(buy(), None), (buy("MSFT"), None), (buy("SPY"), None)]))
            elif op == "ack" and len(acked) < len(sent):
                ref = next(r for r in sent if r not in acked)
                journal.record_submitted(ref, step)  # an order sent: its acknowledgement must fit
                acked.add(ref)
            elif op == "fill" and acked:
                journal.record_fill(sorted(acked)[0], f"e{step}", "AAPL", "buy", 1, 100.0, T0)
            elif op == "crash":
                abandon(journal)
                journal = TradeJournal(path, max_bytes=max_bytes)
        except JournalFullError:
            continue  # the engine halts here; the journal stays whole
        except JournalError:  # a fill may meet the cap (IB keeps executions): nothing else
            if op != "fill":
                raise
    abandon(journal)
    with TradeJournal(path, max_bytes=max_bytes) as reopened:
        orders = {o.order_ref: o for o in reopened.orders()}
        assert set(sent) <= set(orders)
        for ref, order in orders.items():
            if ref not in sent:
                assert order.state is JournalOrderState.REJECTED
