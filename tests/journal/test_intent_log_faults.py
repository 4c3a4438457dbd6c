"""The intent log under review: the defects found in it, each pinned by a test that failed before its fix.

* An intent whose row the ``orders`` table cannot hold (a ``tag`` of None) was appended to the log, its
  ref returned (the order sent), and its row then silently dropped by ``INSERT OR IGNORE`` (which skips a
  NOT NULL violation as it skips a duplicate ref): the journal never knew the order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal
from copilot_quant.journal.intent_log import intent_log_path

from tests.journal.support import ACCOUNT, abandon, buy


# ---------------------------------------------------------------- a row the table cannot hold
@pytest.mark.parametrize("tag", [None, object()])
def test_an_intent_whose_row_the_table_cannot_hold_is_refused_before_it_is_sent(
    journal: TradeJournal, tag: object
) -> None:
    order = buy()
    order.tag = tag  # type: ignore[assignment]
    with pytest.raises(JournalError, match=r"tag .* must be a string"):
        journal.record_intent(order)
    assert intent_log_path(journal.path).stat().st_size == 0  # nothing on the disk, nothing to send
    ok = journal.record_intent(buy("MSFT"))  # the journal goes on
    assert [o.order_ref for o in journal.orders()] == [ok]


def test_a_numeric_tag_is_kept_as_text_as_sqlite_kept_it(journal: TradeJournal) -> None:
    order = buy()
    order.tag = 7  # type: ignore[assignment]
    ref = journal.record_intent(order)
    assert journal.order(ref).tag == "7"


def test_a_logged_row_that_does_not_fit_stops_the_open_instead_of_vanishing(journal_path: Path) -> None:
    journal = TradeJournal(journal_path, account=ACCOUNT)
    journal.record_intent(buy())
    abandon(journal)
    # A line another version (or a damaged disk) left with a NULL tag: recovering it must not skip it.
    row = json.loads(intent_log_path(journal_path).read_bytes().splitlines()[0])
    row[0], row[11] = row[0][:-4] + "NULL", None  # another ref; the tag (column 12) the table refuses
    with intent_log_path(journal_path).open("ab") as log_file:
        log_file.write(json.dumps(row).encode() + b"\n")
    with pytest.raises(JournalError, match=r"recover the intents .* NOT NULL"):
        TradeJournal(journal_path)
