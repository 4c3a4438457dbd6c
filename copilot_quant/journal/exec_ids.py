"""The journaled execution ids, in memory: what lets the IB loop thread ask "is this fill known?" without
disk I/O and without waiting behind a write in progress.

An id counts as journaled only once its transaction committed: ids recorded inside an open batch are held
aside (:meth:`ExecIdIndex.begin_batch`) and remembered only when the batch commits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from enum import Enum
from typing import Literal

__all__ = ["ANY_ORDER", "AnyOrder", "ExecIdIndex", "OrderRefOrAny"]


class AnyOrder(Enum):
    """Type of :data:`ANY_ORDER`."""

    ANY = "any"


#: ``order_ref`` meaning "whichever order" in :meth:`TradeJournal.knows_fill` and friends.
ANY_ORDER = AnyOrder.ANY
OrderRefOrAny = str | None | Literal[AnyOrder.ANY]
ExecKey = tuple[str, str | None]  # (exec id, order ref)


class ExecIdIndex:
    """Execution id -> the order refs it is journaled for; empty until :meth:`load` ran."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str | None]] | None = None
        self._lock = threading.Lock()  # guards _ids alone, so a lookup never waits for a commit
        self._pending: list[ExecKey] | None = None  # recorded in the open batch, not committed yet

    @property
    def loaded(self) -> bool:
        with self._lock:
            return self._ids is not None

    def knows(self, exec_id: str, order_ref: OrderRefOrAny) -> bool:
        """Whether ``exec_id`` is journaled for ``order_ref`` (or for any order); False before :meth:`load`."""
        with self._lock:
            refs = (self._ids or {}).get(str(exec_id))
            if not refs:
                return False
            return order_ref is ANY_ORDER or (order_ref or None) in refs

    def load(self, rows: Iterable[ExecKey]) -> set[str]:
        """Fill the index from the journal's ``(exec_id, order_ref)`` rows; returns the ids.

        Rows the open batch wrote are skipped: read inside that batch's transaction, they are not
        committed yet.
        """
        pending = set(self._pending or ())
        ids: dict[str, set[str | None]] = {}
        for exec_id, order_ref in rows:
            if (str(exec_id), order_ref) not in pending:
                ids.setdefault(str(exec_id), set()).add(order_ref)
        with self._lock:
            self._ids = ids
        return set(ids)

    def ids(self) -> set[str]:
        with self._lock:
            return set(self._ids or ())

    def recorded(self, exec_id: str, order_ref: str | None) -> None:
        """A fill was written: remember it now, or when the open batch commits."""
        if self._pending is not None:
            self._pending.append((str(exec_id), order_ref))
        else:
            self.remember([(str(exec_id), order_ref)])

    def begin_batch(self) -> None:
        self._pending = []

    def end_batch(self) -> list[ExecKey]:
        """Close the batch; returns its fills, to :meth:`remember` if (and only if) it committed."""
        committed, self._pending = self._pending or [], None
        return committed

    def remember(self, fills: Iterable[ExecKey]) -> None:
        with self._lock:
            if self._ids is not None:
                for exec_id, order_ref in fills:
                    self._ids.setdefault(exec_id, set()).add(order_ref)
