"""What the broker adapter reports about unusual executions: corrections and reused execution ids.

An execution correction is journaled as an error and an alert, with a fill of the added shares under the
correction's ``execId`` when shares were added (the journal holds no negative fills). An execution id
already used by another order is still a fill of this order (delivered, never dropped); the message says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.order_tracking import OrderTracker, TrackedOrder
from copilot_quant.errors import JournalError
from copilot_quant.journal import TradeJournal

__all__ = ["EXEC_CORRECTED", "journal_correction", "reused_exec_id_message"]

#: Journal error code of an execution correction (IB sends none; negative codes are the project's own).
EXEC_CORRECTED = -2

JournalWrite = Callable[[Callable[[TradeJournal], Any]], None]


def journal_correction(write: JournalWrite, record: TrackedOrder, correction: ExecutionCorrection) -> None:
    """Journal ``correction`` of ``record``'s execution through ``write`` (the adapter's journal writer)."""
    if not record.order_ref:
        return
    ref, side, message = record.order_ref, record.order.side, correction.describe()
    write(lambda j: j.record_error(ref, EXEC_CORRECTED, message))
    write(lambda j: j.record_event("alert", message))
    if correction.quantity_delta > 0:
        write(
            lambda j: j.record_fill(
                ref,
                correction.exec_id,
                correction.symbol,
                side,
                correction.quantity_delta,
                correction.new_price,
                correction.time,
                0.0,
            )
        )


def reused_exec_id_message(
    tracker: OrderTracker, record: TrackedOrder, exec_id: str, journal: TradeJournal | None
) -> str | None:
    """The error to report when IB gave ``exec_id`` to ``record`` but another order (tracked, or in the
    journal) already had it; ``None`` when the id is new. IB never reuses execution ids."""
    others = [r.order_ref or str(r.order.order_id) for r in tracker.other_orders(exec_id, record)]
    if not others and journal is not None and record.order_ref:
        try:
            if journal.knows_fill(exec_id) and not journal.knows_fill(exec_id, record.order_ref):
                others = ["an earlier order in the journal"]
        except JournalError:
            return None  # the journal's failure is reported where the fill is journaled
    if not others:
        return None
    return (
        f"IB reported execution id {exec_id} for this order, but it was already used by "
        f"{', '.join(others)}; delivered as a new fill. IB never reuses execution ids: check that the "
        "gateway and the journal belong to the same account"
    )
