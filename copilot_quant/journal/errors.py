"""Journal-specific refinements of :class:`copilot_quant.errors.JournalError`."""

from __future__ import annotations

from copilot_quant.errors import JournalError

__all__ = ["EXEC_ID_REUSED", "JournalError", "JournalFullError", "UnknownOrderRefError"]

#: ``errors.code`` of the journal's own alert that the broker reported an execution id already journaled
#: for another order (IB's codes are positive; this one is the journal's, not IB's).
EXEC_ID_REUSED = -1


class UnknownOrderRefError(JournalError):
    """An ``order_ref`` the journal never issued: record the intent first, or check the ref's origin.

    Unlike a storage failure this does not mean the journal is unusable: the engine may simply have seen
    an order placed outside it (by hand in TWS), which it must report rather than adopt.
    """

    def __init__(self, order_ref: str) -> None:
        super().__init__(
            f"the journal has no order with order_ref {order_ref!r}; call record_intent() before recording "
            "its submission, status or fills (orders placed outside the engine are reported by reconcile(), "
            "never journaled as ours)"
        )
        self.order_ref = order_ref


class JournalFullError(JournalError):
    """The journal's ``max_bytes`` cap leaves no room for an order's intent: the order was not sent.

    Raised by ``record_intent`` before anything is sent, while the cap still leaves room for what follows
    the orders already sent (their acknowledgements, fills, cancellations) and for the refused orders,
    journaled as rejected. Trading must halt (as for any :class:`JournalError`) until the cap is raised.
    """
