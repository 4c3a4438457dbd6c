"""Orders, fills and positions: the small domain types shared by backtest and live trading.

:class:`OrderStatus` is an order's lifecycle as the strategy sees it, starting at ``CREATED`` (built, not
yet seen by a broker). The journal keeps its own :class:`~copilot_quant.journal.states.JournalOrderState`
for the durable record, which starts at ``INTENT`` instead (written to disk before sending, so possibly in
flight after a crash) and otherwise has the same states with the same values.

These types know nothing about Interactive Brokers; the IB vocabulary is translated at the edge
(``copilot_quant.brokers``). A strategy creates :class:`Order` objects; only a broker creates
:class:`Fill` objects and mutates :class:`Position` objects.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from copilot_quant.errors import OrderValidationError
from copilot_quant.model.oca import OcaType, parse_oca_type

__all__ = [
    "Fill",
    "Order",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "Position",
    "TimeInForce",
    "continue_order_ids_after",
]


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells: the sign of the position change."""
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"
    TRAILING_STOP_LIMIT = "trailing_stop_limit"
    MARKET_ON_CLOSE = "market_on_close"
    LIMIT_ON_CLOSE = "limit_on_close"

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.LIMIT_ON_CLOSE)

    @property
    def on_close(self) -> bool:
        """Filled in the closing auction (IB's ``MOC``/``LOC``)."""
        return self in (OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE)

    @property
    def is_trailing(self) -> bool:
        return self in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"  # the opening auction: a market or limit order filled at the session's open, or cancelled
    IOC = "ioc"  # immediate or cancel: what the current price fills at once, the rest cancelled
    GTD = "gtd"  # good till date: works until ``Order.good_till``, then expires


class OrderStatus(StrEnum):
    CREATED = "created"  # built by a strategy, not yet seen by a broker
    SUBMITTED = "submitted"  # accepted by the broker, working
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_done(self) -> bool:
        """True once the order can no longer fill."""
        return self in _DONE

    @property
    def is_active(self) -> bool:
        return not self.is_done


_DONE = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})

_ORDER_IDS = itertools.count(1)
_ORDER_IDS_LOCK = threading.Lock()  # the live engine's threads create orders too
_AUTO_ID = re.compile(r"O(\d+)")
_E = TypeVar("_E", bound=StrEnum)


def _next_order_id() -> str:
    with _ORDER_IDS_LOCK:
        return f"O{next(_ORDER_IDS)}"


def continue_order_ids_after(order_ids: Iterable[str | None]) -> None:
    """Make automatic order ids (``O1``, ``O2`` ...) continue after the highest ``O<n>`` in ``order_ids``.

    Automatic ids count from ``O1`` in every process. The live engine calls this with the ids its journal
    holds, so that after a restart a new order never shares its id with an order adopted from IB
    (``strategy.cancel("O3")`` names one order). Ids never go back: a lower number changes nothing.
    """
    global _ORDER_IDS  # noqa: PLW0603 - the process-wide id sequence; only ever moved forward
    highest = max((int(m[1]) for i in order_ids if i and (m := _AUTO_ID.fullmatch(i))), default=0)
    with _ORDER_IDS_LOCK:
        upcoming = next(_ORDER_IDS)
        _ORDER_IDS = itertools.count(max(upcoming, highest + 1))


_ALIASES = {
    "mkt": "market",
    "lmt": "limit",
    "stp": "stop",
    "stp_lmt": "stop_limit",
    "trail": "trailing_stop",
    "moc": "market_on_close",
    "loc": "limit_on_close",
    "trail_limit": "trailing_stop_limit",
    "b": "buy",
    "s": "sell",
}


def _parse_enum(enum: type[_E], value: Any, what: str) -> _E:
    if isinstance(value, enum):
        return value
    members: dict[str, _E] = enum._value2member_map_  # type: ignore[assignment]
    member = members.get(value) if isinstance(value, str) else None
    if member is not None:  # the common case, e.g. 'market', 'buy': no normalising needed
        return member
    text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    text = _ALIASES.get(text, text)
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum)
        raise OrderValidationError(f"unknown {what} {value!r}; use one of {allowed}") from None


