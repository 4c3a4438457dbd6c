"""Fill rules: where on a bar each order type executes. Pure functions, no state.

These are the project's shared fill rules; the backtest engine and the simulated gateway's matching
engine apply the same ones, which is what makes backtest and paper results agree.

* **Intrabar path.** A bar is walked as ``open → low → high → close`` when ``close >= open``, else
  ``open → high → low → close``. Between those points the price moves continuously, so a level
  between two points is touched exactly.
* **Market.** The first price available after submission: the path's first point (in a backtest the
  next bar's open), then moved against the order by the slippage model.
* **Limit.** A buy at ``L`` fills at the first path price ``p <= L``, at ``min(p, L)``: the open if the
  bar gaps below ``L``, else exactly ``L``. Sells are symmetric. No slippage.
* **Stop.** A buy stop at ``S`` triggers at the first path price ``p >= S`` and fills at ``max(p, S)``
  (the open on a gap) plus slippage. Sells are symmetric.
* **Stop-limit.** Triggers as a stop, then works as a limit from that point of the path on (and on
  later bars, once triggered).
* **Trailing stop.** The stop follows the best price seen since the order was placed: a sell's stop is
  ``best − trail_amount`` (or ``best × (1 − trail_percent/100)``), never lowered; a buy's mirrors it. It
  starts from ``stop_price`` (IB's trailStopPrice) or, without one, from the price at submission. Each
  move of the path first tests the current stop (as a stop order), then moves the stop up to the new
  price: a rising move cannot trigger a sell stop, and a falling one does not raise it. A working order
  keeps moving stop in a :class:`TrailState` (``stop_price`` stays what was asked). A trailing stop-limit, once triggered at stop ``S``, works as a
  limit at ``S − limit_offset`` (sells; ``S + limit_offset`` for buys), like a stop-limit.
* **Auctions.** A market-on-close / limit-on-close order, or a market / limit order with time in force
  ``opg``, executes only in its auction, at the auction price (:func:`auction_fill_price`): the session's
  close (on daily bars the bar's close) or its open (the first price of a session). A limit fills only if
  the auction price satisfies it, without slippage; an auction market order takes the price without
  slippage too (an auction has one clearing price, no spread to cross). Outside its auction it never
  executes.
* **Triggered stop.** The remainder of a stop that triggered on an earlier bar but did not fill in full
  (a volume participation limit, see :mod:`copilot_quant.model.participation`) works as a market
  order, as in the simulated gateway's matching engine.

* **Spread.** Every rule takes the bar's spread ``width`` in ticks (0: no spread model) of the
  instrument's ``tick`` (None: the US stock grid; 0.25 for MES, 0.00005 for EUR.USD; see
  :mod:`copilot_quant.model.spread`). The path is the bar's *trades*; with a spread, a market order (and
  a triggered stop, and a triggered stop's remainder) executes at the touch of the price it takes — a
  buy at that trade's ask, a sell at its bid — and a limit order (also a stop-limit's limit once
  triggered) is matched on the quote it trades against: a buy limit on the path's asks, a sell limit on
  its bids (:func:`~copilot_quant.model.spread.side_path`). Stops trigger on the trades, as IB's default
  "Last" trigger method does for US stocks.

Every matcher returns an :class:`Execution` (the reference price and whether slippage applies) or
``None`` when the order does not execute on this path. :func:`locate_order` also says at which point
of the path the execution happens (the tick the gateway would fill it on), which a volume limit needs
to share a bar's volume in the order executions happen. (Order validation guarantees the prices each
order type needs, hence the ``cast`` calls in the dispatchers.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

from copilot_quant.model.orders import Order, OrderSide, OrderType
from copilot_quant.model.spread import side_path, stop_trade_at, touch_at

__all__ = [
    "Execution",
    "Located",
    "TrailState",
    "auction_fill_price",
    "limit_fill_price",
    "locate_order",
    "locate_trailing",
    "match_limit",
    "match_market",
    "match_order",
    "match_stop",
    "match_stop_limit",
    "price_path",
    "stop_trigger_price",
    "trail_level",
    "trail_limit",
    "trail_step",
]

Path = Sequence[float]


class Execution(NamedTuple):
    """Where an order executes: ``price`` before slippage, and whether the slippage model applies.

    A named tuple rather than a frozen dataclass: one is built per execution on the engine's hot path,
    and tuples are several times cheaper to create.
    """

    price: float
    slippage: bool


def price_path(open_: float, high: float, low: float, close: float) -> tuple[float, float, float, float]:
    """The intrabar path: ``open → low → high → close`` on an up bar, ``open → high → low → close`` otherwise."""
    if close >= open_:
        return (open_, low, high, close)
    return (open_, high, low, close)


# ------------------------------------------------------------------------------------------ the rules
# One move of the price, ``prev → price`` (``prev`` None: a gap, the first price the order sees). These
# two functions are the fill rules; the bar-path matchers below walk a bar's path through them, and the
# simulated gateway's matching engine (gateway/matching.py) applies them tick by tick as it replays.
def limit_fill_price(side: OrderSide, limit: float, prev: float | None, price: float) -> float | None:
    """Where a limit order fills on the move ``prev → price``: at ``price`` after a gap, at the limit when
    the price crossed it continuously; None if the move does not reach it."""
    if side is OrderSide.BUY:
        if price > limit:
            return None
        return limit if prev is not None and prev > limit else price
    if price < limit:
        return None
    return limit if prev is not None and prev < limit else price


def stop_trigger_price(side: OrderSide, stop: float, prev: float | None, price: float) -> float | None:
    """Where a stop triggers on the move ``prev → price``: at ``price`` after a gap, at the stop when the
    price crossed it continuously; None if the move does not reach it."""
    if side is OrderSide.BUY:
        if price < stop:
            return None
        return stop if prev is not None and prev < stop else price
    if price > stop:
        return None
    return stop if prev is not None and prev > stop else price


def trail_level(side: OrderSide, best: float, amount: float | None, percent: float | None) -> float:
    """Where a trailing stop sits when ``best`` is the best price seen: below it for a sell, above for a buy."""
    sign = -1.0 if side is OrderSide.SELL else 1.0
    if amount is not None:
        return best + sign * amount
    return best * (1.0 + sign * cast(float, percent) / 100.0)


def trail_step(
    side: OrderSide,
    stop: float | None,
    prev: float | None,
    price: float,
    *,
    amount: float | None,
    percent: float | None,
) -> tuple[float, float | None]:
    """A trailing stop at ``stop`` on the move ``prev → price``: ``(the stop after it, trigger price or
    None)``. ``stop`` None: the stop starts here, from ``price``."""
    if stop is not None:
        trigger = stop_trigger_price(side, stop, prev, price)
        if trigger is not None:
            return stop, trigger
    level = trail_level(side, price, amount, percent)
    if stop is None:
        return level, None
    return (max(stop, level) if side is OrderSide.SELL else min(stop, level)), None


def auction_fill_price(side: OrderSide, limit: float | None, price: float) -> float | None:
    """Where an auction order fills when the auction prints ``price``: at it (a market order, or a limit it
    satisfies), else None."""
    if limit is None:
        return price
    return limit_fill_price(side, limit, None, price)


def trail_limit(side: OrderSide, stop: float, offset: float) -> float:
    """The limit of a trailing stop-limit that triggered at ``stop``."""
    return stop - offset if side is OrderSide.SELL else stop + offset


Rule = Callable[[OrderSide, float, "float | None", float], "float | None"]


def _walk(rule: Rule, side: OrderSide, level: float, path: Path) -> tuple[int, float] | None:
    """The first point of ``path`` whose move reaches ``level`` by ``rule``: (its index, the price).

    The path's first point is a gap (nothing before it on this bar was seen by the order); between
    points the price moves continuously, so a level between two points is touched exactly.
    """
    prev: float | None = None
    for k, price in enumerate(path):
        hit = rule(side, level, prev, price)
        if hit is not None:
            return k, hit
        prev = price
    return None


def _favourable(side: OrderSide, path: Path, level: float) -> tuple[int, float] | None:
    """Where a limit at ``level`` becomes marketable: buys need prices at or below, sells at or above."""
    # most bars leave a resting order untouched: rule that out with one builtin call before walking
    if (min(path) > level) if side is OrderSide.BUY else (max(path) < level):
        return None
    return _walk(limit_fill_price, side, level, path)


def _adverse(side: OrderSide, path: Path, level: float) -> tuple[int, float] | None:
    """Where a stop at ``level`` triggers: buy stops on a rise to it, sell stops on a fall to it."""
    if (max(path) < level) if side is OrderSide.BUY else (min(path) > level):
        return None
    return _walk(stop_trigger_price, side, level, path)


def match_market(
    path: Path, side: OrderSide = OrderSide.BUY, width: int = 0, tick: float | None = None
) -> Execution:
    """A market order takes the first available price (at the touch with a spread), with slippage."""
    return Execution(touch_at(path[0], side, width, tick) if width else path[0], True)


def match_limit(
    side: OrderSide, limit: float, path: Path, width: int = 0, tick: float | None = None
) -> Execution | None:
    """A limit order fills at the limit or better (the open on a gap through it), without slippage; with
    a spread, when the quote it trades against (a buy's ask, a sell's bid) reaches the limit."""
    hit = _favourable(side, side_path(path, side, width, tick), limit)
    return None if hit is None else Execution(hit[1], False)


def match_stop(
    side: OrderSide, stop: float, path: Path, width: int = 0, tick: float | None = None
) -> Execution | None:
    """A stop order fills where it triggers (the open on a gap through it; at the touch of that price
    with a spread), with slippage."""
    hit = _adverse(side, path, stop)
    return (
        None
        if hit is None
        else Execution(touch_at(stop_trade_at(hit[1], side, width, tick), side, width, tick), True)
    )


def match_stop_limit(
    side: OrderSide,
    stop: float,
    limit: float,
    path: Path,
    triggered: bool = False,
    *,
    width: int = 0,
    tick: float | None = None,
) -> tuple[bool, Execution | None]:
    """A stop-limit: returns ``(triggered, execution)``; once triggered it works as a limit."""
    now_triggered, execution, _ = _stop_limit(side, stop, limit, path, triggered, width, tick)
    return now_triggered, execution


# ---------------------------------------------------------------------------------------------- dispatch
# Each order type's rule returns ``(triggered, execution or None, index)``: the index of the path point
# at which the order executes (the point reached when it executes on the move into it; 0 = the open).
# A volume limit needs the index to share a bar's volume in the order executions happen.
Located = tuple[bool, Execution | None, int]


def _locate_market(order: Order, path: Path, triggered: bool, width: int, tick: float | None) -> Located:
    price = touch_at(path[0], order.side_enum, width, tick) if width else path[0]
    return triggered, Execution(price, True), 0


def _locate_limit(order: Order, path: Path, triggered: bool, width: int, tick: float | None) -> Located:
    side = order.side_enum
    hit = _favourable(side, side_path(path, side, width, tick), cast(float, order.limit_price))
    return (triggered, None, 0) if hit is None else (triggered, Execution(hit[1], False), hit[0])


def _locate_stop(order: Order, path: Path, triggered: bool, width: int, tick: float | None) -> Located:
    side = order.side_enum
    if triggered:  # the remainder of a partly filled stop works as a market order
        return True, Execution(touch_at(path[0], side, width, tick), True), 0
    hit = _adverse(side, path, cast(float, order.stop_price))
    return (
        (False, None, 0)
        if hit is None
        else (
            True,
            Execution(touch_at(stop_trade_at(hit[1], side, width, tick), side, width, tick), True),
            hit[0],
        )
    )


def _stop_limit(  # noqa: PLR0917 - the rule's inputs, positional like the other rules
    side: OrderSide, stop: float, limit: float, path: Path, triggered: bool, width: int, tick: float | None
) -> Located:
    trigger_index = 0
    if not triggered:
        hit = _adverse(side, path, stop)
        if hit is None:
            return False, None, 0
        trigger_index, price = hit
        price = stop_trade_at(price, side, width, tick)  # the trade that triggered it, on the grid
        # the limit works from the trigger point on: the trigger price, then the rest of the path
        if trigger_index:
            path = (price, *path[trigger_index:])
    found = _favourable(side, side_path(path, side, width, tick), limit)  # the limit meets the quote
    if found is None:
        return True, None, 0
    k, price = found
    # After a trigger inside the path, point k >= 1 of the shortened path is point trigger_index + k - 1
    # of the bar's, and point 0 (the trigger price) lies on the move into point trigger_index.
    at = trigger_index + max(k - 1, 0) if trigger_index else k
    return True, Execution(price, False), at


def _locate_stop_limit(order: Order, path: Path, triggered: bool, width: int, tick: float | None) -> Located:
    stop, limit = cast(float, order.stop_price), cast(float, order.limit_price)
    return _stop_limit(order.side_enum, stop, limit, path, triggered, width, tick)


@dataclass(slots=True)
class TrailState:
    """A working trailing order's moving parts: its stop now (None: it starts from the next price) and,
    once a trailing stop-limit triggered, its limit. The order itself keeps what was asked."""

    stop: float | None = None
    limit: float | None = None


def _trail_walk(order: Order, path: Path, state: TrailState) -> tuple[int, float] | None:
    """Walk a trailing order's stop along ``path`` (in ``state``): where it triggers, or None."""
    side, stop = order.side_enum, state.stop
    amount, percent = order.trail_amount, order.trail_percent
    prev: float | None = None
    for k, price in enumerate(path):
        stop, trigger = trail_step(side, stop, prev, price, amount=amount, percent=percent)
        if trigger is not None:
            state.stop = stop
            return k, trigger
        prev = price
    state.stop = stop
    return None


