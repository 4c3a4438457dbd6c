"""One strategy's place in the live engine: its orders, the cancels it asked for, and the orders held back.

A slot knows which orders are its strategy's (by object: ids are the strategy's to choose and may repeat),
which of them it asked to cancel, the cancels that could not be sent yet (retried once connected), and the
orders held back while the market is closed (``outside_hours='hold'``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from copilot_quant.backtest.strategy import CANCELLED_BY_STRATEGY, Strategy
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import ConfigError, StrategyError
from copilot_quant.model.book import StrategyBook
from copilot_quant.model.orders import Order, OrderStatus

__all__ = ["DEFAULT_HISTORY", "StrategySlot", "claims"]

log = logging.getLogger(__name__)

_WORKING = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
#: Finished orders a slot keeps (for ``cancel`` by id and inspection); the journal keeps them all.
DEFAULT_HISTORY = 1000


class StrategySlot:
    """A strategy and its orders in this run (worker thread only, except where noted)."""

    __slots__ = (
        "_ids",
        "book",
        "cancel_requested",
        "capital",
        "held",
        "history",
        "orders",
        "strategy",
        "unsent_cancels",
    )

    def __init__(
        self, strategy: Strategy, history: int = DEFAULT_HISTORY, capital: float | None = None
    ) -> None:
        if history < 1:
            raise ConfigError(f"history must be 1 or more finished orders to keep, got {history}")
        self.strategy = strategy
        #: The capital share asked for with ``add_strategy(capital=)`` (None: an equal share of the rest).
        self.capital = capital
        #: The strategy's own positions and P&L, from its fills (and the journal's, at start).
        self.book = StrategyBook(0.0, strategy.name)
        #: How many finished orders :attr:`orders` keeps besides the working ones.
        self.history = int(history)
        #: The strategy's orders in submission order: every working one, and the last :attr:`history`
        #: finished ones (a session of many orders does not grow it without bound).
        self.orders: list[Order] = []
        #: ``id(order)`` of every order in :attr:`orders` (each alive there, so no id repeats): which fill is
        #: whose is asked on every fill, and a list scan grew with the session.
        self._ids: set[int] = set()
        #: ``id(order)`` of the orders whose cancel the strategy requested.
        self.cancel_requested: set[int] = set()
        #: Cancels that could not be sent yet (connection down), by ``id(order)``.
        self.unsent_cancels: dict[int, Order] = {}
        #: Orders held back while the market is closed, oldest first.
        self.held: list[Order] = []

    @property
    def name(self) -> str:
        return self.strategy.name

    def reset(self) -> None:
        """Forget the orders and fills of an earlier run (``start`` begins a new one)."""
        self.book = StrategyBook(0.0, self.strategy.name)
        self.orders.clear()
        self._ids.clear()
        self.cancel_requested.clear()
        self.unsent_cancels.clear()
        self.held.clear()

    def owns(self, order: Order) -> bool:
        return id(order) in self._ids

    def add(self, order: Order) -> None:
        self.orders.append(order)
        self._ids.add(id(order))
        if len(self.orders) > 2 * self.history:
            self._trim()

    def _trim(self) -> None:
        """Keep the working (and held) orders and the last :attr:`history` finished ones."""
        done = [o for o in self.orders if o.status.is_done and not self.is_held(o)]
        drop = {id(o) for o in done[: len(done) - self.history]}
        if not drop:
            return
        self.orders = [o for o in self.orders if id(o) not in drop]
        self._ids -= drop
        # ids of dropped objects may be reused by new ones: forget them everywhere
        self.cancel_requested -= drop
        for key in drop:
            self.unsent_cancels.pop(key, None)

    def open_orders(self) -> list[Order]:
        """``strategy.open_orders()``: working (or held back) and not being cancelled, oldest first."""
        requested = self.cancel_requested
        return [
            order
            for order in self.orders
            if id(order) not in requested
            and (order.status in _WORKING or (order.status is OrderStatus.CREATED and self.is_held(order)))
        ]

    def is_held(self, order: Order) -> bool:
        return any(h is order for h in self.held)

    def find(self, order: Order | str) -> Order | None:
        """The strategy's order: this very object, or the latest one with this ``order_id``."""
        if isinstance(order, Order):
            return order if self.owns(order) else None
        return next((o for o in reversed(self.orders) if o.order_id == order), None)

    def cancel(self, order: Order | str, broker: LiveBrokerAdapter) -> None:
        """``strategy.cancel(order)``: send the cancel to IB now (see the engine's docstring)."""
        name = self.name
        order_id = str(order.order_id) if isinstance(order, Order) else order
        target = self.find(order)
        if target is None:
            raise StrategyError(
                f"{name}.cancel({order_id!r}): unknown order; this strategy submitted no order with this id in "
                "this run, and none from an earlier run is still working at IB (orders count as submitted "
                "once on_data has returned them)"
            )
        held = next((i for i, h in enumerate(self.held) if h is target), None)
        if held is not None:  # never sent: it simply is not sent
            del self.held[held]
            target.status = OrderStatus.CANCELLED
            target.reject_reason = CANCELLED_BY_STRATEGY
            log.info(
                "%s cancelled order %s before it was sent (held while the market is closed)", name, order_id
            )
            return
        requested = id(target) in self.cancel_requested
        if requested or target.status not in _WORKING:
            state = "being cancelled" if requested else f"already {target.status.value}"
            log.info("%s.cancel(%r): the order is %s; nothing to cancel", name, order_id, state)
            return
        self.cancel_requested.add(id(target))
        if broker.cancel_order(target, reason=CANCELLED_BY_STRATEGY):
            log.info("%s asked IB to cancel order %s", name, order_id)
        elif not target.status.is_done:
            self.unsent_cancels[id(target)] = target
            log.warning(
                "the cancel of order %s could not be sent to IB; it is retried when connected", order_id
            )

    def retry_cancels(self, broker: LiveBrokerAdapter) -> None:
        """Send the cancels that could not be sent earlier (worker thread, connected)."""
        for key, order in list(self.unsent_cancels.items()):
            if order.status.is_done or broker.cancel_order(order, reason=CANCELLED_BY_STRATEGY):
                del self.unsent_cancels[key]


def claims(slots: Sequence[StrategySlot]) -> dict[str, dict[str, float]]:
    """Each strategy's positions by its own book (the kill switch splits by them). A kill from another
    thread may read a book while the worker books a fill into it: then it reads again."""
    for _ in range(10):
        try:
            return {s.name: {sym: p.quantity for sym, p in s.book.positions().items()} for s in slots}
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return {}
