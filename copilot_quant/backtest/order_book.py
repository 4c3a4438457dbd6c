"""Working orders of a backtest: which orders may execute on a bar, and when DAY orders expire.

The book only decides *where* an order executes (via :mod:`copilot_quant.backtest.execution`); the
caller books each execution through the broker, one at a time and in submission order, so buying
power always reflects the fills before it on the same bar.

A strategy's cancel (:meth:`OrderBook.cancel`) is immediate: the order is ``CANCELLED`` at once and
leaves the book, or — when it comes from ``on_fill`` while a bar is matched — is skipped for the rest of
that bar and dropped when the bar is done. The bar loops pay nothing for this when nobody cancels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from copilot_quant.backtest.execution import Execution, match_order, price_path
from copilot_quant.backtest.orders import Order, OrderStatus, TimeInForce

__all__ = ["OrderBook", "WorkingOrder"]

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class WorkingOrder:
    """An order waiting to execute: its owner, its symbol's column, and the first bar it may use."""

    order: Order
    owner: int
    symbol_index: int
    first_bar: int
    triggered: bool = False


#: Books one execution; the order is done afterwards (filled or rejected).
Booker = Callable[[WorkingOrder, Execution], None]


class OrderBook:
    """Orders submitted but not yet done, in submission order."""

    __slots__ = ("_purge", "pending")

    def __init__(self) -> None:
        #: The working orders, oldest first. The list object never changes, so a bar loop can hold it
        #: and test ``if pending:`` cheaply; only this class changes its contents.
        self.pending: list[WorkingOrder] = []
        # True when an order was cancelled while a bar was matched: drop it once the bar is done.
        self._purge = False

    def __len__(self) -> int:
        return len(self.pending)

    def __bool__(self) -> bool:
        return bool(self.pending)

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(self.pending)

    def add(self, working: WorkingOrder) -> None:
        working.order.status = OrderStatus.SUBMITTED
        self.pending.append(working)

    def execute_bar(  # noqa: PLR0917 - one call per bar on the hot path: positional is cheapest
        self,
        bar: int,
        opens: np.ndarray,
        highs: np.ndarray,
        lows: np.ndarray,
        closes: np.ndarray,
        session_end: bool,
        book: Booker,
    ) -> None:
        """Match every eligible order against bar ``bar`` (rows of ``(bars, symbols)`` price arrays),
        book the executions with ``book``, then expire DAY orders whose session ends with this bar."""
        keep: list[WorkingOrder] = []
        for working in self.pending:
            if working.first_bar > bar:
                keep.append(working)
                continue
            s = working.symbol_index
            open_ = opens.item(bar, s)  # .item: a Python float straight from the array, no numpy scalar
            if open_ != open_:  # noqa: PLR0124 - NaN test without a call: this symbol has no bar here, the order keeps waiting
                execution = None
            else:
                path = price_path(open_, highs.item(bar, s), lows.item(bar, s), closes.item(bar, s))
                working.triggered, execution = match_order(working.order, path, working.triggered)
            if execution is not None:
                if working.order.status is OrderStatus.CANCELLED:
                    continue  # cancelled from on_fill earlier in this bar: it never fills
                book(working, execution)
                if working.order.status.is_done:
                    continue
            if session_end and working.order.time_in_force == TimeInForce.DAY:
                if working.order.status.is_active:  # not cancelled from on_fill in this bar
                    self._finish(
                        working.order, OrderStatus.EXPIRED, "day order unfilled at the end of its session"
                    )
                continue
            keep.append(working)
        if self._purge:
            self._purge = False
            keep = [w for w in keep if w.order.status.is_active]
        self.pending[:] = keep

    def try_now(self, working: WorkingOrder, price: float, book: Booker) -> bool:
        """Offer ``price`` (a one-point path) to a new order; True if it executed and is done."""
        working.triggered, execution = match_order(working.order, (price,), working.triggered)
        if execution is None:
            return False
        book(working, execution)
        return working.order.status.is_done

    def working_orders(self, owner: int) -> list[Order]:
        """The orders of ``owner`` that can still fill, in submission order."""
        return [w.order for w in self.pending if w.owner == owner and w.order.status.is_active]

    def cancel(self, order_id: str | None, reason: str, *, matching: bool = False) -> Order | None:
        """Cancel the working order ``order_id`` now (status ``CANCELLED`` with ``reason``) and return it;
        ``None`` if no such order can still fill. ``matching``: a bar is being matched (the call comes
        from ``on_fill``), so the order stays in the list, skipped, until :meth:`execute_bar` ends."""
        pending = self.pending
        for i, working in enumerate(pending):
            order = working.order
            if order.order_id == order_id and order.status.is_active:
                self._finish(order, OrderStatus.CANCELLED, reason)
                if matching:
                    self._purge = True
                else:
                    del pending[i]
                return order
        return None

    def cancel_all(self, reason: str) -> list[Order]:
        """Cancel every working order (e.g. at the end of a backtest); returns them."""
        cancelled = [w.order for w in self.pending]
        for order in cancelled:
            self._finish(order, OrderStatus.CANCELLED, reason)
        self.pending.clear()
        return cancelled

    @staticmethod
    def _finish(order: Order, status: OrderStatus, reason: str) -> None:
        order.status = status
        order.reject_reason = reason
        log.debug("order %s %s: %s", order.order_id, status.value, reason)