def shown(value: object) -> str:
    """``value`` as a message shows it: numbers as plain numbers (a numpy ``np.float64(4.81)`` is ``4.81``),
    anything else as its ``repr``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return repr(value)


def _check_price(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise OrderValidationError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(price) or price <= 0:
        raise OrderValidationError(f"{what} must be a positive finite price, got {shown(value)}")
    return price


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
    :mod:`copilot_quant.model.oca`): ``1`` cancel them (the default), ``2`` reduce them proportionally,
    ``3`` reduce them without overfill protection. A reduction lowers ``quantity``.

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
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise OrderValidationError(
                f"symbol must be a non-empty string such as 'AAPL', got {self.symbol!r}"
            )
        self.symbol = self.symbol.strip().upper()
        self.order_type = _parse_enum(OrderType, self.order_type, "order_type")
        self.side = _parse_enum(OrderSide, self.side, "side")
        self.time_in_force = _parse_enum(TimeInForce, self.time_in_force, "time_in_force")
        self.quantity = self._check_quantity(self.quantity)
        self.limit_price = _check_price(self.limit_price, "limit_price")
        self.stop_price = _check_price(self.stop_price, "stop_price")
        if self.order_type.needs_limit_price and self.limit_price is None:
            raise OrderValidationError(
                f"a {self.order_type.value} order needs a positive limit_price, e.g. "
                f"Order('{self.symbol}', {self.quantity:g}, '{self.order_type.value}', '{self.side.value}', "
                "limit_price=100.0)"
            )
        if self.order_type.needs_stop_price and self.stop_price is None:
            raise OrderValidationError(f"a {self.order_type.value} order needs a positive stop_price")
        if (
            self.order_type in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT)
            or self.trail_amount is not None
            or self.trail_percent is not None
            or self.limit_offset is not None
        ):
            self._check_trail()
        if self.order_id is None:
            self.order_id = _next_order_id()
        if self.time_in_force in (TimeInForce.OPG, TimeInForce.IOC) or self.order_type.on_close:
            self._check_auction()
        if self.time_in_force is TimeInForce.GTD or self.good_till is not None:
            self._check_good_till()
        if self.oca_group or self.oca_type is not OcaType.CANCEL_WITH_BLOCK:
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
        return "close" if self.type_enum.on_close else ""

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
        return OrderSide(self.side)

    @property
    def type_enum(self) -> OrderType:
        return OrderType(self.order_type)

    @property
    def signed_quantity(self) -> float:
        """Quantity with sign: positive for buys, negative for sells."""
        return self.quantity * OrderSide(self.side).sign

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


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of (part of) an order, as reported by a broker.

    ``commission`` is in account currency and is never negative: everything the fill cost, as IB's
    commissionReport reports it; ``fees`` is the part of it that third parties charge (clearing, exchange,
    regulatory fees IB passes through under Tiered pricing; 0 when not known). ``fill_quantity`` is
    positive; the direction comes from ``order.side``. ``net_proceeds`` is the signed change in cash this fill
    causes (negative for a buy), ``total_cost`` the gross notional plus commission.
    """

    order: Order
    fill_price: float
    fill_quantity: float
    commission: float
    timestamp: datetime
    fill_id: str | None = None
    fees: float = 0.0

    def __post_init__(self) -> None:
        if not (
            type(self.fill_price) is float
            and type(self.fill_quantity) is float
            and type(self.commission) is float
        ):  # brokers pass floats; anything else (ints, numpy scalars, junk) is normalised or refused
            self._coerce_numbers()
        if not math.isfinite(self.fill_price) or self.fill_price <= 0:
            raise OrderValidationError(f"fill_price must be positive, got {self.fill_price!r}")
        if not math.isfinite(self.fill_quantity) or self.fill_quantity <= 0:
            raise OrderValidationError(f"fill_quantity must be positive, got {self.fill_quantity!r}")
        if not math.isfinite(self.commission) or self.commission < 0:
            raise OrderValidationError(f"commission must be zero or positive, got {self.commission!r}")
        if self.fees and not 0 <= self.fees <= self.commission + 1e-9:
            raise OrderValidationError(
                f"fees are the third-party part of the commission: 0 <= fees <= {self.commission!r}, "
                f"got {self.fees!r}"
            )

    def _coerce_numbers(self) -> None:
        for name in ("fill_price", "fill_quantity", "commission"):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, float(value))  # frozen dataclass
            except (TypeError, ValueError):
                raise OrderValidationError(f"{name} must be a number, got {value!r}") from None

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def side(self) -> OrderSide:
        return OrderSide(self.order.side)

    @property
    def signed_quantity(self) -> float:
        return self.fill_quantity * self.side.sign

    @property
    def notional(self) -> float:
        return self.fill_price * self.fill_quantity

    @property
    def total_cost(self) -> float:
        """Gross value traded plus commission (always positive)."""
        return self.notional + self.commission

    @property
    def net_proceeds(self) -> float:
        """Signed cash change: ``-(notional + commission)`` for a buy, ``notional - commission`` for a sell."""
        return -self.signed_quantity * self.fill_price - self.commission


