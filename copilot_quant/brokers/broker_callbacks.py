"""The broker adapter's callback lists: fills, order errors, execution corrections, journal failures.

They are kept by the adapter, not by ib_async, so they survive reconnects. Each callback is guarded: one
that raises is logged and the others still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from copilot_quant.backtest.orders import Fill
from copilot_quant.brokers.exec_corrections import ExecutionCorrection
from copilot_quant.brokers.order_tracking import TrackedOrder
from copilot_quant.errors import JournalError

__all__ = [
    "BrokerCallbacks",
    "CorrectionCallback",
    "ErrorCallback",
    "FillCallback",
    "JournalFailureCallback",
]

log = logging.getLogger(__name__)

FillCallback = Callable[[Fill], Any]
ErrorCallback = Callable[[TrackedOrder, str], Any]
CorrectionCallback = Callable[[ExecutionCorrection], Any]
JournalFailureCallback = Callable[[JournalError], Any]

_C = TypeVar("_C", bound=Callable[..., Any])


def _call_all(callbacks: list[_C], kind: str, *args: Any) -> None:
    for callback in list(callbacks):
        try:
            callback(*args)
        except Exception:
            log.exception("%s callback %r failed", kind, callback)


class BrokerCallbacks:
    """The registered callbacks, and their guarded calls."""

    def __init__(self) -> None:
        self.fill: list[FillCallback] = []  # run on the IB loop thread
        self.fill_anywhere: list[FillCallback] = []  # thread-safe: run on whichever thread has the fill
        self.error: list[ErrorCallback] = []
        self.correction: list[CorrectionCallback] = []
        self.journal_failure: list[JournalFailureCallback] = []

    def fill_arrived(self, fill: Fill) -> None:
        _call_all(self.fill, "fill", fill)

    def fill_arrived_anywhere(self, fill: Fill) -> None:
        _call_all(self.fill_anywhere, "fill", fill)

    def order_error(self, record: TrackedOrder, message: str) -> None:
        _call_all(self.error, "error", record, message)

    def corrected(self, correction: ExecutionCorrection) -> None:
        _call_all(self.correction, "correction", correction)

    def journal_failed(self, error: JournalError) -> None:
        _call_all(self.journal_failure, "journal failure", error)
