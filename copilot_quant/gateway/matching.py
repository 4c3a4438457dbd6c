"""The matching engine: working orders per symbol, filled only at prices the market actually showed.

The market feeds one price at a time. Each bar arrives as its path (open → low → high → close when the
bar closes up, open → high → low → close otherwise, as in the backtest). Between two prices of one bar the
price moved *continuously*; the step into a new bar's open is a *gap* (``gap=True``). An order's first
price after it was placed is always treated as a gap: it never saw the path before.

Fill rules: one definition, :func:`~copilot_quant.backtest.execution.limit_fill_price` and
:func:`~copilot_quant.backtest.execution.stop_trigger_price`, which this engine applies to each price move
as it streams and the backtest applies to each move of a bar's path:

* MKT: the first price after submission, moved by the slippage model.
* LMT buy at L: fills when a price p <= L appears, at p after a gap, at L when the price crossed L
  continuously (sells mirror it). No slippage.
* STP buy at S: triggers when a price p >= S appears, at p after a gap, at S on a continuous crossing;
  fills there plus slippage, and any remainder (partial fills) then works as a market order.
* STP LMT: triggers as a stop; from the trigger point on it works as a limit.

Spread: each price comes with the quote's width in ticks (``on_price(..., width=)``, 0 without a spread
model). Market orders and triggered stops execute at the touch of the price they take (buys at the ask,
sells at the bid) and the slippage model moves that; limit orders (a stop-limit's limit too) are matched
on the quote they trade against — a buy limit on the ask, a sell limit on the bid; stops trigger on the
trades (IB's "Last" method for US stocks). One definition, in
:mod:`copilot_quant.model.spread`, the backtest's too.

With ``partial_fill_size`` an order fills at most that many shares per price update.

With ``volume_limit`` (the backtest's rule, :mod:`copilot_quant.backtest.participation`) the orders of a
symbol fill at most that fraction of the bar's volume in total: each gap price (a new bar's open) opens the
symbol's allowance from the bar's volume, and orders draw on it as they fill, tick by tick — in the order
they execute on the bar's path, in submission order on the same tick. What is left keeps working on later
bars. Prices outside any bar (no gap seen yet) have no volume to take part in and fill nothing.

One-cancels-all groups (IB's ocaGroup/ocaType) follow :mod:`copilot_quant.model.oca`: after a member
fills, the other members are cancelled or reduced (:class:`OcaReduced`) — at once with a block (types 1
and 2: a member later in the same price update sees it), after the whole price update without (type 3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.orders import IbOrderType
from copilot_quant.model.costs import NoSlippage, SlippageModel
from copilot_quant.model.fill_rules import (
    auction_fill_price,
    limit_fill_price,
    stop_trigger_price,
    trail_limit,
    trail_step,
)
from copilot_quant.model.oca import OcaExecutions, OcaType
from copilot_quant.model.orders import OrderSide
from copilot_quant.model.participation import VolumeAllowance, check_volume_limit
from copilot_quant.model.spread import after_touch, limit_on_grid, spread_of, stop_trade_at, touch_at

__all__ = [
    "AuctionMissed",
    "FillIntent",
    "MatchingEngine",
    "OcaReduced",
    "StopTriggered",
    "WorkingOrder",
    "limit_fill_price",
    "stop_trigger_price",
]

log = logging.getLogger(__name__)

OrderKey = tuple[int, int]


@dataclass(slots=True)
class WorkingOrder:
    """The matching engine's mutable working state of one order (private to the engine and the broker)."""

    key: OrderKey
    symbol: str
    side: OrderSide
    order_type: IbOrderType
    remaining: float
    limit: float | None = None
    stop: float | None = None
    triggered: bool = False
    #: The last price this order saw while working; ``None`` means the next price is a gap for it.
    last_seen: float | None = None
    #: The order is for a whole number of shares, so a volume limit fills it in whole shares.
    whole_shares: bool = True
    #: Its one-cancels-all group (``""``: none) and IB ocaType.
    oca_group: str = ""
    oca_type: int = 0
    #: Trailing orders: the trail (an amount or a percent) and a TRAIL LIMIT's limit offset; ``stop`` is
    #: the trailing stop where it stands now (None: it starts from the next price).
    trail_amount: float | None = None
    trail_percent: float | None = None
    limit_offset: float | None = None
    #: ``"open"`` / ``"close"``: it executes only in that auction (OPG; MOC, LOC); ``""`` otherwise.
    auction: str = ""
    #: A bracket exit: its parent's key. The exits of one parent share the bracket's exposure
    #: (:mod:`copilot_quant.model.bracket`): a fill of one lowers what the others may fill, at once.
    bracket: OrderKey | None = None


