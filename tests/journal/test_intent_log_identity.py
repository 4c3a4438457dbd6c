"""An intent log belongs to one journal: its first line names the journal's identity (``meta.journal_id``).

Before: a journal moved aside after a crash left its ``-intents`` file behind, and the next journal created
at that path recovered it as its own: reconciliation then marked the moved journal's last orders "never
sent" — orders that may be working at IB — and the moved journal never learnt of them.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from copilot_quant.journal import JournalOrderState, TradeJournal
from copilot_quant.journal.intent_log import intent_log_path
from copilot_quant.journal.log_identity import identity_line

from tests.journal.support import ACCOUNT, abandon, buy, logged

_SQLITE_FILES = ("", "-wal", "-shm")  # what a trader moves aside, knowing SQLite; the -intents file stays


def _crashed_with_intents(path: Path) -> list[str]:
    journal = TradeJournal(path, account=ACCOUNT)
    refs = journal.record_intents([(buy(), None), (buy("MSFT"), None)])
    abandon(journal)  # a crash: the intents are in the log only
    return refs


def _move_journal_aside(path: Path, aside: Path) -> None:
    aside.parent.mkdir(exist_ok=True)
    for suffix in _SQLITE_FILES:
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(Path(f"{aside}{suffix}"))


def _identity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT value FROM meta WHERE key = 'journal_id'").fetchone()[0])


def test_a_log_left_by_a_journal_moved_aside_is_not_merged_into_the_next_one(
    journal_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    refs = _crashed_with_intents(journal_path)
    moved = journal_path.parent / "aside" / journal_path.name
    _move_journal_aside(journal_path, moved)
    owner = _identity(moved)
    with caplog.at_level(logging.WARNING), TradeJournal(journal_path, account=ACCOUNT) as fresh:
        assert fresh.orders() == []  # before: the moved journal's two intents, as this one's
        identity = fresh._store.identity
        assert identity is not None
        assert identity != owner
        ref = fresh.record_intent(buy("SPY"))  # it has a log of its own
        assert [o.order_ref for o in fresh.orders()] == [ref]
    left = intent_log_path(journal_path).with_name(f"{journal_path.name}-intents.{owner}")
    warning = caplog.text
    assert (
        f"intent log {intent_log_path(journal_path)} belongs to another journal (journal_id {owner})"
        in warning
    )
    assert f"not to journal {journal_path} (journal_id {identity})" in warning
    assert f"it is now {left}" in warning
    assert "named '<that journal's file name>-intents'" in warning
    # What the warning says to do recovers the moved journal's intents, as its own.
    left.rename(intent_log_path(moved))
    with TradeJournal(moved) as recovered:
        assert sorted(o.order_ref for o in recovered.unsent_intents()) == sorted(refs)
    assert intent_log_path(moved).read_bytes() == identity_line(owner)  # cut, its identity kept


def test_a_log_without_an_identity_is_recovered_as_before_with_a_warning(
    journal_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A journal and its log from before identities existed (no ``journal_id``, no first line naming it)."""
    refs = _crashed_with_intents(journal_path)
    log_path = intent_log_path(journal_path)
    log_path.write_bytes(b"".join(log_path.read_bytes().splitlines(keepends=True)[1:]))
    with sqlite3.connect(journal_path) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'journal_id'")
    with caplog.at_level(logging.WARNING), TradeJournal(journal_path) as reopened:
        assert sorted(o.order_ref for o in reopened.unsent_intents()) == sorted(refs)
        identity = reopened._store.identity
        assert identity is not None
    assert f"intent log {log_path} names no journal (an older copilot_quant wrote it)" in caplog.text
    assert _identity(journal_path) == identity  # given one now, kept from here on
    assert log_path.read_bytes() == identity_line(identity)


def test_a_journal_keeps_its_identity_and_its_cut_log_keeps_naming_it(journal_path: Path) -> None:
    with TradeJournal(journal_path, account=ACCOUNT) as journal:
        identity = journal._store.identity
        assert identity is not None
        ref = journal.record_intent(buy())
        assert intent_log_path(journal_path).read_bytes().startswith(identity_line(identity))
    assert intent_log_path(journal_path).read_bytes() == identity_line(identity)  # cut: the identity stays
    with TradeJournal(journal_path) as reopened:
        assert reopened._store.identity == identity
        assert [o.state for o in reopened.orders()] == [JournalOrderState.INTENT]
        assert reopened.order(ref).order_ref == ref


def test_views_that_do_not_own_the_log_do_not_count_another_journals_intents(
    journal_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only view (``copilot-quant journal``) warned of the moved journal's intents as its own."""
    _crashed_with_intents(journal_path)
    moved = journal_path.parent / "aside" / journal_path.name
    left_behind = intent_log_path(journal_path).read_bytes()
    _move_journal_aside(journal_path, moved)
    TradeJournal(journal_path, account=ACCOUNT).close()  # the new journal at the path
    intent_log_path(journal_path).write_bytes(left_behind)  # as if the new journal never opened for writing
    caplog.clear()
    with caplog.at_level(logging.WARNING), TradeJournal(journal_path, read_only=True) as reader:
        assert reader.orders() == []
    assert "intent log" not in caplog.text
    assert len(logged(journal_path)) == 2
