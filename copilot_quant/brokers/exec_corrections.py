"""IB execution corrections: an ``execId`` that differs from an earlier one only after its last ``.``.

IB's API docs (``Execution.ExecId``): "A correction is indicated by an ExecId which differs from a previous
ExecId in only the digits after the final period, e.g. an ExecId ending in '.02' would be a correction of a
previous execution with an ExecId ending in '.01'." The project reads a correction as *replacing* the
earlier execution (the conventional reading; IB does not say more): the order's filled quantity and average
price are recomputed from the corrected execution, and the signed difference is reported as an
:class:`ExecutionCorrection` — never as a second fill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from copilot_quant.backtest.orders import Order, OrderSide

__all__ = ["ExecutionCorrection", "exec_id_base", "supersedes"]


def exec_id_base(exec_id: str) -> str:
    """The part of ``exec_id`` before its last ``.`` (the whole id when it has none)."""
    head, dot, _ = exec_id.rpartition(".")
    return head if dot else exec_id


def _suffix(exec_id: str) -> tuple[int, str]:
    tail = exec_id.rpartition(".")[2]
    return (int(tail), tail) if tail.isdigit() else (-1, tail)


def supersedes(new_id: str, old_id: str) -> bool:
    """Whether ``new_id`` corrects ``old_id``: the same id up to the last ``.``, a higher suffix after it."""
    if new_id == old_id or "." not in new_id or exec_id_base(new_id) != exec_id_base(old_id):
        return False
    return _suffix(new_id) > _suffix(old_id)


@dataclass(frozen=True, slots=True)
class ExecutionCorrection:
    """IB corrected an execution of ``order`` that was already delivered as a fill.

    ``quantity_delta`` is signed in the order's direction (positive: more shares were bought for a buy
    order / sold for a sell order than first reported). ``cash_delta`` is the change in the order's traded
    notional (``new_quantity × new_price − old_quantity × old_price``), positive when more money changed
    hands.
    """

    order: Order
    replaced_exec_id: str
    exec_id: str
    old_quantity: float
    new_quantity: float
    old_price: float
    new_price: float
    time: datetime

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def quantity_delta(self) -> float:
        return self.new_quantity - self.old_quantity

    @property
    def signed_quantity_delta(self) -> float:
        """The position change the correction causes (negative for a sell order's extra shares)."""
        return self.quantity_delta * OrderSide(self.order.side).sign

    @property
    def cash_delta(self) -> float:
        return self.new_quantity * self.new_price - self.old_quantity * self.old_price

    def describe(self) -> str:
        return (
            f"IB corrected execution {self.replaced_exec_id} of order {self.order.order_id} "
            f"({self.order.side} {self.symbol}) with {self.exec_id}: {self.old_quantity:g} @ {self.old_price:g} "
            f"became {self.new_quantity:g} @ {self.new_price:g} (quantity {self.quantity_delta:+g})"
        )
