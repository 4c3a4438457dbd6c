"""Working orders of a backtest: which orders may execute on a bar, and when DAY orders expire.

The book only decides *where* an order executes (via :mod:`copilot_quant.backtest.execution`); the
caller books each execution through the broker, one at a time and in submission order, so buying
power always reflects the fills before it on the same bar. A working order with its matching state, the
booking callback and the volume cap are :mod:`copilot_quant.backtest.working_order`.

A strategy's cancel (:meth:`OrderBook.cancel`, with modify and the other edits in
:mod:`copilot_quant.backtest.order_book_edits`) is immediate: the order is ``CANCELLED`` at once and
leaves the book, or — when it comes from ``on_fill`` while a bar is matched — is skipped for the rest of
that bar and dropped when the bar is done. The bar loops pay nothing for this when nobody cancels.

With a volume participation limit (:mod:`copilot_quant.backtest.participation`) the bar loops call a
capped twin of :meth:`OrderBook.execute_bar` (:meth:`OrderBook.bar_executor` picks one per run): every
eligible order is matched first, then the executions are booked in the order they happen on the bar's
path (submission order at the same point), each for at most what is left of its symbol's share of the
bar's volume. The remainder keeps working.

One-cancels-all groups (``Order.oca_group``, :mod:`copilot_quant.model.oca`, as at the gateway; the groups
are :mod:`copilot_quant.backtest.oca_groups`): while
any group member works, bars are matched in the order executions happen on the path (the capped loop's
order), and after each execution the group's other members are cancelled or reduced — at once with a
block (ocaType 1, 2), after every execution at the same path point without (ocaType 3).

Brackets (``Order.parent_id``, :mod:`copilot_quant.model.bracket`, :mod:`copilot_quant.backtest.brackets`)
are matched in path order too: an entry's exits are held until it fills, then work from the path point of
its fill on (offered that point's price first, as a gap), each for at most the bracket's exposure; once
the group is complete the exits still working are cancelled.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Sequence
from functools import partial

import numpy as np

from copilot_quant.backtest.brackets import Bracket, exit_refusal
from copilot_quant.backtest.oca_groups import OcaGroups
from copilot_quant.backtest.order_book_edits import OrderBookEdits
from copilot_quant.backtest.working_order import BarExecutor, Booker, VolumeCap, WorkingOrder, finish_order
from copilot_quant.model.fill_rules import (
    Execution,
    TrailState,
    auction_fill_price,
    match_order,
    price_path,
    trail_level,
)
from copilot_quant.model.order_terms import ON_CLOSE
from copilot_quant.model.orders import OrderStatus, OrderType, TimeInForce
from copilot_quant.model.participation import VolumeAllowance

# WorkingOrder and Booker moved to working_order; this is still their import path.
__all__ = ["BarExecutor", "Booker", "OrderBook", "WorkingOrder"]

log = logging.getLogger(__name__)

# enum members bound once: reading one off its class costs a descriptor call on every use
_MARKET, _CANCELLED = OrderType.MARKET, OrderStatus.CANCELLED
_CREATED, _SUBMITTED, _DAY = OrderStatus.CREATED, OrderStatus.SUBMITTED, TimeInForce.DAY
_DONE = frozenset(s for s in OrderStatus if s.is_done)
_TRAILING = frozenset(t for t in OrderType if t.is_trailing)
_OPG, _GTC = TimeInForce.OPG, TimeInForce.GTC
#: Order types :meth:`OrderBook.admit` prepares nothing for (no trailing stop to start, no auction).
_PLAIN_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT})
#: ``Execution(price, True)`` without the named tuple's Python-level ``__new__`` (one per market fill)
_new_tuple = tuple.__new__


class OrderBook(OrderBookEdits):
    """Orders submitted but not yet done, in submission order.

    Args:
        volumes: traded volume per bar and symbol, ``(bars, symbols)``; needed with ``volume_limit``.
        volume_limit: fraction of each bar's volume that may fill, per symbol (None = no limit).
        widths: the bid/ask spread of each bar and symbol in ticks, ``(bars, symbols)`` (None: no spread;
            see :mod:`copilot_quant.model.spread`).
        ticks: each symbol's tick size, in symbol order (None for a symbol on the US stock grid; None:
            every symbol is). A future's spread is in its own ticks (0.25 for MES), a pair's too.
    """

    __slots__ = ("_cap", "_session_opens", "_ticks", "_widths")  # the rest: OrderBookEdits's

    def __init__(
        self,
        volumes: np.ndarray | None = None,
        volume_limit: float | None = None,
        widths: np.ndarray | None = None,
        ticks: Sequence[float | None] | None = None,
    ) -> None:
        #: The working orders, oldest first. The list object never changes, so a bar loop can hold it
        #: and test ``if pending:`` cheaply; only this class changes its contents.
        self.pending: list[WorkingOrder] = []
        # True when an order was cancelled while a bar was matched: drop it once the bar is done.
        self._purge = False
        self._cap: VolumeCap | None = None
        self._oca = OcaGroups()
        #: Open brackets by their entry's order id (an entry is registered when its exits come with it).
        self._brackets: dict[str, Bracket] = {}
        #: True while an OCA group member or an auction order may be working: bars are then matched in
        #: path order (:meth:`_execute_bar_ordered`).
        self._ordered = False
        #: Whether the next bar opens a session (the bar before it ended one): the opening auction.
        self._session_opens = True
        #: Whether the bar being matched ends a session (read by a modification made while it is matched).
        self._ends_session = False
        self._widths = widths
        #: Each symbol's tick size (None: the US stock grid), for the quotes around its trades.
        self._ticks: tuple[float | None, ...] | None = None if ticks is None else tuple(ticks)
        if volume_limit is not None:
            if volumes is None:
                raise ValueError("a volume limit needs the bars' volumes")
            self._cap = VolumeCap(volumes, VolumeAllowance(volume_limit))

    def __len__(self) -> int:
        return len(self.pending)

    def __bool__(self) -> bool:
        return bool(self.pending)

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(self.pending)

    def add(self, working: WorkingOrder) -> None:
        order = working.order
        if order.status is _CREATED:  # a partial fill at the close keeps its status
            order.status = _SUBMITTED
        bracket = working.bracket
        if bracket is not None and working is not bracket.entry:
            if working.order.status.is_done:
                return
            if not bracket.active:  # held until the entry fills (IB: PreSubmitted)
                bracket.held.append(working)
                return
            bracket.exits.append(working)
        self.pending.append(working)

    def open_bracket(self, working: WorkingOrder) -> None:
        """``working`` is the entry of a bracket whose exits follow it (admit them after it)."""
        bracket = Bracket(working)
        working.bracket = bracket
        self._brackets[str(working.order.order_id)] = bracket
        self._ordered = True

    def bar_executor(self) -> BarExecutor:
        """What the bar loops call for each bar: :meth:`execute_bar`, or its twin under the volume limit."""
        cap = self._cap
        return self.execute_bar if cap is None else partial(self._execute_bar_ordered, cap)

    def admit(self, working: WorkingOrder, price: float) -> str | None:
        """Prepare a new order, submitted when ``price`` is the last price of its symbol (NaN: unknown): a
        trailing stop without a ``stop_price`` starts from it; an order naming an OCA group joins it.
        Returns why the order cannot be admitted, or None."""
        order = working.order
        if order.order_type in _TRAILING:
            stop = order.stop_price
            if stop is None and price == price:  # noqa: PLR0124 - NaN test: no price yet, the next one starts it
                stop = trail_level(order.side_enum, price, order.trail_amount, order.trail_percent)
            working.trail = TrailState(stop)
        # ``order.auction``, spelled out: this runs for every order submitted
        if order.time_in_force == _OPG or order.order_type in ON_CLOSE or working.expires_bar is not None:
            self._ordered = True
        if order.parent_id:
            bracket = self._brackets.get(order.parent_id)
            if bracket is None or bracket.complete:
                return exit_refusal(order.parent_id)
            entry = bracket.entry.order
            if order.symbol != entry.symbol or order.side == entry.side:
                return (
                    f"bracket exit {order.order_id} must close its entry {entry.order_id}: the same symbol "
                    f"({entry.symbol}), the other side"
                )
            working.bracket = bracket
        if not order.oca_group:
            return None
        problem = self._oca.join(working)
        if problem is None:
            self._ordered = True
        return problem

    def enter(self, working: WorkingOrder, closes: np.ndarray, bar: int) -> str | None:
        """:meth:`admit` then :meth:`add`, for an order submitted at bar ``bar`` (``closes``: the close per bar
        and symbol) whose admission opens no bracket and which is not offered a price at once. Returns why
        the order cannot be admitted (then it is not added), or None."""
        order = working.order
        tif = order.time_in_force
        if (
            order.order_type in _PLAIN_TYPES
            and (tif is _DAY or tif is _GTC)
            and working.expires_bar is None
            and not order.parent_id
            and not order.oca_group
        ):  # admit() would prepare nothing: the common order goes straight into the book, as add() does
            if order.status is _CREATED:
                order.status = _SUBMITTED
            self.pending.append(working)
            return None
        refused = self.admit(working, closes.item(bar, working.symbol_index))
        if refused is None:
            self.add(working)
        return refused

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
        if self._ordered:
            self._execute_bar_ordered(None, bar, opens, highs, lows, closes, session_end, book)
            return
        self._session_opens = self._ends_session = session_end
        widths = self._widths
        ticks = self._ticks
        keep: list[WorkingOrder] = []
        for working in self.pending:
            if working.first_bar > bar:
                keep.append(working)
                continue
            s = working.symbol_index
            order = working.order
            open_ = opens.item(bar, s)  # .item: a Python float straight from the array, no numpy scalar
            if open_ != open_:  # noqa: PLR0124 - NaN test without a call: this symbol has no bar here, the order keeps waiting
                execution = None
            elif order.order_type is _MARKET and widths is None:  # its rule needs only the path's first price
                execution = _new_tuple(Execution, (open_, True))  # match_market((open_,)), without the calls
            else:
                path = price_path(open_, highs.item(bar, s), lows.item(bar, s), closes.item(bar, s))
                width = 0 if widths is None else widths.item(bar, s)
                tick = None if ticks is None else ticks[s]
                if working.trail is None:  # the hot path: no index needed, no kept state
                    working.triggered, execution = match_order(order, path, working.triggered, width, tick)
                else:
                    _, execution, _ = working.locate(path, width, tick)
            if execution is not None:
                if order.status is _CANCELLED:
                    continue  # cancelled from on_fill earlier in this bar: it never fills
                book(working, execution)
                if order.status in _DONE:
                    continue
            if session_end and order.time_in_force == _DAY:
                if order.status.is_active:  # not cancelled from on_fill in this bar
                    self._finish(order, OrderStatus.EXPIRED, "day order unfilled at the end of its session")
                continue
            keep.append(working)
        if self._purge:
            self._purge = False
            keep = [w for w in keep if w.order.status.is_active]
        self.pending[:] = keep

    def _execute_bar_ordered(  # noqa: PLR0917 - execute_bar's call, with the cap bound first
        self,
        cap: VolumeCap | None,
        bar: int,
        opens: np.ndarray,
        highs: np.ndarray,
        lows: np.ndarray,
        closes: np.ndarray,
        session_end: bool,
        book: Booker,
    ) -> None:
        """:meth:`execute_bar` in the order executions happen on the bar's path (submission order at the
        same point), with OCA groups applied after each. Under the volume limit (``cap``) each execution
        fills at most what is left of its symbol's allowance for bar ``bar``; the remainder keeps working.
        Only bar ``bar``'s volume is used, and every order here was placed before that bar opened."""
        self._ends_session = session_end
        hits: list[tuple[int, WorkingOrder, Execution]] = []
        missed: list[WorkingOrder] = []  # opening-auction orders the open did not fill: cancelled after it
        for working in self.pending:
            if working.first_bar > bar:
                continue
            s = working.symbol_index
            open_ = opens.item(bar, s)
            if open_ != open_:  # noqa: PLR0124 - NaN test: this symbol has no bar here, the order keeps waiting
                continue
            path = price_path(open_, highs.item(bar, s), lows.item(bar, s), closes.item(bar, s))
            if working.order.auction:
                self._auction_hit(working, path, session_end, hits, missed)
                continue
            _, execution, at = working.locate(path, self._width(bar, s), self._tick(s))
            if execution is not None:
                hits.append((at, working, execution))
        hits.sort(key=_point)  # stable: submission order among executions at the same point
        unblocked: dict[str, None] = {}  # type-3 groups reduced once every execution at this point is booked
        point = 0
        i = 0
        while i < len(hits):  # exits released by their entry's fill join ``hits`` as it is walked
            at, working, execution = hits[i]
            i += 1
            if at != point:
                if self._oca.reduce(unblocked):
                    self._purge = True
                point = at
            if working.order.status.is_done or working.first_bar > bar:
                continue  # cancelled or modified from on_fill, or cancelled by its OCA group, earlier in this bar
            before = working.order.filled_quantity
            self._book_hit(cap, bar, working, execution, book)
            filled = working.order.filled_quantity - before
            if working.order.oca_group and filled > 0 and self._oca.filled(working, filled, unblocked):
                self._purge = True
            if working.bracket is not None:
                s = working.symbol_index
                path = price_path(
                    opens.item(bar, s), highs.item(bar, s), lows.item(bar, s), closes.item(bar, s)
                )
                for hit in self._bracket_moved(working, filled, at, path[at:] or path[-1:]):
                    hits.insert(bisect.bisect_right(hits, hit[0], lo=i, key=_point), hit)
        if self._oca.reduce(unblocked):
            self._purge = True
        for working in missed:
            if working.order.status.is_active:
                self._finish(working.order, OrderStatus.CANCELLED, "not filled in the opening auction")
        self._drop_done(bar, session_end)
        self._session_opens = session_end
        if self._brackets:
            self._sweep_brackets()
        if self._ordered:
            self._ordered = bool(self._brackets) or any(
                w.order.oca_group or w.order.auction or w.expires_bar is not None for w in self.pending
            )

    def _auction_hit(
        self,
        working: WorkingOrder,
        path: tuple[float, float, float, float],
        session_end: bool,
        hits: list[tuple[int, WorkingOrder, Execution]],
        missed: list[WorkingOrder],
    ) -> None:
        """An auction order on this bar: at the open of a session (index 0, in submission order with the
        other executions there), or at the close of a session (after every point of the bar's path)."""
        order = working.order
        if order.auction == "open":
            if not self._session_opens:
                return  # placed during a session: it waits for the next session's open
            price = auction_fill_price(order.side_enum, order.limit_price, path[0])
            if price is None:
                missed.append(working)
            else:
                hits.append((0, working, Execution(price, False)))
        elif session_end:
            price = auction_fill_price(order.side_enum, order.limit_price, path[-1])
            if price is not None:
                hits.append((len(path), working, Execution(price, False)))

    def _drop_done(self, bar: int, session_end: bool) -> None:
        """After a capped bar: drop done orders, expire DAY orders whose session ends with this bar."""
        keep: list[WorkingOrder] = []
        for working in self.pending:
            order = working.order
            if order.status.is_done:
                continue
            if working.expires_bar is not None and bar >= working.expires_bar:
                self._finish(order, OrderStatus.EXPIRED, "good-till-date order unfilled at its date")
                continue
            if session_end and working.first_bar <= bar and order.time_in_force == TimeInForce.DAY:
                self._finish(order, OrderStatus.EXPIRED, "day order unfilled at the end of its session")
                continue
            keep.append(working)
        self._purge = False
        self.pending[:] = keep

    def _book_hit(
        self, cap: VolumeCap | None, bar: int, working: WorkingOrder, execution: Execution, book: Booker
    ) -> None:
        """Book one execution: all that is left, or what the volume limit and a bracket's exposure allow."""
        limit: float | None = None
        bracket = working.bracket
        if bracket is not None and working is not bracket.entry:
            order = working.order
            allowed = bracket.allowance(working)
            if allowed <= 1e-9:
                return  # nothing to protect now (the other exit closed it, or the entry filled nothing yet)
            if allowed < order.quantity - order.filled_quantity - 1e-9:
                limit = allowed
        if cap is None or working.order.auction:  # an auction takes no share of the bar's volume
            book(working, execution, limit)
        else:
            self._book_capped(cap, bar, working, execution, book, limit=limit)

    def _bracket_moved(
        self, working: WorkingOrder, filled: float, at: int, rest: tuple[float, ...]
    ) -> list[tuple[int, WorkingOrder, Execution]]:
        """``filled`` of bracket order ``working`` was just booked at path point ``at``; ``rest`` is the
        path from there on. An entry's fill releases its held exits, which are offered ``rest`` (its first
        price as a gap): their executions on it are returned, located on the bar's path. An exit's fill
        lowers the exposure; a complete group cancels the exits left."""
        bracket = working.bracket
        if bracket is None:
            return []
        hits: list[tuple[int, WorkingOrder, Execution]] = []
        if working is bracket.entry:
            if filled > 0:
                for exit_working in bracket.release():
                    self.pending.append(exit_working)
                    _, execution, index = exit_working.locate(rest)
                    if execution is not None:
                        hits.append((at + index, exit_working, execution))
        else:
            bracket.exits_filled += filled
        if bracket.complete:
            self._close_bracket(bracket)
        return hits

    def _close_bracket(self, bracket: Bracket) -> None:
        """The group is complete: cancel the exits still working or held (IB's one-cancels-other)."""
        for exit_working in bracket.leftovers():
            entry = bracket.entry.order
            why = (
                "bracket closed: the other exit filled"
                if entry.filled_quantity > 0
                else f"bracket closed: its entry {entry.order_id} ended {entry.status.value} without a fill"
            )
            self._finish(exit_working.order, OrderStatus.CANCELLED, why)
            self._purge = True
        bracket.held.clear()
        self._brackets.pop(str(bracket.entry.order.order_id), None)

    def _sweep_brackets(self) -> None:
        """Close the brackets whose entry ended (cancelled, expired, rejected) with nothing left to protect."""
        for bracket in [b for b in self._brackets.values() if b.complete]:
            self._close_bracket(bracket)

    @staticmethod
    def _book_capped(
        cap: VolumeCap,
        bar: int,
        working: WorkingOrder,
        execution: Execution,
        book: Booker,
        *,
        limit: float | None = None,
    ) -> None:
        """Book what the volume limit (and ``limit``) lets ``working`` fill on bar ``bar`` now (possibly nothing)."""
        quantity = cap.size(bar, working)
        if limit is not None:
            quantity = min(quantity, limit)
        if quantity <= 0:
            return
        order = working.order
        before = order.filled_quantity
        if quantity < order.quantity - before:
            log.debug(
                "order %s: the volume limit lets %g of %g fill on bar %d",
                order.order_id,
                quantity,
                order.quantity - before,
                bar,
            )
        book(working, execution, quantity)
        cap.allowance.use(working.symbol_index, order.filled_quantity - before)  # a rejection takes nothing

    def try_now(self, working: WorkingOrder, price: float, book: Booker, bar: int) -> bool:
        """Offer ``price`` (a one-point path: bar ``bar``'s close) to a new order; True if it executed and
        is done. Under a volume limit it fills at most what is left of bar ``bar``'s allowance."""
        if working.order.auction:
            return False  # its auction has passed (the strategy decides after the close): it waits
        bracket = working.bracket
        if bracket is not None and working is not bracket.entry and not bracket.active:
            return False  # a bracket exit waits for its entry to fill
        s = working.symbol_index
        _, execution, _ = working.locate((price,), self._width(bar, s), self._tick(s))
        if execution is None:
            return False
        before = working.order.filled_quantity
        if self._cap is None:
            book(working, execution)
        else:
            self._book_capped(self._cap, bar, working, execution, book)
        if working.order.oca_group and working.order.filled_quantity > before:
            unblocked: dict[str, None] = {}
            if self._oca.filled(working, working.order.filled_quantity - before, unblocked):
                self._purge = True
            if self._oca.reduce(unblocked):
                self._purge = True
        return working.order.status.is_done

    def _width(self, bar: int, symbol_index: int) -> int:
        """The spread of bar ``bar`` of a symbol, in ticks (0: no spread model)."""
        return 0 if self._widths is None else self._widths.item(bar, symbol_index)

    def _tick(self, symbol_index: int) -> float | None:
        """A symbol's tick size (None: the US stock grid)."""
        return None if self._ticks is None else self._ticks[symbol_index]

    _finish = staticmethod(finish_order)


def _point(hit: tuple[int, WorkingOrder, Execution]) -> int:
    return hit[0]
