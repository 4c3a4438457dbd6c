"""What a strategy returned from ``on_data``/``on_bar`` in a backtest, submitted: each order checked, routed,
recorded and handed to the order book (the timing contract is :mod:`copilot_quant.backtest.engine`'s).

An order is refused by name when it cannot work: not a fresh :class:`~copilot_quant.model.orders.Order`
(recorded as the strategy's error), a symbol without bars, a contract past its last trade date, a
good-till date that has passed, or what the book refuses (a bracket exit without its entry, an OCA group
clash). Refused orders are ``REJECTED`` with the reason and stay in the run's record.

Most orders a strategy returns are alone in their list and plain (no good-till date, not immediate-or-
cancel) in a run without continuous futures, per-strategy books or ``fill_at='close'``: :meth:`OrderIntake.
submit` takes them in a few steps; everything else goes through the same checks one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from copilot_quant.backtest.books import StrategyBooks
from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.order_book import Booker, OrderBook
from copilot_quant.backtest.order_requests import expiry_bar
from copilot_quant.backtest.rolls import ContinuousRouter, Expiries
from copilot_quant.backtest.working_order import WorkingOrder
from copilot_quant.errors import StrategyError
from copilot_quant.model.orders import Order, OrderStatus, TimeInForce

__all__ = ["OrderIntake"]

_CREATED, _IOC = OrderStatus.CREATED, TimeInForce.IOC

#: ``record_error(owner, exc, hook, ts)``: a strategy's error, recorded and counted.
ErrorRecorder = Callable[[int, Exception, str, datetime | None], None]


class OrderIntake:
    """Submits the orders of one run's strategies (see the module docstring).

    Args:
        market: the run's bars.
        book: the working orders.
        broker: the account (it records refused orders).
        orders: the run's record of submitted orders, appended to.
        owners: order id -> index of the strategy that submitted it, filled in.
        books: per-strategy books (several strategies), else None.
        router: the continuous-future router, else None.
        expiries: the contracts' last trade dates, else None.
        at_close: ``fill_at='close'``: each new order is first offered the bar's close.
        names: the strategies' names, for messages.
        record_error: records a strategy's error.
        book_fill: books an execution (an order offered the bar's close may execute at once).
    """

    __slots__ = (
        "_at_close",
        "_book",
        "_book_fill",
        "_books",
        "_broker",
        "_closes",
        "_expiries",
        "_market",
        "_names",
        "_orders",
        "_owners",
        "_plain",
        "_record_error",
        "_router",
        "_symbol_index",
    )

    def __init__(
        self,
        *,
        market: MarketData,
        book: OrderBook,
        broker: SimpleBroker,
        orders: list[Order],
        owners: dict[str | None, int],
        books: StrategyBooks | None,
        router: ContinuousRouter | None,
        expiries: Expiries | None,
        at_close: bool,
        names: list[str],
        record_error: ErrorRecorder,
        book_fill: Booker,
    ) -> None:
        self._market = market
        self._book = book
        self._broker = broker
        self._orders = orders
        self._owners = owners
        self._books = books
        self._router = router
        self._expiries = expiries
        self._at_close = at_close
        self._names = names
        self._record_error = record_error
        self._book_fill = book_fill
        self._symbol_index = market.symbol_index
        self._closes = market.closes
        #: Nothing in this run routes, expires, books per strategy or offers the close to a new order.
        self._plain = router is None and expiries is None and books is None and not at_close

    def submit(self, owner: int, orders: Any, bar: int, ts: datetime) -> None:
        """Submit what strategy ``owner`` returned at bar ``bar`` (time ``ts``): a list of orders, one
        order, or something else (recorded as the strategy's error)."""
        if type(orders) is not list:
            orders = self._as_list(owner, orders, ts)
            if orders is None:
                return
        if len(orders) == 1 and self._plain:  # the usual return: one order, in a plain run
            order = orders[0]
            if (
                type(order) is Order
                and order.status is _CREATED
                and order.good_till is None
                and order.time_in_force is not _IOC
            ):
                k = self._symbol_index.get(order.symbol)
                if k is not None:  # else refused below, with the symbols this run has
                    if order.timestamp is None:
                        order.timestamp = ts
                    self._orders.append(order)
                    self._owners[order.order_id] = owner
                    refused = self._book.enter(WorkingOrder(order, owner, k, bar + 1), self._closes, bar)
                    if refused is not None:
                        self._broker.reject(order, refused)
                    return
        # bracket entries whose exits come in this list (a lone order has none)
        entries = (
            {o.parent_id for o in orders if isinstance(o, Order) and o.parent_id} if len(orders) > 1 else None
        )
        for order in orders:
            self._submit_one(owner, order, bar, ts, entries)

    def _as_list(self, owner: int, orders: Any, ts: datetime) -> list[Any] | None:
        if isinstance(orders, Order):
            return [orders]
        if isinstance(orders, list | tuple):
            return list(orders)
        self._record_error(
            owner,
            StrategyError(
                f"{self._names[owner]} returned {type(orders).__name__}; return a list of Order objects or None"
            ),
            "on_data",
            ts,
        )
        return None

    def _submit_one(self, owner: int, order: Any, bar: int, ts: datetime, entries: set[str] | None) -> None:
        """Submit ``order``; ``entries``: the bracket entries whose exits come in the same list."""
        if not (type(order) is Order and order.status is _CREATED) and not self._submittable(
            owner, order, ts
        ):
            return
        if order.timestamp is None:
            order.timestamp = ts
        books, broker, market = self._books, self._broker, self._market
        if self._router is not None:  # an order closing an earlier contract: the strategy's own position
            held = books.books[owner].quantity if books is not None else broker.position_quantity
            self._router.route(order, bar, held)
        self._orders.append(order)
        self._owners[order.order_id] = owner
        if books is not None:
            books.orders[owner].append(order)
        k = self._symbol_index.get(order.symbol)
        if k is None:
            broker.reject(
                order,
                f"no price data for {order.symbol} in this backtest (symbols: {', '.join(market.symbols)}); "
                "add it to run(symbols=[...])",
            )
            return
        last = self._expiries.expired(order.symbol, bar) if self._expiries is not None else None
        if last is not None:
            broker.reject(order, f"{order.symbol} stopped trading on {last} (its last trade date)")
            return
        working = WorkingOrder(order, owner, k, bar + 1)
        if order.good_till is not None:
            working.expires_bar = expiry_bar(market, order.good_till)
            if (
                working.expires_bar is not None and working.expires_bar <= bar
            ):  # as IB: a passed date is refused
                broker.reject(order, f"good_till {order.good_till} is not after now ({ts})")
                return
        book = self._book
        immediate, at_close = order.time_in_force is _IOC, self._at_close
        opens_bracket = bool(entries) and order.order_id in entries  # type: ignore[operator]
        if not (immediate or at_close or opens_bracket):  # admitted and added at once
            refused = book.enter(working, self._closes, bar)
            if refused is not None:
                broker.reject(order, refused)
            return
        refused = book.admit(working, self._closes.item(bar, k))
        if refused is not None:
            broker.reject(order, refused)
            return
        if opens_bracket:
            book.open_bracket(working)  # its exits follow in this list
        if immediate or at_close:
            price = self._closes.item(bar, k)
            if price == price and book.try_now(working, price, self._book_fill, bar):  # noqa: PLR0124 - NaN test
                return
            if order.status.is_done:
                return
            if immediate:  # what the current price did not fill is cancelled at once
                book.finish_immediate(order)
                return
        book.add(working)

    def _submittable(self, owner: int, order: Any, ts: datetime) -> bool:
        """Whether ``order`` (not a fresh ``Order``, or a subclass) may be submitted; records why not."""
        if isinstance(order, Order) and order.status is _CREATED:
            return True
        what = (
            f"an order that was already submitted ({order.order_id}); build a new Order or use order.copy()"
            if isinstance(order, Order)
            else f"a {type(order).__name__} in its order list; return Order objects"
        )
        self._record_error(owner, StrategyError(f"{self._names[owner]} returned {what}"), "on_data", ts)
        return False