@dataclass(frozen=True, slots=True)
class FillIntent:
    """The engine decided that order ``key`` fills ``quantity`` at ``price``."""

    key: OrderKey
    price: float
    quantity: float


@dataclass(frozen=True, slots=True)
class StopTriggered:
    """A stop or stop-limit order's trigger price was reached (IB moves it from PreSubmitted to Submitted)."""

    key: OrderKey


@dataclass(frozen=True, slots=True)
class OcaReduced:
    """Another member of order ``key``'s OCA group filled: it may fill only ``remaining`` more (0: cancelled,
    and it has left the book)."""

    key: OrderKey
    remaining: float


@dataclass(frozen=True, slots=True)
class AuctionMissed:
    """Opening-auction order ``key`` was not filled at the open: IB cancels it (it has left the book)."""

    key: OrderKey


MatchEvent = FillIntent | StopTriggered | OcaReduced | AuctionMissed


def _required(price: float | None, order: WorkingOrder) -> float:
    # The broker validates prices before adding an order; a missing one here is a programming error.
    if price is None:
        raise ValueError(f"{order.order_type} order {order.key} is missing its price")
    return price


#: ``(order, prev, price, slip, width, tick)``: the fill price of ``order`` on the move ``prev → price``
#: (trades) with a spread of ``width`` ticks of ``tick`` (the symbol's own: a future's, a pair's; None:
#: the stocks' grid), or None; ``slip`` moves a price at the touch (the slippage model) onto that grid.
Tick = float | None
Slip = Callable[[float, OrderSide, Tick], float]
Matcher = Callable[[WorkingOrder, "float | None", float, Slip, int, Tick], "float | None"]


def _limit_on_quote(  # noqa: PLR0917 - the move, the limit and the quote's terms
    side: OrderSide, limit: float, prev: float | None, price: float, width: int, tick: Tick
) -> float | None:
    """A limit on the move ``prev → price`` of the trades, matched on the quote ``side`` trades against."""
    if not width:
        return limit_fill_price(side, limit, prev, price)
    prev = None if prev is None else touch_at(prev, side, width, tick)
    fill = limit_fill_price(side, limit, prev, touch_at(price, side, width, tick))
    return None if fill is None else limit_on_grid(fill, side, tick)  # as the backtest books it


def _match_market(  # noqa: PLR0917 - the Matcher signature
    order: WorkingOrder, prev: float | None, price: float, slip: Slip, width: int, tick: Tick
) -> float:
    return slip(touch_at(price, order.side, width, tick), order.side, tick)


def _match_limit(  # noqa: PLR0917 - the Matcher signature
    order: WorkingOrder, prev: float | None, price: float, slip: Slip, width: int, tick: Tick
) -> float | None:
    return _limit_on_quote(order.side, _required(order.limit, order), prev, price, width, tick)


def _match_stop(  # noqa: PLR0917 - the Matcher signature
    order: WorkingOrder, prev: float | None, price: float, slip: Slip, width: int, tick: Tick
) -> float | None:
    if order.triggered:  # the remainder of a partly filled stop works as a market order
        return slip(touch_at(price, order.side, width, tick), order.side, tick)
    trigger = stop_trigger_price(order.side, _required(order.stop, order), prev, price)
    if trigger is None:
        return None
    order.triggered = True
    trade = stop_trade_at(trigger, order.side, width, tick)
    return slip(touch_at(trade, order.side, width, tick), order.side, tick)


def _match_stop_limit(  # noqa: PLR0917 - the Matcher signature
    order: WorkingOrder, prev: float | None, price: float, slip: Slip, width: int, tick: Tick
) -> float | None:
    limit = _required(order.limit, order)
    if order.triggered:
        return _limit_on_quote(order.side, limit, prev, price, width, tick)
    trigger = stop_trigger_price(order.side, _required(order.stop, order), prev, price)
    if trigger is None:
        return None
    order.triggered = True
    # From the trigger point the order is a limit. The rest of the move (trigger → price) goes further
    # the stop's way, i.e. away from a limit that the trigger point itself did not satisfy.
    trade = stop_trade_at(trigger, order.side, width, tick)  # the trade that triggered it, on the grid
    return _limit_on_quote(order.side, limit, None, trade, width, tick)