@dataclass(slots=True)
class Position:
    """Holdings in one symbol. Negative ``quantity`` is a short, and its ``market_value`` is negative.

    Average cost follows the usual convention: it changes only when a position is opened or
    increased; reducing a position realizes P&L against it; crossing through zero realizes the whole
    old position and opens the remainder at the fill price. Commissions are not folded into the
    average cost; they are accounted in cash (and in :attr:`commission_paid`).

    ``multiplier`` is the contract's (50 for an ES future, 1 for a stock or a forex pair): realized and
    unrealized P&L and :attr:`market_value` (the notional, as IB reports it) are multiplied by it.
    """

    symbol: str
    quantity: float = 0.0
    avg_entry_price: float = 0.0
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
    last_price: float = 0.0
    commission_paid: float = 0.0
    multiplier: float = 1.0

    @property
    def avg_cost(self) -> float:
        return self.avg_entry_price

    @property
    def market_value(self) -> float:
        """Signed value at the last marked price (negative for shorts), times the multiplier."""
        price = self.last_price or self.avg_entry_price
        return self.quantity * price * self.multiplier

    @property
    def total_pnl(self) -> float:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def is_flat(self) -> bool:
        return abs(self.quantity) < 1e-12

    def update_from_fill(self, fill: Fill) -> float:
        """Apply a fill; returns the P&L it realized (before commission)."""
        return self.apply(fill.signed_quantity, fill.fill_price, fill.commission)

    def apply(self, signed_qty: float, price: float, commission: float = 0.0) -> float:
        """Apply a signed trade of ``signed_qty`` at ``price``; returns realized P&L (before commission)."""
        realized = 0.0
        old = self.quantity
        new = old + signed_qty
        if old == 0 or (old > 0) == (signed_qty > 0):
            # opening or adding: weighted average cost
            self.avg_entry_price = (old * self.avg_entry_price + signed_qty * price) / new if new else 0.0
        else:
            closed = min(abs(signed_qty), abs(old))
            direction = 1.0 if old > 0 else -1.0
            realized = closed * (price - self.avg_entry_price) * direction * self.multiplier
            if abs(new) < 1e-12:
                new = 0.0
                self.avg_entry_price = 0.0
            elif (new > 0) != (old > 0):
                self.avg_entry_price = float(price)  # crossed through zero: remainder opened at this price
        self.quantity = new
        self.realized_pnl += realized
        self.commission_paid += commission
        self.update_unrealized_pnl(price)
        return realized

    def update_unrealized_pnl(self, current_price: float) -> None:
        """Mark the position to ``current_price``."""
        self.last_price = float(current_price)
        self.unrealized_pnl = (
            self.quantity * (self.last_price - self.avg_entry_price) * self.multiplier
            if self.quantity
            else 0.0
        )

    def snapshot(self) -> Position:
        """An independent copy, safe to hand to a strategy."""
        return replace(self)
