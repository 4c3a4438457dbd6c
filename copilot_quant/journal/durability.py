"""How durable a journal record is once it is committed: the journal's durability policy.

Two levels:

* :attr:`Durability.SYNCED` — on the disk before the write counts as done: the write-ahead log is synced
  right after the commit (what SQLite's ``synchronous=FULL`` does in WAL mode; the storage does it itself,
  so that the connection never switches settings, :mod:`~copilot_quant.journal.storage`). It survives a
  power loss.
* :attr:`Durability.CRASH_SAFE` — handed to the operating system before the write counts as done
  (``synchronous=NORMAL``: the log is written, not synced). It survives a crash or a SIGKILL of the
  process (the operating system still writes its page cache out), not a power loss or a kernel crash
  until the next synced commit, sync or checkpoint carries it to the disk — every one syncs the whole log.

The policy, **crash-safe fills** (:data:`FILL_DURABILITY`): a fill is ``CRASH_SAFE``; everything else —
an order's intent (durable *before* the order is sent: synced to the journal's intent log, and
SQLite's commit of its row follows, :mod:`~copilot_quant.journal.intent_log`), the broker's
acknowledgements and statuses, commissions, errors, events — is ``SYNCED``.

Why fills may be: a fill is a fact IB keeps, and reconciliation re-reads IB's executions at every start
(:mod:`copilot_quant.journal.reconcile`), so a fill a power loss took from the journal is found again,
journaled and delivered to ``on_fill`` once. What it buys: the engine hands a fill to ``on_fill`` only
once the journal committed it, and a fill usually arrives just before the bar the strategy then decides
on, so its commit is on the path from a bar to its orders; without its own fsync that path has one disk
sync (the intent's) instead of two in a row. The trade-off, stated: after a power loss (not after a crash)
a strategy may have been told of a fill the journal has lost until the restart's reconciliation restores it.

Where the commits happen (the policy is the same either way): with the live engine's inline dispatch (its
default, :mod:`copilot_quant.live.inline`) a fill reaches ``on_fill`` on IB's loop thread as it arrives
and is committed just after, on the journal writer thread (its write is *staged*,
:mod:`copilot_quant.brokers.fill_gate`): a fill usually comes in the same burst of IB's messages as the bar
the strategy then decides on, so the fill's commit follows that bar's orders. The bar's intents are
appended to the intent log and synced on the loop thread just before their orders are sent: the path from
a bar to its orders holds one disk sync (the intents') and no SQLite commit nor thread hand-off. A crash between a fill's
delivery and its commit loses it from the journal only: IB keeps it, and the restart's reconciliation
journals it as a fill that came while the engine was down. Everything else IB reports is committed on the
journal writer thread, off that path. Without inline dispatch a fill reaches ``on_fill`` once committed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["FILL_DURABILITY", "Durability"]


class Durability(StrEnum):
    """When a committed journal record is safe (see the module docstring)."""

    SYNCED = "synced"
    CRASH_SAFE = "crash-safe"

    @property
    def pragma(self) -> str:
        """SQLite's ``synchronous`` setting (WAL mode) that gives this durability at the commit (the journal
        runs with CRASH_SAFE's and syncs a SYNCED commit's log itself)."""
        return "FULL" if self is Durability.SYNCED else "NORMAL"


#: The journal's durability policy, "crash-safe fills": fills are CRASH_SAFE, every other record SYNCED.
FILL_DURABILITY: Final = Durability.CRASH_SAFE
