"""Pre-trade risk limits: every order passes :meth:`RiskManager.check` before it is journaled as sent.

Each limit is optional (None disables it). A limit that cannot be evaluated — no valid last price for a
notional limit, no equity for the daily-loss limit — rejects the order ("fail closed"): a safety rail
that silently lets orders through when blind is no rail.

Orders that only *reduce* risk (bring the symbol's projected position closer to flat without crossing
it) pass the position, exposure and daily-loss limits even when the account is already beyond them, so
that a strategy can always get out. The kill switch, the liveness guard, the order-rate limit, the order size and the price
band apply to every order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from copilot_quant.errors import ConfigError
from copilot_quant.model.bracket import worst_loss
from copilot_quant.model.instruments import multiplier_of
from copilot_quant.model.oca import OcaType
from copilot_quant.model.orders import Order, OrderSide, OrderStatus, Position
from copilot_quant.risk.kill_switch import KillSwitch
from copilot_quant.risk.liveness import LivenessGuard
from copilot_quant.risk.rate_limit import OrderRateLimiter

__all__ = ["RiskDecision", "RiskLimits", "RiskManager", "RiskRule"]

log = logging.getLogger(__name__)

_EPS = 1e-9


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RiskRule(StrEnum):
    """Which rail refused an order (``RiskDecision.rule``)."""

    KILL_SWITCH = "kill_switch"
    LIVENESS = "liveness"
    ORDER_RATE = "max_orders_per_minute"
    ORDER_QUANTITY = "max_order_quantity"
    NO_PRICE = "no_price"
    PRICE_BAND = "price_band_pct"
    ORDER_NOTIONAL = "max_order_notional"
    POSITION = "max_position_per_symbol"
    POSITION_NOTIONAL = "max_position_notional_per_symbol"
    GROSS_EXPOSURE = "max_gross_exposure"
    DAILY_LOSS = "max_daily_loss"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The verdict on one order: ``ok``, else the ``reason`` (for the reject, the journal and the log)."""

    ok: bool
    reason: str = ""
    rule: RiskRule | None = None

    def __bool__(self) -> bool:
        return self.ok


_ALLOW = RiskDecision(True)