def _trail(order: WorkingOrder, prev: float | None, price: float) -> float | None:
    """Move the order's trailing stop over ``prev → price``; the trigger price, or None."""
    order.stop, trigger = trail_step(
        order.side, order.stop, prev, price, amount=order.trail_amount, percent=order.trail_percent
    )
    if trigger is not None:
        order.triggered = True
    return trigger


def _match_trail(  # noqa: PLR0917 - the Matcher signature
    order: WorkingOrder, prev: float | None, price: float, slip: Slip, width: int, tick: Tick
) -> float | None:
    if order.triggered:  # the remainder of a partly filled trailing stop works as a market order
        return slip(touch_at(price, order.side, width, tick), order.side, tick)
    trigger = _trail(order, prev, price)
    if trigger is None:
        return None
    trade = stop_trade_at(trigger, order.side, width, tick)
    return slip(touch_at(trade, order.side, width, tick), order.side, tick)


def _match_trail_limit(  # noqa: PLR0917 - the Matcher signature
    order: WorkingOrder, prev: float | None, price: float, slip: Slip, width: int, tick: Tick
) -> float | None:
    if order.triggered:
        return _limit_on_quote(order.side, _required(order.limit, order), prev, price, width, tick)
    trigger = _trail(order, prev, price)
    if trigger is None:
        return None
    order.limit = trail_limit(order.side, _required(order.stop, order), order.limit_offset or 0.0)
    # as a stop-limit: from the trigger point on, a limit (see _match_stop_limit)
    trade = stop_trade_at(trigger, order.side, width, tick)
    return _limit_on_quote(order.side, order.limit, None, trade, width, tick)


_MATCHERS: dict[IbOrderType, Matcher] = {
    IbOrderType.MKT: _match_market,
    IbOrderType.LMT: _match_limit,
    IbOrderType.STP: _match_stop,
    IbOrderType.STP_LMT: _match_stop_limit,
    IbOrderType.TRAIL: _match_trail,
    IbOrderType.TRAIL_LIMIT: _match_trail_limit,
}


