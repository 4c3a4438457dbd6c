"""Bracket orders: an entry and its exits (a take-profit limit and a stop-loss stop) working as one unit.

The one definition of the rule, shared by the backtest's order book, the simulated gateway's broker, the
live router and the risk check (as IB's parentId/transmit attached orders behave):

* The exits (*children*) name the entry (*parent*) by ``parent_id`` and are sent with it, in one go.
* A child works only for the bracket's **exposure**: what the entry has filled minus what the exits have
  filled (:func:`exit_allowance`). Before the entry fills a child is held (IB: ``PreSubmitted``); on a
  partial entry fill it works for the filled part.
* The children are one-cancels-other: an exit's fill lowers the exposure, so the other exit may fill only
  what is left.
* Cancelling one exit cancels the others, held or working, and leaves the entry alone: at IB the exits are
  one OCA group, and cancelling a member of an OCA group cancels the rest (IB's OCA description: "if …
  any separate order within the OCA is canceled by the user, the remaining working order(s) will
  automatically be sent cancellation requests"; the entry would go only with ``autoCancelParent``, off by
  default). A strategy that cancels its take-profit to replace it must therefore send a new stop too.
* The group is **complete** when the entry can no longer fill (filled, cancelled, expired, rejected) and
  the exposure is zero (:func:`group_complete`): the exits still working are then cancelled. So
  cancelling an entry that filled nothing cancels its exits; cancelling the rest of a partly filled entry
  keeps the exits protecting the shares it bought.
* No look-ahead within a bar: an exit becomes active at the price point where its entry filled and is
  first offered that same price as a *gap* — a price it did not see coming — then follows the bar's path
  on from there (:func:`copilot_quant.model.fill_rules.price_path`). When the entry and the stop would
  both trigger on the same move, the stop therefore fills at that point's price (the bar's low for a
  long entry, its high for a short), never better than its stop price: the conservative outcome. The
  backtest and the gateway apply it alike, price by price.
* Risk counts the bracket's worst case: the entry's shares lost down to the stop (:func:`worst_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence

from copilot_quant.errors import OrderValidationError
from copilot_quant.model.orders import Order, OrderSide, OrderType, TimeInForce

__all__ = [
    "check_bracket",
    "check_exit_prices",
    "exit_allowance",
    "group_complete",
    "worst_loss",
]

_EPS = 1e-9


def exit_allowance(entry_filled: float, exits_filled: float, remaining: float) -> float:
    """How much of an exit with ``remaining`` shares left may fill now: the bracket's exposure (what the
    entry filled less what the exits filled), never more than ``remaining``, never below zero."""
    return max(0.0, min(remaining, entry_filled - exits_filled))


def group_complete(entry_done: bool, entry_filled: float, exits_filled: float) -> bool:
    """Whether a bracket is over: its entry can no longer fill and no exposure is left to protect."""
    return entry_done and entry_filled - exits_filled <= _EPS


def check_bracket(parent: Order, children: Sequence[Order]) -> None:
    """Raise :class:`OrderValidationError` naming what is wrong with a bracket (an entry and its exits)."""
    if parent.parent_id:
        raise OrderValidationError(
            f"order {parent.order_id} is a child of {parent.parent_id}; a bracket's entry cannot have a parent"
        )
    if not children:
        raise OrderValidationError(
            f"bracket entry {parent.order_id} has no exits; add a take-profit or a stop-loss"
        )
    for child in children:
        if child.symbol != parent.symbol:
            raise OrderValidationError(
                f"bracket exit {child.order_id} trades {child.symbol}, its entry {parent.symbol}; exits close the "
                "entry's position"
            )
        if child.side == parent.side:
            raise OrderValidationError(
                f"bracket exit {child.order_id} is a {child.side} like its entry; an exit takes the other side"
            )
        if abs(child.quantity - parent.quantity) > _EPS:
            raise OrderValidationError(
                f"bracket exit {child.order_id} is for {child.quantity:g} shares, its entry for "
                f"{parent.quantity:g}; an exit covers the entry's whole quantity"
            )
        if child.auction or child.time_in_force == TimeInForce.IOC:
            raise OrderValidationError(
                f"bracket exit {child.order_id} works until its entry's position is closed: use time_in_force "
                "'day', 'gtc' or 'gtd', not an auction or 'ioc'"
            )


def check_exit_prices(
    side: OrderSide, entry: float | None, take_profit: float | None, stop_loss: float | None
) -> None:
    """Take-profit beyond the entry in the trade's favour, stop-loss beyond it against; the entry's price
    (its limit, ``None`` for a market entry) between them."""
    buy = side is OrderSide.BUY
    if take_profit is not None and stop_loss is not None:
        if buy and not take_profit > stop_loss:
            raise OrderValidationError(
                f"a long bracket needs take_profit above stop_loss, got take_profit={take_profit:g} "
                f"stop_loss={stop_loss:g}"
            )
        if not buy and not take_profit < stop_loss:
            raise OrderValidationError(
                f"a short bracket needs take_profit below stop_loss, got take_profit={take_profit:g} "
                f"stop_loss={stop_loss:g}"
            )
    if entry is None:
        return
    where = "above" if buy else "below"
    against = "below" if buy else "above"
    if take_profit is not None and (take_profit <= entry if buy else take_profit >= entry):
        raise OrderValidationError(
            f"take_profit {take_profit:g} is on the wrong side of the entry {entry:g}: a {side} bracket takes "
            f"profit {where} its entry"
        )
    if stop_loss is not None and (stop_loss >= entry if buy else stop_loss <= entry):
        raise OrderValidationError(
            f"stop_loss {stop_loss:g} is on the wrong side of the entry {entry:g}: a {side} bracket stops out "
            f"{against} its entry"
        )


def worst_loss(parent: Order, children: Sequence[Order], price: float | None) -> float | None:
    """What the bracket loses at most if its entry fills and its stop-loss fills at the stop: the entry's
    quantity times the distance from the entry's price (its limit, else ``price``) to the stop. None when
    the bracket has no stop exit or no price is known (a loss then has no bound)."""
    stops = [c.stop_price for c in children if c.type_enum in _STOPS and c.stop_price is not None]
    entry = parent.limit_price if parent.type_enum is OrderType.LIMIT else price
    if parent.type_enum is OrderType.STOP_LIMIT:
        entry = parent.limit_price
    if not stops or entry is None:
        return None
    sign = parent.side_enum.sign
    return max(0.0, *((entry - stop) * sign for stop in stops)) * parent.quantity


_STOPS = (OrderType.STOP, OrderType.STOP_LIMIT)