def _limit(value: Any, name: str, *, whole: bool = False) -> float | int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"RiskLimits.{name} must be a positive number (or None to disable), got {value!r}")
    if whole:
        if not float(value).is_integer():
            raise ConfigError(f"RiskLimits.{name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Configurable pre-trade limits; all optional (None = no limit). Money is in account currency.

    * ``max_order_quantity`` — shares in one order.
    * ``max_order_notional`` — quantity x price of one order (the price is the worst of the last price
      and the order's limit/stop price), times a futures contract's multiplier (MES: 5), as everywhere.
    * ``max_position_per_symbol`` — absolute shares held in one symbol after the order, counting the
      symbol's working orders on the same side.
    * ``max_position_notional_per_symbol`` — the same position valued at the last price.
    * ``max_gross_exposure`` — sum of absolute position values across symbols after the order.
    * ``max_daily_loss`` — once the day's loss reaches this, only risk-reducing orders pass. The loss is
      ``-daily_pnl`` (IB's P&L stream) when the caller has it, else ``day_start_equity - equity``.
    * ``max_orders_per_minute`` — orders submitted in any 60-second window.
    * ``price_band_pct`` — fat-finger guard: a limit or stop price more than this many **percent** away
      from the last price is refused (``5`` means ±5 %).
    """

    max_order_quantity: float | None = None
    max_order_notional: float | None = None
    max_position_per_symbol: float | None = None
    max_position_notional_per_symbol: float | None = None
    max_gross_exposure: float | None = None
    max_daily_loss: float | None = None
    max_orders_per_minute: int | None = None
    price_band_pct: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _limit(getattr(self, f.name), f.name, whole=f.name == "max_orders_per_minute")
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RiskLimits:
        """Build from a config mapping (TOML/JSON/env); unknown keys are refused with the allowed ones."""
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown risk limit(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
            )
        return cls(**dict(values))

    @property
    def needs_price(self) -> bool:
        return any(
            v is not None
            for v in (
                self.max_order_notional,
                self.max_position_notional_per_symbol,
                self.max_gross_exposure,
                self.price_band_pct,
            )
        )


def _rejected(owner: object) -> bool:
    return isinstance(owner, Order) and owner.status is OrderStatus.REJECTED


def _position_qty(positions: Mapping[str, Position], symbol: str) -> float:
    position = positions.get(symbol)
    return 0.0 if position is None else float(position.quantity)


def _pending_same_side(open_orders: Iterable[Order], order: Order) -> float:
    """Signed remaining quantity of the symbol's working orders on the order's side (worst case).

    Every order passed counts unless it is filled: the caller passes the orders IB may still hold, which
    include orders an IB error code alone marked REJECTED or CANCELLED (IB never finished them; they can
    still fill — docs/ib-behaviours.md, rows 1 and 2). The members of a one-cancels-all group with
    overfill protection (ocaType 1 or 2) fill one member's worth at most between them (see
    :mod:`copilot_quant.model.oca`), so such a group counts as its largest member — including ``order``
    when it joins the group: a take-profit and a stop-loss for the same shares are one exit, not two.
    """
    total = 0.0
    groups: dict[str, float] = {}
    for other in open_orders:
        if other is order or other.symbol != order.symbol or other.side != order.side:
            continue
        if other.status is OrderStatus.FILLED:
            continue
        if _blocking_group(other):
            groups[other.oca_group] = max(groups.get(other.oca_group, 0.0), other.remaining_quantity)
        else:
            total += other.remaining_quantity
    own = groups.pop(order.oca_group, None) if _blocking_group(order) else None
    total += sum(groups.values())
    if own is not None:
        total += max(0.0, own - order.remaining_quantity)
    return total * OrderSide(order.side).sign


def _blocking_group(order: Order) -> bool:
    return bool(order.oca_group) and OcaType(order.oca_type).blocks


class RiskManager:
    """Applies :class:`RiskLimits`, the :class:`KillSwitch` and (optionally) a :class:`LivenessGuard`.

    Call :meth:`check` for every order before sending it and :meth:`record_submitted` once it is sent
    (that feeds the order-rate window). ``clock`` returns tz-aware UTC now. Thread-safe; pure apart from
    the rate window and the kill switch.

    The order-rate limit is atomic across threads: a passing :meth:`check` *reserves* one slot of
    ``max_orders_per_minute`` for the order (so two threads can never both take the last one), and
    :meth:`record_submitted` confirms it. An order that is not sent after all must give its slot back:
    :meth:`release_reservation` does, and so does the next check once the order's status is
    ``REJECTED`` (a broker reject, a journal failure); a slot neither confirmed nor released is freed
    after one window (60 s) in any case. ``check(..., reserve=False)`` asks without reserving.
    """

    def __init__(
        self,
        limits: RiskLimits | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        kill_switch: KillSwitch | None = None,
        liveness: LivenessGuard | None = None,
    ) -> None:
        self.limits = limits or RiskLimits()
        self._clock = clock or _utcnow
        self.kill_switch = kill_switch or KillSwitch(clock=self._clock)
        self.liveness = liveness
        per_minute = self.limits.max_orders_per_minute
        self._rate = None if per_minute is None else OrderRateLimiter(int(per_minute), timedelta(seconds=60))
        #: symbol -> :func:`multiplier_of` (a registry lookup per order otherwise; a symbol's never changes).
        self._multipliers: dict[str, float] = {}

    def _multiplier(self, symbol: str) -> float:
        mult = self._multipliers.get(symbol)
        if mult is None:
            mult = self._multipliers[symbol] = multiplier_of(symbol)
        return mult

    def check(
        self,
        order: Order,
        last_price: float | None,
        positions: Mapping[str, Position] | None = None,
        equity: float | None = None,
        day_start_equity: float | None = None,
        *,
        open_orders: Iterable[Order] = (),
        expect_data: bool = True,
        reserve: bool = True,
        daily_pnl: float | None = None,
        exits: Sequence[Order] = (),
    ) -> RiskDecision:
        """May ``order`` be sent now? The first violated rail decides the reason.

        ``exits``: when ``order`` is a bracket's entry, its exits (sent with it, checked with it: they only
        close what it opens). The daily-loss limit then counts the bracket's worst case — the entry lost
        down to its stop (:func:`copilot_quant.model.bracket.worst_loss`) — not only the loss so far.

        ``positions``: current positions by symbol (their ``market_value`` values the other symbols for
        the gross exposure); ``open_orders``: the orders IB may still hold (working ones, and those an IB
        error code alone marked rejected), whose same-side remainder counts towards the position limits; ``expect_data``: False outside trading hours (passed to the liveness guard).
        ``daily_pnl``: the account's P&L since the trading day began as IB streams it (``reqPnL``, about
        every second); when given (and finite) the daily-loss limit reads it, else it falls back to
        ``day_start_equity - equity`` (account values real IB pushes only every ~3 minutes).
        ``reserve``: when the decision is ok, hold one order-rate slot for ``order`` until
        :meth:`record_submitted` or :meth:`release_reservation` (False: a dry run that holds nothing).
        """
        if not isinstance(order, Order):
            raise ConfigError(f"RiskManager.check needs an Order, got {type(order).__name__}")
        now = self._clock()
        rate = self._rate
        if rate is not None:
            # Orders rejected after their check (by the broker, a journal failure ...) give their slot back.
            rate.release_where(_rejected)
        decision = self._check(
            order,
            last_price,
            positions or {},
            equity,
            day_start_equity,
            list(open_orders),
            expect_data,
            now,
            daily_pnl=daily_pnl,
        )
        if decision.ok and exits:
            decision = self._check_bracket(order, exits, last_price, equity, day_start_equity, daily_pnl)
        if decision.ok and reserve and rate is not None and not rate.reserve(now, id(order), order):
            decision = self._rate_refusal(rate, now)  # another thread took the last slot meanwhile
        if not decision.ok:
            # The caller reports each order it stops (the broker adapter records the rejection, the engine
            # logs it once); a halt was logged loudly once, when it began. Logging it here too printed every
            # risk rejection three times (issue 16).
            log.log(
                logging.DEBUG,
                "risk check refused %s %g %s: %s",
                order.side,
                order.quantity,
                order.symbol,
                decision.reason,
            )
        return decision

    def record_submitted(self, order: Order) -> None:
        """``order`` was sent to the broker: count it in the order-rate window (confirms its reservation).

        An order that :meth:`check` did not reserve for takes over the oldest unconfirmed reservation, if
        any, so that every sent order is counted exactly once.
        """
        if self._rate is not None:
            self._rate.confirm(self._clock(), id(order))

    def release_reservation(self, order: Order) -> bool:
        """``order`` passed :meth:`check` but will not be sent: free its order-rate slot now.

        Returns False if it held none (no rate limit, already confirmed, released or timed out). Orders
        whose status is ``REJECTED`` are released by the next :meth:`check` anyway.
        """
        if self._rate is None:
            return False
        return self._rate.release(id(order))

    @property
    def pending_reservations(self) -> int:
        """Order-rate slots held by orders that passed :meth:`check` and are not confirmed or released."""
        return 0 if self._rate is None else self._rate.pending

    def _rate_refusal(self, rate: OrderRateLimiter, now: datetime) -> RiskDecision:
        wait = (rate.next_allowed_at(now) - now).total_seconds()
        return RiskDecision(
            False,
            f"more than {self.limits.max_orders_per_minute} orders in 60 s (max_orders_per_minute); "
            f"next order allowed in {wait:.1f}s",
            RiskRule.ORDER_RATE,
        )

    # ------------------------------------------------------------------ the rails, in order
    def _check(  # noqa: PLR0917 - private; mirrors check()
        self,
        order: Order,
        last_price: float | None,
        positions: Mapping[str, Position],
        equity: float | None,
        day_start_equity: float | None,
        open_orders: list[Order],
        expect_data: bool,
        now: datetime,
        *,
        daily_pnl: float | None = None,
    ) -> RiskDecision:
        limits = self.limits
        engagement = self.kill_switch.engagement
        if engagement is not None:
            return RiskDecision(False, f"kill switch engaged: {engagement.reason}", RiskRule.KILL_SWITCH)
        if self.liveness is not None:
            blind = self.liveness.check(now, expect_data=expect_data)
            if blind is not None:
                return RiskDecision(False, blind, RiskRule.LIVENESS)
        rate = self._rate
        if rate is not None and not rate.allows(now, exclude=id(order)):
            return self._rate_refusal(rate, now)
        if limits.max_order_quantity is not None and order.quantity > limits.max_order_quantity + _EPS:
            return RiskDecision(
                False,
                f"order quantity {order.quantity:g} exceeds max_order_quantity {limits.max_order_quantity:g}",
                RiskRule.ORDER_QUANTITY,
            )
        price = None if last_price is None else float(last_price)
        if price is not None and (not math.isfinite(price) or price <= 0):
            price = None
        if price is None:
            if limits.needs_price:
                return RiskDecision(
                    False,
                    f"no valid last price for {order.symbol} (got {last_price!r}); the notional and "
                    "price-band limits cannot be checked — wait for market data",
                    RiskRule.NO_PRICE,
                )
            return self._check_quantities(
                order, positions, equity, day_start_equity, open_orders, daily_pnl=daily_pnl
            )
        band = self._check_band(order, price)
        if band is not None:
            return band
        if limits.max_order_notional is not None:
            refusal = self._check_order_notional(order, price, limits.max_order_notional)
            if refusal is not None:
                return refusal
        return self._check_quantities(
            order, positions, equity, day_start_equity, open_orders, price, daily_pnl=daily_pnl
        )

    def _check_order_notional(self, order: Order, price: float, cap: float) -> RiskDecision | None:
        worst = max(price, order.limit_price or 0.0, order.stop_price or 0.0)
        mult = self._multiplier(order.symbol)  # a futures contract's value is its price x multiplier
        notional = order.quantity * worst * mult
        if notional > cap + _EPS:
            times = f" x multiplier {mult:g}" if mult != 1.0 else ""
            return RiskDecision(
                False,
                f"order notional {notional:,.2f} ({order.quantity:g} x {worst:,.2f}{times}) exceeds "
                f"max_order_notional {cap:,.2f}",
                RiskRule.ORDER_NOTIONAL,
            )
        return None

    def _check_bracket(  # noqa: PLR0917 - private; check()'s values
        self,
        entry: Order,
        exits: Sequence[Order],
        last_price: float | None,
        equity: float | None,
        day_start_equity: float | None,
        daily_pnl: float | None,
    ) -> RiskDecision:
        """The daily-loss limit against the bracket's worst case (its entry lost down to its stop)."""
        cap = self.limits.max_daily_loss
        price = (
            last_price if last_price is not None and math.isfinite(last_price) and last_price > 0 else None
        )
        worst = worst_loss(entry, exits, price)
        if cap is None or worst is None:
            return _ALLOW
        worst *= self._multiplier(entry.symbol)  # points lost x a futures contract's multiplier
        if daily_pnl is not None and math.isfinite(daily_pnl):
            loss = -float(daily_pnl)
        elif equity is not None and day_start_equity is not None:
            loss = float(day_start_equity) - float(equity)
        else:
            loss = 0.0  # the daily-loss rail itself refuses orders when it cannot tell the loss
        if loss + worst > cap + _EPS:
            return RiskDecision(
                False,
                f"the bracket's worst case loses {worst:,.2f} ({entry.quantity:g} x the distance from the entry "
                f"to its stop); with today's loss {loss:,.2f} that exceeds max_daily_loss {cap:,.2f}",
                RiskRule.DAILY_LOSS,
            )
        return _ALLOW

    def _check_band(self, order: Order, price: float) -> RiskDecision | None:
        band = self.limits.price_band_pct
        if band is None:
            return None
        for what, value in (("limit", order.limit_price), ("stop", order.stop_price)):
            if value is None:
                continue
            off = abs(value - price) / price * 100.0
            if off > band + _EPS:
                return RiskDecision(
                    False,
                    f"{what} price {value:,.4g} is {off:.1f}% from the last price {price:,.4g} of "
                    f"{order.symbol} (price_band_pct ±{band:g}%): a fat finger?",
                    RiskRule.PRICE_BAND,
                )
        return None

    def _check_quantities(  # noqa: PLR0917 - private
        self,
        order: Order,
        positions: Mapping[str, Position],
        equity: float | None,
        day_start_equity: float | None,
        open_orders: list[Order],
        price: float | None = None,
        *,
        daily_pnl: float | None = None,
    ) -> RiskDecision:
        limits = self.limits
        base = _position_qty(positions, order.symbol) + _pending_same_side(open_orders, order)
        projected = base + order.signed_quantity
        flips = projected * base < 0  # crossing through flat opens a new position on the other side
        increases = flips or abs(projected) > abs(base) + _EPS
        if not increases:
            return _ALLOW  # reducing (or flat-neutral) orders always pass the exposure rails
        if (
            limits.max_position_per_symbol is not None
            and abs(projected) > limits.max_position_per_symbol + _EPS
        ):
            return RiskDecision(
                False,
                f"{order.symbol} position would reach {projected:g} shares (with working orders); "
                f"max_position_per_symbol is {limits.max_position_per_symbol:g}",
                RiskRule.POSITION,
            )
        if price is not None and (
            limits.max_position_notional_per_symbol is not None or limits.max_gross_exposure is not None
        ):
            value = abs(projected) * price * self._multiplier(order.symbol)
            cap = limits.max_position_notional_per_symbol
            if cap is not None and value > cap + _EPS:
                return RiskDecision(
                    False,
                    f"{order.symbol} position would be worth {value:,.2f}; "
                    f"max_position_notional_per_symbol is {cap:,.2f}",
                    RiskRule.POSITION_NOTIONAL,
                )
            if limits.max_gross_exposure is not None:
                others = sum(abs(p.market_value) for s, p in positions.items() if s != order.symbol)
                gross = others + value
                if gross > limits.max_gross_exposure + _EPS:
                    return RiskDecision(
                        False,
                        f"gross exposure would reach {gross:,.2f}; max_gross_exposure is "
                        f"{limits.max_gross_exposure:,.2f}",
                        RiskRule.GROSS_EXPOSURE,
                    )
        if limits.max_daily_loss is not None:
            if daily_pnl is not None and math.isfinite(daily_pnl):
                loss = -float(daily_pnl)  # IB's own P&L stream: current, unlike the account values
            elif equity is None or day_start_equity is None:
                return RiskDecision(
                    False,
                    "daily_pnl, or equity and day_start_equity, are needed to check max_daily_loss; "
                    "pass them (the account summary has them) or drop the limit",
                    RiskRule.DAILY_LOSS,
                )
            else:
                loss = float(day_start_equity) - float(equity)
            if loss >= limits.max_daily_loss - _EPS:
                return RiskDecision(
                    False,
                    f"daily loss {loss:,.2f} reached max_daily_loss {limits.max_daily_loss:,.2f}; "
                    "only orders that reduce positions are allowed until tomorrow",
                    RiskRule.DAILY_LOSS,
                )
        return _ALLOW