class MatchingEngine:
    """Per-symbol books of working orders, matched in submission order on every price update.

    Pure logic: no I/O, no clock, no account. The broker adds and removes orders and applies the
    :class:`FillIntent` values this engine returns.
    """

    def __init__(
        self,
        slippage: SlippageModel | None = None,
        partial_fill_size: float | None = None,
        volume_limit: float | None = None,
    ) -> None:
        if partial_fill_size is not None and not partial_fill_size > 0:
            raise ConfigError(
                f"partial_fill_size must be a positive number of shares, got {partial_fill_size!r}"
            )
        self.slippage: SlippageModel = slippage or NoSlippage()
        self._slip = after_touch(self.slippage)  # the fill rules below take the spread's touch themselves
        #: A symbol's own tick (a future's, a pair's; None: the stocks' grid): its quotes and fills are on
        #: it. The broker sets it from the gateway's contracts (:meth:`SimBroker.use_ticks`).
        self.tick_of: Callable[[str], Tick] = lambda symbol: None
        #: Each symbol's spread (ticks) as of its last price: an immediate order meets that quote.
        self._widths: dict[str, int] = {}
        self.partial_fill_size = partial_fill_size
        self.volume_limit = check_volume_limit(volume_limit)
        self._allowance = VolumeAllowance(self.volume_limit) if self.volume_limit is not None else None
        self._books: dict[str, dict[OrderKey, WorkingOrder]] = {}
        self._symbol_of: dict[OrderKey, str] = {}
        #: Working members of each OCA group (see model.oca).
        self._groups: dict[str, dict[OrderKey, None]] = {}
        #: Each bracket's exposure (what its exits may still fill between them), set by the broker.
        self._exposure: dict[OrderKey, float] = {}

    def add(self, order: WorkingOrder) -> None:
        if order.key in self._symbol_of:
            raise ValueError(f"order {order.key} is already working")
        self._books.setdefault(order.symbol, {})[order.key] = order
        self._symbol_of[order.key] = order.symbol
        if order.oca_group:
            self._groups.setdefault(order.oca_group, {})[order.key] = None

    def remove(self, key: OrderKey) -> WorkingOrder | None:
        symbol = self._symbol_of.pop(key, None)
        if symbol is None:
            return None
        order = self._books[symbol].pop(key)
        if order.oca_group:
            self._groups.get(order.oca_group, {}).pop(key, None)
        return order

    def set_exposure(self, bracket: OrderKey, exposure: float) -> None:
        """Bracket ``bracket``'s exits may fill ``exposure`` between them from now (the broker's rule)."""
        self._exposure[bracket] = exposure

    def _exit_filled(self, order: WorkingOrder, quantity: float) -> None:
        """A bracket exit filled: its siblings may fill only what is left, from this very price on."""
        group = order.bracket
        if group is None or group not in self._exposure:
            return
        left = max(0.0, self._exposure[group] - quantity)
        self._exposure[group] = left
        for sibling in [w for w in self.working(order.symbol) if w.bracket == group and w.key != order.key]:
            sibling.remaining = min(sibling.remaining, left)
            if sibling.remaining <= 1e-9:
                self.remove(sibling.key)  # nothing to protect now: the broker decides what becomes of it

    def group_completed(self, group: str, key: OrderKey) -> list[MatchEvent]:
        """Member ``key`` of OCA group ``group`` completed without an execution (a modification lowered its
        quantity to what had filled): cancel the working members (model.oca)."""
        executions = OcaExecutions()
        executions.add(key, 0.0, complete=True)
        events: list[MatchEvent] = []
        self._reduce_group(group, executions, events)
        return events

    def get(self, key: OrderKey) -> WorkingOrder | None:
        symbol = self._symbol_of.get(key)
        return None if symbol is None else self._books[symbol][key]

    def __contains__(self, key: object) -> bool:
        return key in self._symbol_of

    def __len__(self) -> int:
        return len(self._symbol_of)

    def working(self, symbol: str | None = None) -> Iterator[WorkingOrder]:
        if symbol is not None:
            yield from list(self._books.get(symbol, {}).values())
            return
        for book in list(self._books.values()):
            yield from list(book.values())

    def on_price(
        self,
        symbol: str,
        price: float,
        *,
        gap: bool = False,
        bar_volume: float | None = None,
        opening: bool = False,
        width: int | None = None,
    ) -> list[MatchEvent]:
        """Match ``symbol``'s working orders against one new price; returns what happened, in order.

        ``gap=True`` marks a new bar's open; ``bar_volume`` is that bar's traded volume (the volume limit's
        base: a bar whose volume is unknown fills nothing under a limit). Filled quantities are already
        taken off the working orders; fully filled orders leave the book. ``opening``: the session's first
        price of ``symbol``, its opening auction (OPG orders fill here or are cancelled). ``width``: the
        quote's spread in ticks (0: none; None: the slippage's spread model's plain width, if it has one).
        """
        tick = self.tick_of(symbol)
        if width is None:
            width = self._plain_width(price, tick)
        self._widths[symbol] = width
        allowance = self._allowance
        if allowance is not None and gap:
            allowance.open_bar(symbol, math.nan if bar_volume is None else bar_volume)
        book = self._books.get(symbol)
        if not book:
            return []
        events: list[MatchEvent] = []
        unblocked: dict[str, OcaExecutions] = {}  # type-3 groups: applied after this price update
        for order in list(book.values()):
            if order.key not in self._symbol_of:
                continue  # cancelled by its OCA group earlier in this price update
            if order.auction:
                if order.auction == "open" and opening:
                    self._open_auction(order, price, events, unblocked)
                continue  # auction orders never trade on a continuous price
            prev = None if gap else order.last_seen
            was_triggered = order.triggered
            fill_price = _MATCHERS[order.order_type](order, prev, price, self._slip, width, tick)
            order.last_seen = price
            if order.triggered and not was_triggered:
                events.append(StopTriggered(order.key))
            if fill_price is None:
                continue
            quantity = order.remaining
            if self.partial_fill_size is not None:
                quantity = min(quantity, self.partial_fill_size)
            if allowance is not None:
                quantity = allowance.size(symbol, quantity, order.whole_shares)
                if quantity <= 0:
                    continue  # the bar's volume is used up: the order waits (a triggered stop stays triggered)
                allowance.use(symbol, quantity)
            order.remaining -= quantity
            if order.remaining <= 1e-9:
                order.remaining = 0.0
                self.remove(order.key)
            events.append(FillIntent(order.key, fill_price, quantity))
            if order.oca_group:
                self._group_filled(order, quantity, unblocked, events)
            if order.bracket is not None:
                self._exit_filled(order, quantity)
        for group, executions in unblocked.items():
            self._reduce_group(group, executions, events)
        return events

    def _plain_width(self, price: float, tick: Tick) -> int:
        """The spread at ``price`` when no width came with it: the slippage's spread model's plain width
        (0 without one)."""
        spread = spread_of(self.slippage)
        return 0 if spread is None else spread.width(price, tick)

    def match_now(self, key: OrderKey, price: float) -> list[MatchEvent]:
        """Match order ``key`` alone against ``price``, the current price, as its first (an immediate-or-
        cancel order's one chance). The partial fill size and the volume limit apply as on any price."""
        order = self.get(key)
        if order is None:
            return []
        tick = self.tick_of(order.symbol)
        width = self._widths.get(order.symbol)
        if width is None:  # no price of it matched yet
            width = self._plain_width(price, tick)
        fill_price = _MATCHERS[order.order_type](order, None, price, self._slip, width, tick)
        order.last_seen = price
        if fill_price is None:
            return []
        quantity = order.remaining
        if self.partial_fill_size is not None:
            quantity = min(quantity, self.partial_fill_size)
        allowance = self._allowance
        if allowance is not None:
            quantity = allowance.size(order.symbol, quantity, order.whole_shares)
            if quantity <= 0:
                return []
            allowance.use(order.symbol, quantity)
        order.remaining -= quantity
        if order.remaining <= 1e-9:
            order.remaining = 0.0
            self.remove(key)
        if order.bracket is not None:
            self._exit_filled(order, quantity)
        return [FillIntent(key, fill_price, quantity)]

    def _open_auction(
        self, order: WorkingOrder, price: float, events: list[MatchEvent], unblocked: dict[str, OcaExecutions]
    ) -> None:
        fill_price = auction_fill_price(order.side, order.limit, price)
        self.remove(order.key)
        if fill_price is None:
            events.append(AuctionMissed(order.key))
            return
        quantity = order.remaining
        events.append(FillIntent(order.key, fill_price, quantity))  # an auction takes no bar volume
        order.remaining = 0.0
        if order.oca_group:
            self._group_filled(order, quantity, unblocked, events)

    def close_auction(self, symbol: str, price: float) -> list[MatchEvent]:
        """The session closes at ``price``: fill ``symbol``'s closing-auction orders (MOC; LOC whose limit
        the price satisfies). The others stay (a DAY order then expires with the session)."""
        events: list[MatchEvent] = []
        unblocked: dict[str, OcaExecutions] = {}
        for order in list(self._books.get(symbol, {}).values()):
            if order.auction != "close":
                continue
            if order.key not in self._symbol_of:
                continue  # cancelled by its OCA group in this auction
            fill_price = auction_fill_price(order.side, order.limit, price)
            if fill_price is not None:
                self.remove(order.key)
                quantity = order.remaining
                events.append(FillIntent(order.key, fill_price, quantity))
                order.remaining = 0.0
                if order.oca_group:
                    self._group_filled(order, quantity, unblocked, events)
        for group, executions in unblocked.items():
            self._reduce_group(group, executions, events)
        return events

    def _group_filled(
        self,
        order: WorkingOrder,
        quantity: float,
        unblocked: dict[str, OcaExecutions],
        events: list[MatchEvent],
    ) -> None:
        """``quantity`` of OCA member ``order`` executed: apply it to the others now (with a block) or once
        every execution at this price is done (``unblocked``)."""
        complete = order.remaining <= 1e-9
        if OcaType(order.oca_type).blocks:
            executions = OcaExecutions()
            executions.add(order.key, quantity, complete=complete)
            self._reduce_group(order.oca_group, executions, events)
        else:
            unblocked.setdefault(order.oca_group, OcaExecutions()).add(order.key, quantity, complete=complete)

    def _reduce_group(self, group: str, executions: OcaExecutions, events: list[MatchEvent]) -> None:
        """Cancel or reduce ``group``'s working members by the other members' ``executions``."""
        for key in list(self._groups.get(group, ())):
            member = self.get(key)
            if member is None:
                continue
            oca_type = OcaType(member.oca_type)
            left = executions.left_for(key, oca_type, member.remaining, member.whole_shares)
            if left >= member.remaining - 1e-9:
                continue
            member.remaining = left
            if left <= 1e-9:
                member.remaining = 0.0
                self.remove(key)
            events.append(OcaReduced(key, member.remaining))
