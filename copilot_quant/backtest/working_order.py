"""A backtest's working order and what the order book hands its caller: the order with its matching state
(:class:`WorkingOrder`), the booking callback (:class:`Booker`), a bar's executor (``BarExecutor``) and the
volume limit as the book applies it (:class:`VolumeCap`).

The book that holds them is :mod:`copilot_quant.backtest.order_book`, which re-exports ``WorkingOrder`` and
``Booker`` (their import path before they moved here).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from copilot_quant.model.fill_rules import Execution, Located, TrailState, locate_order, locate_trailing
from copilot_quant.model.orders import Order, OrderStatus
from copilot_quant.model.participation import VolumeAllowance, is_whole

if TYPE_CHECKING:
    from copilot_quant.backtest.brackets import Bracket

__all__ = ["BarExecutor", "Booker", "VolumeCap", "WorkingOrder", "finish_order"]

# The order book's logger: these lines were the book's before they moved here, and users filter on its name.
log = logging.getLogger("copilot_quant.backtest.order_book")


@dataclass(slots=True, eq=False)
class WorkingOrder:
    """An order waiting to execute: its owner, its symbol's column, and the first bar it may use."""

    order: Order
    owner: int
    symbol_index: int
    first_bar: int
    triggered: bool = False
    #: A trailing order's moving stop (and limit once triggered); None for other orders.
    trail: TrailState | None = None
    #: A good-till-date order expires after this bar (the first whose time reaches its good_till).
    expires_bar: int | None = None
    #: The bracket this order is the entry or an exit of (None: not in a bracket).
    bracket: Bracket | None = None

    def locate(
        self, path: tuple[float, ...] | list[float], width: int = 0, tick: float | None = None
    ) -> Located:
        """Where this order executes on ``path`` (its fill rule, with its kept state, and the bar's spread
        ``width`` in ticks of ``tick``, None: the US stock grid), and update the state."""
        if self.trail is None:
            self.triggered, execution, at = locate_order(self.order, path, self.triggered, width, tick)
        else:
            self.triggered, execution, at = locate_trailing(
                self.order, path, self.triggered, self.trail, width, tick
            )
        return self.triggered, execution, at


class Booker(Protocol):
    """Books one execution: all that is left of the order (``quantity`` None), or ``quantity`` of it.

    Afterwards the order is filled, partly filled (only with a ``quantity``) or rejected.
    """

    def __call__(
        self, working: WorkingOrder, execution: Execution, quantity: float | None = None, /
    ) -> None: ...


#: ``execute(bar, opens, highs, lows, closes, session_end, book)``: match and book one bar.
BarExecutor = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool, Booker], None]


@dataclass(slots=True)
class VolumeCap:
    """The volume limit as the book applies it: the bars' volumes and the open bar's allowance."""

    volumes: np.ndarray
    allowance: VolumeAllowance
    #: The bar whose allowance is open; orders filled at a bar's close share that bar's.
    bar: int = -1

    def size(self, bar: int, working: WorkingOrder) -> float:
        """How much of ``working`` may fill on bar ``bar`` now."""
        allowance, s, order = self.allowance, working.symbol_index, working.order
        if bar != self.bar:
            allowance.clear()
            self.bar = bar
        if not allowance.is_open(s):
            allowance.open_bar(s, self.volumes.item(bar, s))
        return allowance.size(s, order.quantity - order.filled_quantity, is_whole(order.quantity))


def finish_order(order: Order, status: OrderStatus, reason: str) -> None:
    """End a working order with ``status`` (cancelled, expired, ...) and say why on the order."""
    order.status = status
    order.reject_reason = reason
    log.debug("order %s %s: %s", order.order_id, status.value, reason)