def locate_trailing(  # noqa: PLR0917 - the rule's inputs, positional like the other rules
    order: Order, path: Path, triggered: bool, state: TrailState, width: int = 0, tick: float | None = None
) -> Located:
    """:func:`locate_order` for a trailing order whose stop (and limit) are kept in ``state``. The stop
    trails the trades; executions meet the quote (``width``), as for a stop and a stop-limit."""
    side = order.side_enum
    if triggered:
        if order.order_type is OrderType.TRAILING_STOP:  # a partly filled remainder works as a market order
            return True, Execution(touch_at(path[0], side, width, tick), True), 0
        found = _favourable(side, side_path(path, side, width, tick), cast(float, state.limit))
        return (True, None, 0) if found is None else (True, Execution(found[1], False), found[0])
    hit = _trail_walk(order, path, state)
    if hit is None:
        return False, None, 0
    if order.order_type is OrderType.TRAILING_STOP:
        return (
            True,
            Execution(touch_at(stop_trade_at(hit[1], side, width, tick), side, width, tick), True),
            hit[0],
        )
    k, stop = hit[0], cast(float, state.stop)
    state.limit = trail_limit(side, stop, cast(float, order.limit_offset))
    # from the move into point k on it is a stop-limit at the stop it triggered at
    start = k - 1 if k else 0
    now_triggered, execution, at = _stop_limit(side, stop, state.limit, path[start:], False, width, tick)
    return now_triggered, execution, at + start


