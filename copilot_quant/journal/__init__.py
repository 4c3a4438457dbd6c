"""The durable trade journal (SQLite, WAL mode, one file per account) and broker reconciliation.

::

    from copilot_quant.journal import TradeJournal

    with TradeJournal(account="DU1234567") as journal:
        ref = journal.record_intent(order, strategy="SmaCross")   # before sending; ref -> IB orderRef
        journal.record_submitted(ref, broker_order_id=17)
        if journal.record_fill(ref, exec_id, "AAPL", "buy", 10, 187.5, when):
            strategy.on_fill(fill)                               # exactly once per execution
"""

from copilot_quant.errors import JournalError
from copilot_quant.journal.errors import EXEC_ID_REUSED, JournalFullError, UnknownOrderRefError
from copilot_quant.journal.journal import ANY_ORDER, TradeJournal
from copilot_quant.journal.paths import JOURNAL_DIR_ENV, default_journal_dir, default_journal_path
from copilot_quant.journal.reconcile import (
    BrokerExecution,
    BrokerOrder,
    QuantityMismatch,
    ReconcileReport,
    StatusChange,
    reconcile,
)
from copilot_quant.journal.records import (
    ErrorRecord,
    EventKind,
    EventRecord,
    FillRecord,
    JournalOrder,
    StatusRecord,
)
from copilot_quant.journal.refs import is_journal_ref, new_order_ref
from copilot_quant.journal.schema import SCHEMA_VERSION
from copilot_quant.journal.states import JournalOrderState, OrderState

__all__ = [
    "ANY_ORDER",
    "EXEC_ID_REUSED",
    "JOURNAL_DIR_ENV",
    "SCHEMA_VERSION",
    "BrokerExecution",
    "BrokerOrder",
    "ErrorRecord",
    "EventKind",
    "EventRecord",
    "FillRecord",
    "JournalError",
    "JournalFullError",
    "JournalOrder",
    "JournalOrderState",
    "OrderState",
    "QuantityMismatch",
    "ReconcileReport",
    "StatusChange",
    "StatusRecord",
    "TradeJournal",
    "UnknownOrderRefError",
    "default_journal_dir",
    "default_journal_path",
    "is_journal_ref",
    "new_order_ref",
    "reconcile",
]
