"""Orders, fills and positions: the small domain types shared by backtest and live trading.

:class:`OrderStatus` is an order's lifecycle as the strategy sees it, starting at ``CREATED`` (built, not
yet seen by a broker). The journal keeps its own :class:`~copilot_quant.journal.states.JournalOrderState`
for the durable record, which starts at ``INTENT`` instead (written to disk before sending, so possibly in
flight after a crash) and otherwise has the same states with the same values.

The vocabulary (the enums) lives in :mod:`copilot_quant.model.order_terms`, automatic ids in
:mod:`copilot_quant.model.order_ids`, :class:`Fill` and :class:`Position` in :mod:`copilot_quant.model.fills`;
this module holds :class:`Order` and re-exports the rest, so every import path stays as it was.

These types know nothing about Interactive Brokers; the IB vocabulary is translated at the edge
(``copilot_quant.brokers``). A strategy creates :class:`Order` objects; only a broker creates
:class:`Fill` objects and mutates :class:`Position` objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from copilot_quant.errors import OrderValidationError
from copilot_quant.model.fills import Fill, Position
from copilot_quant.model.oca import OcaType, parse_oca_type
from copilot_quant.model.order_ids import continue_order_ids_after
from copilot_quant.model.order_ids import next_order_id as _next_order_id
from copilot_quant.model.order_terms import NEEDS_LIMIT as _NEEDS_LIMIT
from copilot_quant.model.order_terms import NEEDS_STOP as _NEEDS_STOP
from copilot_quant.model.order_terms import ON_CLOSE as _ON_CLOSE
from copilot_quant.model.order_terms import TRAILING as _TRAILING
from copilot_quant.model.order_terms import (
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    shown,
)
from copilot_quant.model.order_terms import check_price as _check_price
from copilot_quant.model.order_terms import parse_enum as _parse_enum

__all__ = [
    "Fill",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "TimeInForce",
    "continue_order_ids_after",
    "shown",
]


_AUCTION_TIFS = frozenset({TimeInForce.OPG, TimeInForce.IOC})
_GTD, _DAY, _GTC = TimeInForce.GTD, TimeInForce.DAY, TimeInForce.GTC
_MARKET = OrderType.MARKET
#: ints up to this convert to floats exactly (Order's quick path for a plain whole-share quantity)
_EXACT_INT = 2**53
_CANCEL_WITH_BLOCK = OcaType.CANCEL_WITH_BLOCK


#: Symbols already stripped and upper-cased, as orders have met them (bounded): an order's symbol is then
#: taken as it is, without a copy.
_CLEAN_SYMBOLS: set[str] = set()
_CLEAN_SYMBOLS_KEPT = 10_000


def _clean_symbol(symbol: Any) -> str:
    """``symbol`` stripped and upper-cased; refused unless it is a non-empty string."""
    if not isinstance(symbol, str) or not (clean := symbol.strip()):
        raise OrderValidationError(f"symbol must be a non-empty string such as 'AAPL', got {symbol!r}")
    clean = clean.upper()
    if type(clean) is str and len(_CLEAN_SYMBOLS) < _CLEAN_SYMBOLS_KEPT:
        _CLEAN_SYMBOLS.add(clean)
    return clean


@dataclass(slots=True, eq=False)
class Order:
    """An instruction to buy or sell, exactly as the guide builds it::

        Order(symbol='AAPL', quantity=10, order_type='market', side='buy')

    ``order_type`` is one of ``'market'``, ``'limit'``, ``'stop'``, ``'stop_limit'``; ``side`` is
    ``'buy'`` or ``'sell'`` (strings or the enums). Limit orders need ``limit_price``, stop orders
    ``stop_price``. Invalid input raises :class:`~copilot_quant.errors.OrderValidationError` here, at
    construction, never later in a broker. Quantities must be whole shares unless
    ``allow_fractional=True``.

    ``oca_group`` puts the order in a one-cancels-all group with every other order of that name (any
    symbol); ``oca_type`` says what a fill does to the others, as IB's ocaType (see
    :mod:`copilot_quant.model.oca`): ``1`` cancel them (the default), ``2`` reduce them by the quantity
    that filled, ``3`` the same without overfill protection; a member that fills completely cancels the
    others. A reduction lowers ``quantity``.

    ``parent_id`` makes the order an exit of a bracket: it names the entry's ``order_id``, works only for
    what the entry has filled and is one-cancels-other with the entry's other exits (see
    :mod:`copilot_quant.model.bracket`); :meth:`bracket` builds the three orders.

    ``status``, ``filled_quantity``, ``avg_fill_price`` and ``reject_reason`` are maintained by the
    broker; strategies should treat them as read-only. So is ``routed_from``: an order for a continuous
    future (``"MES"``) trades the contract of the day, whose symbol replaces ``symbol`` (``"MESZ6"``) while
    ``routed_from`` keeps ``"MES"`` (see :mod:`copilot_quant.backtest.rolls`).
    """

    symbol: str
    quantity: float
    order_type: OrderType | str = OrderType.MARKET
    side: OrderSide | str = OrderSide.BUY
    limit_price: float | None = None
    timestamp: datetime | None = None
    order_id: str | None = None
    stop_price: float | None = None
    time_in_force: TimeInForce | str = TimeInForce.DAY
    allow_fractional: bool = False
    tag: str = ""
    status: OrderStatus = OrderStatus.CREATED
    filled_quantity: float = 0.0
    avg_fill_price: float = 0.0
    reject_reason: str = ""
    broker_order_id: int | None = field(default=None, repr=False)
    oca_group: str = ""
    oca_type: OcaType | int = OcaType.CANCEL_WITH_BLOCK
    trail_amount: float | None = None
    trail_percent: float | None = None
    limit_offset: float | None = None
    good_till: datetime | None = None
    parent_id: str = ""
    #: set by a backtest that routed an order for a continuous future (``"MES"``) to the contract of the
    #: day: the symbol the strategy wrote, while ``symbol`` is the contract's (``"MESZ6"``); else ``""``
    routed_from: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        # Every order a strategy returns passes here, so the common case (enums or their plain values,
        # no optional terms) costs a few set and type tests; each rarer term has its own check.
        symbol = self.symbol
        if not (type(symbol) is str and symbol in _CLEAN_SYMBOLS):  # else already stripped and upper-case
            self.symbol = _clean_symbol(symbol)
        kind = self.order_type
        if type(kind) is not OrderType:
            kind = self.order_type = _parse_enum(OrderType, kind, "order_type")
        if type(self.side) is not OrderSide:
            self.side = _parse_enum(OrderSide, self.side, "side")
        tif = self.time_in_force
        if type(tif) is not TimeInForce:
            tif = self.time_in_force = _parse_enum(TimeInForce, tif, "time_in_force")
        qty = self.quantity
        if type(qty) is int and 0 < qty <= _EXACT_INT:  # the usual whole-share int: nothing to refuse
            self.quantity = float(qty)
        else:
            self.quantity = self._check_quantity(qty)
        if (
            kind is _MARKET
            and (tif is _DAY or tif is _GTC)
            and self.limit_price is None
            and self.stop_price is None
            and self.trail_amount is None
            and self.trail_percent is None
            and self.limit_offset is None
            and self.good_till is None
            and not self.oca_group
            and self.oca_type is _CANCEL_WITH_BLOCK
            and not self.parent_id
        ):  # a plain market order (most orders): none of the checks below applies
            if self.order_id is None:
                self.order_id = _next_order_id()
            return
        if self.limit_price is not None:
            self.limit_price = _check_price(self.limit_price, "limit_price")
        elif kind in _NEEDS_LIMIT:
            raise OrderValidationError(
                f"a {kind.value} order needs a positive limit_price, e.g. "
                f"Order('{self.symbol}', {self.quantity:g}, '{kind.value}', '{OrderSide(self.side).value}', "
                "limit_price=100.0)"
            )
        if self.stop_price is not None:
            self.stop_price = _check_price(self.stop_price, "stop_price")
        elif kind in _NEEDS_STOP:
            raise OrderValidationError(f"a {kind.value} order needs a positive stop_price")
        if (
            kind in _TRAILING
            or self.trail_amount is not None
            or self.trail_percent is not None
            or self.limit_offset is not None
        ):
            self._check_trail()
        if self.order_id is None:
            self.order_id = _next_order_id()
        if tif in _AUCTION_TIFS or kind in _ON_CLOSE:
            self._check_auction()
        if tif is _GTD or self.good_till is not None:
            self._check_good_till()
        if self.oca_group or self.oca_type is not _CANCEL_WITH_BLOCK:
            self._check_oca()
        if self.parent_id:
            self._check_parent()

    def _check_parent(self) -> None:
        if not isinstance(self.parent_id, str):
            raise OrderValidationError(
                f"parent_id must be the entry's order_id (a string), got {self.parent_id!r}"
            )
        if self.parent_id == self.order_id:
            raise OrderValidationError(f"order {self.order_id} cannot be its own parent")
        if self.oca_group:
            raise OrderValidationError(
                "a bracket exit (parent_id) is already one-cancels-other with its sibling; drop its oca_group"
            )

    def _check_good_till(self) -> None:
        if self.time_in_force != TimeInForce.GTD:
            raise OrderValidationError("good_till belongs to time_in_force='gtd' orders")
        when = self.good_till
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise OrderValidationError(
                f"a gtd order needs good_till, a timezone-aware datetime (e.g. pd.Timestamp('2024-03-08 16:00', "
                f"tz='America/New_York')), got {when!r}"
            )

    def _check_auction(self) -> None:
        kind, tif = self.type_enum, TimeInForce(self.time_in_force)
        if tif is TimeInForce.IOC and kind not in (OrderType.MARKET, OrderType.LIMIT):
            raise OrderValidationError(
                f"time_in_force='ioc' (immediate or cancel) takes a market or limit order, not {kind.value}"
            )
        if tif is TimeInForce.OPG and kind not in (OrderType.MARKET, OrderType.LIMIT):
            raise OrderValidationError(
                f"time_in_force='opg' (the opening auction) takes a market or limit order, not {kind.value}"
            )
        if kind.on_close and tif is not TimeInForce.DAY:
            raise OrderValidationError(
                f"a {kind.value} order is for today's closing auction: time_in_force must be 'day', not {tif.value!r}"
            )

    @property
    def auction(self) -> str:
        """``'open'`` or ``'close'`` for orders filled in an auction, else ``''``."""
        if self.time_in_force == TimeInForce.OPG:
            return "open"
        return "close" if self.order_type in _ON_CLOSE else ""

    def _check_trail(self) -> None:
        order_type = self.type_enum
        kind = order_type.value
        if not order_type.is_trailing:
            raise OrderValidationError(
                f"trail_amount/trail_percent belong to trailing orders, not a {kind} order; use "
                "order_type='trailing_stop' or 'trailing_stop_limit'"
            )
        self.trail_amount = _check_price(self.trail_amount, "trail_amount")
        if self.trail_percent is not None:
            percent = _check_price(self.trail_percent, "trail_percent")
            if percent is None or percent >= 100:
                raise OrderValidationError(f"trail_percent must be between 0 and 100, got {shown(percent)}")
            self.trail_percent = percent
        if (self.trail_amount is None) == (self.trail_percent is None):
            raise OrderValidationError(
                f"a {kind} order needs exactly one of trail_amount (a price distance, e.g. 2.0) and "
                "trail_percent (e.g. 1.5 for 1.5 %)"
            )
        if order_type is OrderType.TRAILING_STOP_LIMIT:
            if self.limit_offset is None:
                raise OrderValidationError(
                    "a trailing_stop_limit order needs limit_offset: how far the limit sits beyond the stop "
                    "when it triggers (0 for a limit at the stop)"
                )
            offset = float(self.limit_offset)
            if not math.isfinite(offset) or offset < 0:
                raise OrderValidationError(f"limit_offset must be zero or positive, got {shown(offset)}")
            self.limit_offset = offset
        elif self.limit_offset is not None:
            raise OrderValidationError("limit_offset belongs to trailing_stop_limit orders")

    def _check_oca(self) -> None:
        if not isinstance(self.oca_group, str):
            raise OrderValidationError(f"oca_group must be a group name (a string), got {self.oca_group!r}")
        self.oca_group = self.oca_group.strip()
        self.oca_type = parse_oca_type(self.oca_type)

    def _check_quantity(self, value: Any) -> float:
        if isinstance(value, bool):  # True would silently become 1 share
            raise OrderValidationError(f"quantity must be a number of shares, got {value!r}")
        try:
            qty = float(value)
        except (TypeError, ValueError):
            raise OrderValidationError(f"quantity must be a number, got {value!r}") from None
        if not math.isfinite(qty) or qty <= 0:
            raise OrderValidationError(
                f"quantity must be a positive finite number, got {shown(value)}; "
                "use side='sell' to sell rather than a negative quantity"
            )
        if not self.allow_fractional and not qty.is_integer():
            raise OrderValidationError(
                f"quantity {shown(value)} is fractional; round it (e.g. int(quantity)) or pass "
                "allow_fractional=True if your broker supports fractional shares"
            )
        return qty

    # The enums are parsed in __post_init__; these typed views help readers and mypy.
    @property
    def side_enum(self) -> OrderSide:
        side = self.side
        return side if type(side) is OrderSide else OrderSide(side)

    @property
    def type_enum(self) -> OrderType:
        kind = self.order_type
        return kind if type(kind) is OrderType else OrderType(kind)

    @property
    def signed_quantity(self) -> float:
        """Quantity with sign: positive for buys, negative for sells."""
        return self.quantity * self.side_enum.sign

    @property
    def remaining_quantity(self) -> float:
        return max(self.quantity - self.filled_quantity, 0.0)

    @property
    def is_buy(self) -> bool:
        return self.side == OrderSide.BUY

    @staticmethod
    def one_cancels_all(
        orders: Iterable[Order], group: str, oca_type: OcaType | int = OcaType.CANCEL_WITH_BLOCK
    ) -> list[Order]:
        """Put ``orders`` in one-cancels-all group ``group`` (as ib_async's ``oneCancelsAll``) and return
        them as a list: ``return Order.one_cancels_all([take_profit, stop_loss], "exit-AAPL")``."""
        if not isinstance(group, str) or not group.strip():
            raise OrderValidationError(f"an OCA group needs a non-empty name, got {group!r}")
        kind = parse_oca_type(oca_type)
        placed = list(orders)
        for order in placed:
            order.oca_group, order.oca_type = group.strip(), kind
        return placed

    @staticmethod
    def bracket(
        symbol: str,
        quantity: float,
        side: OrderSide | str = OrderSide.BUY,
        *,
        limit_price: float | None = None,
        take_profit: float | None = None,
        stop_loss: float | None = None,
        time_in_force: TimeInForce | str = TimeInForce.DAY,
        good_till: datetime | None = None,
        tag: str = "",
        allow_fractional: bool = False,
    ) -> list[Order]:
        """An entry with its exits, as ib_async's ``bracketOrder``: ``[entry, take_profit, stop_loss]``
        (an exit left out is not built). Return the list from ``on_data``::

            return Order.bracket("AAPL", 100, "buy", limit_price=185.0, take_profit=195.0, stop_loss=180.0)

        The entry is a limit order at ``limit_price`` (a market order without one); the take-profit a limit
        at ``take_profit`` and the stop-loss a stop at ``stop_loss``, both on the other side, for the same
        quantity. The exits work only once the entry fills (for what it filled) and cancel each other (see
        :mod:`copilot_quant.model.bracket`). Every order takes ``time_in_force`` (``day``, ``gtc`` or
        ``gtd`` with ``good_till``). A take-profit or stop-loss on the wrong side of the entry is an
        :class:`~copilot_quant.errors.OrderValidationError`.
        """
        from copilot_quant.model.bracket import check_bracket, check_exit_prices  # noqa: PLC0415 - it imports this module

        if take_profit is None and stop_loss is None:
            raise OrderValidationError("a bracket needs take_profit=, stop_loss= or both")
        tif = _parse_enum(TimeInForce, time_in_force, "time_in_force")
        if tif in (TimeInForce.IOC, TimeInForce.OPG):
            raise OrderValidationError(
                f"a bracket's orders work until the position is closed: use time_in_force 'day', 'gtc' or "
                f"'gtd', not {tif.value!r}"
            )
        terms: dict[str, Any] = {"time_in_force": tif, "good_till": good_till, "tag": tag}
        terms["allow_fractional"] = allow_fractional
        entry_side = _parse_enum(OrderSide, side, "side")
        check_exit_prices(  # before any order is built: a refused bracket uses up no order ids
            entry_side,
            _check_price(limit_price, "limit_price"),
            _check_price(take_profit, "take_profit"),
            _check_price(stop_loss, "stop_loss"),
        )
        kind = OrderType.MARKET if limit_price is None else OrderType.LIMIT
        entry = Order(symbol, quantity, kind, entry_side, limit_price=limit_price, **terms)
        exit_side = OrderSide.SELL if entry_side is OrderSide.BUY else OrderSide.BUY
        exits = []
        if take_profit is not None:
            exits.append(
                Order(
                    symbol,
                    quantity,
                    OrderType.LIMIT,
                    exit_side,
                    limit_price=take_profit,
                    parent_id=str(entry.order_id),
                    **terms,
                )
            )
        if stop_loss is not None:
            exits.append(
                Order(
                    symbol,
                    quantity,
                    OrderType.STOP,
                    exit_side,
                    stop_price=stop_loss,
                    parent_id=str(entry.order_id),
                    **terms,
                )
            )
        check_bracket(entry, exits)
        return [entry, *exits]

    def copy(self, **changes: Any) -> Order:
        """A new order with the same fields (and a fresh order_id unless one is given)."""
        changes.setdefault("order_id", None)
        changes.setdefault("status", OrderStatus.CREATED)
        changes.setdefault("filled_quantity", 0.0)
        changes.setdefault("avg_fill_price", 0.0)
        changes.setdefault("reject_reason", "")
        changes.setdefault("broker_order_id", None)
        changes.setdefault("routed_from", "")
        return replace(self, **changes)