def _locate_trailing(order: Order, path: Path, triggered: bool, width: int, tick: float | None) -> Located:
    # Without a kept state (a direct one-price call): the stop as the order gives it, nothing remembered
    return locate_trailing(order, path, triggered, TrailState(order.stop_price, None), width, tick)


def _locate_nowhere(order: Order, path: Path, triggered: bool, width: int, tick: float | None) -> Located:
    return False, None, 0  # an on-close order executes only in the closing auction, never on the path


_LOCATORS: dict[OrderType, Callable[[Order, Path, bool, int, float | None], Located]] = {
    OrderType.MARKET: _locate_market,
    OrderType.LIMIT: _locate_limit,
    OrderType.STOP: _locate_stop,
    OrderType.STOP_LIMIT: _locate_stop_limit,
    OrderType.TRAILING_STOP: _locate_trailing,
    OrderType.TRAILING_STOP_LIMIT: _locate_trailing,
    OrderType.MARKET_ON_CLOSE: _locate_nowhere,
    OrderType.LIMIT_ON_CLOSE: _locate_nowhere,
}


def locate_order(
    order: Order, path: Path, triggered: bool = False, width: int = 0, tick: float | None = None
) -> Located:
    """:func:`match_order`, plus the index of the path point at which the order executes (0 if it does not).

    Two executions on one bar happen in the order of their indexes; at the same index, at the same instant.
    """
    # order.order_type is already the enum (Order parses it); a str key would hash the same anyway
    return _LOCATORS[order.order_type](order, path, triggered, width, tick)  # type: ignore[index]


def match_order(
    order: Order, path: Path, triggered: bool = False, width: int = 0, tick: float | None = None
) -> tuple[bool, Execution | None]:
    """Apply ``order``'s fill rule to ``path``; returns ``(triggered, execution or None)``.

    ``triggered`` matters for stop orders (the remainder of a triggered stop works as a market order)
    and stop-limit orders (triggered on an earlier bar, it works as a plain limit). A one-point path
    ``(price,)`` asks "does it execute at this price right now?". ``width``: the bar's spread in ticks of
    ``tick`` (None: the US stock grid).
    """
    now_triggered, execution, _ = _LOCATORS[order.order_type](order, path, triggered, width, tick)  # type: ignore[index]
    return now_triggered, execution
