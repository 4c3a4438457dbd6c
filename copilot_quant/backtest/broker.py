"""SimpleBroker: the backtest's account — cash, positions, costs and buying-power checks.

It implements :class:`~copilot_quant.backtest.interfaces.IBroker`, so the guide's direct calls work::

    broker = SimpleBroker(100_000, commission=0.001, slippage=0.0005)
    fill = broker.execute_order(Order('AAPL', 10), current_price=150.0, timestamp=now)

Rules:

* **Costs** come from :mod:`copilot_quant.backtest.costs`: a plain rate (the guide's ``0.001``), a name
  (``'ibkr-tiered'``, ``'ibkr-fixed'``) or any model, e.g.
  :class:`~copilot_quant.backtest.costs.PerShareCommission` (IBKR Fixed) or
  :class:`~copilot_quant.model.tiered.TieredCommission` (IBKR Tiered, priced by the month's volume, which
  this broker's own :class:`~copilot_quant.model.cost_meter.CostMeter` counts). A fill's ``commission``
  is all it cost; ``fees`` is the third-party part of it. Slippage moves market and triggered-stop
  prices against the order; limit prices get none.
* **Buying power.** A buy whose ``price × quantity + commission`` exceeds cash is *rejected*: the
  order's status becomes ``REJECTED`` with a ``reject_reason`` and it stays in :attr:`orders`. Buying
  back (part of) a short never needs cash, so risk can always be closed. There is no leverage: cash
  may be spent, never borrowed (see shorts below).
* **Shorts.** With ``allow_short=True`` sells may exceed the position: the sale proceeds go to cash
  and the position's market value is negative, so equity does not move on the sale. Shorts are not
  leverage: a trade that opens or grows a position while any short is held must leave the gross
  exposure (longs plus shorts at their latest marks) at most equal to equity, so short proceeds cannot
  fund a bigger short or further buys. With ``allow_short=False`` such sells are rejected.
* Equity is ``cash + Σ quantity × last price`` (shorts count negative).
* **Futures and forex.** Given an :class:`~copilot_quant.model.instruments.InstrumentRegistry`
  (``instruments=``; the backtest engine always passes one), symbols it resolves to futures contracts or
  forex pairs follow :mod:`copilot_quant.backtest.accounts`: multipliers, margin instead of full cash
  (rejections start with ``"insufficient margin"``), one cash balance per currency. ``cash`` is then the
  total of the balances in USD; :meth:`cash_balances` has them one by one. Plain stocks keep the rules above
  as long as the account holds no future or forex position; while it does, a stock trade is checked
  against the margin requirement too (stocks at their full value).

:meth:`execute_order` treats the given price as the only price available (a one-point path, see
:mod:`copilot_quant.backtest.execution`): market orders fill at it with slippage, a limit only if it
is marketable there, a stop only if it has triggered; with a spread (a
:class:`~copilot_quant.model.spread.SpreadSlippage`) at the touch of the model's plain width. The
backtest engine does the intrabar matching itself (with each bar's spread) and books the result through
:meth:`fill`, whose price is then already at the touch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from copilot_quant.backtest.accounts import MARGIN_REJECT, InstrumentAccounts
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.errors import ConfigError
from copilot_quant.model.cost_meter import CostMeter
from copilot_quant.model.costs import (
    CommissionModel,
    CostBreakdown,
    NoSlippage,
    SlippageModel,
    commission_model,
    execution_commission,
    slippage_model,
)
from copilot_quant.model.fill_rules import match_order
from copilot_quant.model.instruments import AssetClass, Instrument, InstrumentRegistry
from copilot_quant.model.orders import Fill, Order, OrderSide, OrderStatus, Position
from copilot_quant.model.spread import SpreadSlippage, spread_of

__all__ = ["SimpleBroker"]

log = logging.getLogger(__name__)

_EPS = 1e-9
_DONE = frozenset(s for s in OrderStatus if s.is_done)
_FILLED, _PARTIALLY_FILLED = OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED
_BUY = OrderSide.BUY


class SimpleBroker(IBroker):
    """Simulated account for backtests; see the module docstring for its rules.

    Args:
        initial_capital: starting cash (> 0).
        commission: a rate (``0.001`` = 0.1 % of notional), ``'ibkr-tiered'``/``'ibkr-fixed'`` or a
            ``CommissionModel``.
        slippage: a rate (``0.0005`` = 0.05 %) or a ``SlippageModel``.
        allow_short: whether sells may exceed the position held.
        instruments: what each symbol is (a registry, or :class:`InstrumentAccounts` to set the futures
            and forex costs and margins); ``None``: every symbol is a US stock.
    """

    def __init__(
        self,
        initial_capital: float = 100_000.0,
        commission: float | str | CommissionModel | None = 0.001,
        slippage: float | SlippageModel | None = 0.0005,
        allow_short: bool = True,
        *,
        instruments: InstrumentRegistry | InstrumentAccounts | None = None,
    ) -> None:
        capital = float(initial_capital)
        if not math.isfinite(capital) or capital <= 0:
            raise ConfigError(f"initial_capital must be a positive amount, got {initial_capital!r}")
        self.initial_capital = capital
        self._costs = CostMeter(commission_model(commission))
        self._commission = self._costs.model.commission  # bound once: fill() prices every trade with it
        self.slippage_model: SlippageModel = slippage_model(slippage)
        self.allow_short = bool(allow_short)
        self._cash = capital
        self._positions: dict[str, Position] = {}
        self._shorts: set[str] = set()  # symbols held short: the buying-power rule asks on every trade
        #: Every order this broker executed or rejected, in the order it saw them.
        self.orders: list[Order] = []
        #: Every fill, in order.
        self.fills: list[Fill] = []
        self._recorded: set[str | None] = set()
        self.accounts: InstrumentAccounts | None = None
        self._stocks: set[str] = set()
        self._others: set[str] = set()  # symbols with an open future/forex position: margin rules apply
        if instruments is not None:
            self.use_instruments(instruments)

    def use_instruments(self, instruments: InstrumentRegistry | InstrumentAccounts) -> None:
        """Resolve symbols with ``instruments`` from now on (see the module docstring)."""
        if isinstance(instruments, InstrumentRegistry):
            instruments = InstrumentAccounts(instruments)
        self.accounts = instruments
        self._stocks = set()  # the symbols these accounts resolve to base-currency stocks, as met

    def instrument(self, symbol: str) -> Instrument | None:
        """``symbol``'s terms when it is a future, a forex pair or a foreign stock; ``None`` for a US stock."""
        accounts = self.accounts
        return accounts.instrument(symbol) if accounts is not None else None

    @property
    def margin_rules(self) -> bool:
        """Whether every trade is checked against the margin requirement now (a future or forex is held)."""
        return bool(self._others)

    def cash_balances(self) -> dict[str, float]:
        """Cash per currency (the base currency, USD, first)."""
        accounts = self.accounts
        out = {accounts.base if accounts is not None else "USD": self._cash}
        if accounts is not None:
            out.update((c, v) for c, v in accounts.balances.items())
        return out

    def margin_requirement(self) -> float:
        """The initial margin the positions held need, in USD (stocks at their full value)."""
        accounts = self.accounts
        if accounts is None:
            return sum(abs(p.market_value) for p in self._positions.values())
        return sum(
            accounts.requirement(accounts.instrument(s), p.quantity, p.last_price or p.avg_entry_price)
            for s, p in self._positions.items()
        )

    def maintenance_requirement(self) -> float:
        """The maintenance margin the futures held need, in USD."""
        accounts = self.accounts
        return accounts.maintenance(self._positions.values()) if accounts is not None else 0.0

    def tick_size(self, symbol: str) -> float | None:
        """``symbol``'s own tick when it is a future or a forex pair (0.25 for MES, 0.00005 for EUR.USD);
        None for a stock (the US stock grid of :mod:`copilot_quant.model.spread`)."""
        inst = self.instrument(symbol)
        return inst.tick_size if inst is not None and inst.kind is not AssetClass.STOCK else None

    @property
    def commission_model(self) -> CommissionModel:
        return self._costs.model

    @commission_model.setter
    def commission_model(self, model: CommissionModel) -> None:
        self._costs = CostMeter(commission_model(model))  # a new model starts its own month's count
        self._commission = self._costs.model.commission

    @property
    def costs(self) -> CostMeter:
        """This account's cost meter (the month's traded volume, for tiered pricing)."""
        return self._costs

    # ------------------------------------------------------------------ IBroker
    def execute_order(self, order: Order, current_price: float, timestamp: datetime) -> Fill | None:
        """Execute ``order`` at ``current_price`` now; see the module docstring.

        Returns the fill, or ``None`` when the order was rejected (``order.status`` is ``REJECTED``
        with a reason) or cannot execute at this price (a limit not marketable, a stop not triggered:
        the status is ``SUBMITTED`` and the caller may retry at a later price).
        """
        price = float(current_price)
        if not math.isfinite(price) or price <= 0:
            self.reject(order, f"no valid market price for {order.symbol} (got {current_price!r})")
            return None
        spread = spread_of(self.slippage_model)  # one price, no bar history: the model's plain width
        tick = self.tick_size(order.symbol)
        width = 0 if spread is None else spread.width(price, tick)
        _, execution = match_order(order, (price,), width=width, tick=tick)
        if execution is None:
            if order.status is OrderStatus.CREATED:
                order.status = OrderStatus.SUBMITTED
            return None
        return self.fill(order, execution.price, timestamp, slippage=execution.slippage)

    def check_buying_power(self, order: Order, price: float) -> bool:
        """Whether ``order`` can execute at ``price`` under the cash and short-selling rules."""
        return self._refusal(order, float(price)) is None

    def calculate_commission(self, fill_price: float, quantity: float) -> float:
        return float(self.commission_model.commission(float(fill_price), abs(float(quantity))))

    def calculate_slippage(self, order: Order, market_price: float) -> float:
        model = self.slippage_model
        if isinstance(model, SpreadSlippage):  # the touch and grid in the instrument's own ticks
            return float(model.adjust_on(float(market_price), order.side_enum, self.tick_size(order.symbol)))
        return float(model.adjust(float(market_price), order.side_enum))

    def get_positions(self) -> dict[str, Position]:
        """Open positions by symbol, as snapshots."""
        return {s: p.snapshot() for s, p in self._positions.items() if not p.is_flat}

    def get_cash_balance(self) -> float:
        accounts = self.accounts
        if accounts is not None and accounts.balances:
            return self._cash + accounts.foreign_cash()
        return self._cash

    # ------------------------------------------------------------------ account
    @property
    def cash(self) -> float:
        return self.get_cash_balance()

    def get_account_value(self, prices: Mapping[str, float] | None = None) -> float:
        """Equity: cash plus the signed market value of every position (at ``prices`` or last marks)."""
        accounts = self.accounts
        if accounts is not None:
            return self._multi_asset_value(accounts, prices)
        value = self._cash
        for symbol, pos in self._positions.items():
            if pos.quantity:
                price = prices.get(symbol) if prices is not None else None
                value += pos.quantity * price if price is not None else pos.market_value
        return value

    def _multi_asset_value(self, accounts: InstrumentAccounts, prices: Mapping[str, float] | None) -> float:
        value = self._cash + accounts.foreign_cash()
        for symbol, pos in self._positions.items():
            if pos.quantity:
                price = prices.get(symbol) if prices is not None else None
                marked = pos
                if price is not None:
                    marked = pos.snapshot()
                    marked.update_unrealized_pnl(price)
                value += accounts.value(accounts.instrument(symbol), marked)
        return value

    def cash_and_position(self, symbol: str) -> tuple[float, float]:
        """``(get_cash_balance(), position_quantity(symbol))`` in one call (the engine records both per fill)."""
        accounts = self.accounts
        pos = self._positions.get(symbol)
        cash = (
            self._cash + accounts.foreign_cash() if accounts is not None and accounts.balances else self._cash
        )
        return cash, pos.quantity if pos is not None else 0.0

    def position_quantity(self, symbol: str) -> float:
        pos = self._positions.get(symbol)
        return pos.quantity if pos is not None else 0.0

    def mark(self, symbol: str, price: float) -> None:
        """Mark the position in ``symbol`` (if any) to ``price``."""
        pos = self._positions.get(symbol)
        if pos is not None and math.isfinite(price):
            pos.update_unrealized_pnl(price)
        if self.accounts is not None:
            self.accounts.observe(symbol, price)

    # ------------------------------------------------------------------ booking
    def fill(
        self,
        order: Order,
        price: float,
        timestamp: datetime,
        slippage: bool = True,
        quantity: float | None = None,
    ) -> Fill | None:
        """Book ``quantity`` of ``order`` (default: all that is left) at reference ``price`` (slipped if
        ``slippage``), or reject the order.

        This is where every execution is accounted: buying-power check (for the quantity booked now),
        commission, cash, position, order status — ``FILLED`` once nothing is left, else
        ``PARTIALLY_FILLED`` (the caller keeps the order working). Returns the :class:`Fill`, or ``None``
        if the order was rejected (a partly filled order keeps what it filled).
        """
        if order.status in _DONE:
            log.warning("order %s is already %s; not filling it again", order.order_id, order.status.value)
            return None
        side: OrderSide = order.side  # type: ignore[assignment]  # parsed to the enum by Order itself
        model = self.slippage_model
        if isinstance(model, SpreadSlippage):  # the tick grid (the instrument's own) is on with the spread
            tick = self.tick_size(order.symbol)
            # a spread's touch is already in ``price`` (the fill rules took it)
            fill_price = model.slip(price, side, tick) if slippage else model.on_grid(price, side, tick)
        elif slippage and type(model) is not NoSlippage:
            fill_price = model.adjust(price, side)
        else:
            fill_price = price
        filled = order.filled_quantity
        remaining = order.quantity - filled
        if quantity is None:
            quantity = remaining
        elif not 0 < quantity <= remaining + _EPS:
            raise ValueError(
                f"cannot fill {quantity!r} of order {order.order_id}: {remaining:g} of it is left to fill"
            )
        symbol = order.symbol
        accounts = self.accounts
        if accounts is not None and symbol not in self._stocks:
            inst = accounts.instrument(symbol)
            if inst is not None:
                return self._fill_instrument(order, inst, fill_price, quantity, timestamp, slipped=slippage)
            self._stocks.add(symbol)  # a base-currency stock (asked once): the rules below
        meter = self._costs
        by_volume = meter.by_volume
        if not by_volume and filled <= 0:  # execution_commission's first case, without its call
            commission, fees = self._commission(fill_price, quantity), 0.0
            if type(commission) is not float:  # a model may answer with an int or a numpy number
                commission = float(commission)
        elif by_volume:
            costs = meter.quote(
                fill_price,
                quantity,
                side,
                timestamp,
                filled_before=filled,
                avg_price_before=order.avg_fill_price,
            )
            commission, fees = costs.total, costs.fees
        else:  # what quote() would say, without building a CostBreakdown on the hot path
            commission = execution_commission(meter.model, fill_price, quantity, filled, order.avg_fill_price)
            fees = 0.0
        signed = quantity if side is _BUY else -quantity
        pos = self._positions.get(symbol)
        held = pos.quantity if pos is not None else 0.0
        after = held + signed
        # _refusal's first rule, inlined (a trade that only reduces a position is never refused), and its
        # cash rule for a long-only book of plain stocks, paid from cash: a strategy that goes in and out
        # calls it only for a trade it refuses
        if not (held * after >= 0 and abs(after) <= abs(held) + _EPS) and (
            self._shorts
            or self._others
            or after < -_EPS
            or fill_price * quantity + commission > self._cash + _EPS
        ):
            reason = self._refusal(order, fill_price, commission, quantity)
            if reason is not None:
                self.reject(order, reason)
                return None
        if by_volume:
            meter.record(quantity, timestamp)
        # built without the constructor's checks where they cannot fail (Fill._booked checks the numbers)
        fill = Fill._booked(order, fill_price, quantity, commission, timestamp, fees)
        # the same arithmetic as Fill.net_proceeds, inlined: this runs once per trade on the fast path
        self._cash += -signed * fill_price - commission
        if pos is None:
            pos = self._positions[symbol] = Position(symbol)
        pos.apply(signed, fill_price, commission)
        if pos.quantity < 0:
            self._shorts.add(symbol)
        elif self._shorts:
            self._shorts.discard(symbol)
        # _book, inlined for the same reason
        avg = order.avg_fill_price
        order.avg_fill_price = (avg * filled + fill_price * quantity) / (filled + quantity)
        order.filled_quantity = filled + quantity
        order.status = _FILLED if filled + quantity >= order.quantity - _EPS else _PARTIALLY_FILLED
        order_id = order.order_id
        if order_id not in self._recorded:
            self._recorded.add(order_id)
            self.orders.append(order)
        self.fills.append(fill)
        return fill

    def _fill_instrument(
        self, order: Order, inst: Instrument, price: float, quantity: float, when: datetime, *, slipped: bool
    ) -> Fill | None:
        """:meth:`fill` for a future, a forex pair or a foreign stock (see :mod:`~copilot_quant.backtest.accounts`)."""
        accounts = self.accounts
        assert accounts is not None  # only called with an instrument the accounts resolved
        side = order.side_enum
        if slipped and inst.kind is not AssetClass.STOCK:
            # a slipped price is moved to the tick the order could actually trade at, against the order
            ticks = price / inst.tick_size
            ticks = math.ceil(ticks - 1e-9) if side is OrderSide.BUY else math.floor(ticks + 1e-9)
            price = round(ticks * inst.tick_size, 10)
        accounts.observe(order.symbol, price)  # a pair's own trade is the latest rate of its currency
        costs = self._instrument_costs(accounts, inst, order, price, quantity, when)
        commission = costs.total
        reason = self._refusal(order, price, commission, quantity)
        if reason is not None:
            self.reject(order, reason)
            return None
        accounts.record(inst, quantity, when)
        fill = Fill(order, price, quantity, commission, when, fees=costs.fees, multiplier=_multiplier(inst))
        signed = quantity if side is OrderSide.BUY else -quantity
        pos = self._positions.get(order.symbol)
        if pos is None:
            pos = self._positions[order.symbol] = Position(order.symbol, multiplier=fill.multiplier)
        realized = pos.apply(signed, price, commission)
        self._cash -= commission
        for currency, amount in accounts.cash_moves(inst, signed, price, realized).items():
            if currency == accounts.base:
                self._cash += amount
            else:
                accounts.balances[currency] = accounts.balances.get(currency, 0.0) + amount
        if pos.is_flat:
            self._others.discard(order.symbol)
        else:
            self._others.add(order.symbol)
        return self._book(order, fill, quantity)

    def _instrument_costs(  # noqa: PLR0917 - one execution's terms
        self,
        accounts: InstrumentAccounts,
        inst: Instrument,
        order: Order,
        price: float,
        quantity: float,
        when: datetime,
    ) -> CostBreakdown:
        costs = accounts.quote(inst, order, price, quantity, when)
        if costs is None:  # a stock quoted in another currency: the stock model on its USD value
            usd = price * accounts.rate(inst.currency)
            costs = CostBreakdown(float(self.commission_model.commission(usd, quantity)))
        return costs

    def _book(self, order: Order, fill: Fill, quantity: float) -> Fill:
        """Record a booked execution on its order and in :attr:`fills`."""
        fill_price = fill.fill_price
        filled = order.filled_quantity
        order.avg_fill_price = (order.avg_fill_price * filled + fill_price * quantity) / (filled + quantity)
        order.filled_quantity = filled + quantity
        # exactly FILLED when the rest was booked; a remainder below _EPS is float noise, not shares
        order.status = _FILLED if filled + quantity >= order.quantity - _EPS else _PARTIALLY_FILLED
        self._record(order)
        self.fills.append(fill)
        return fill

    def reject(self, order: Order, reason: str) -> None:
        """Mark ``order`` rejected with ``reason`` and keep it on record."""
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        self._record(order)
        log.info("order %s rejected: %s", order.order_id, reason)

    def _margin_refusal(
        self,
        accounts: InstrumentAccounts,
        order: Order,
        *,
        inst: Instrument | None,
        price: float,
        commission: float,
        quantity: float,
        after: float,
    ) -> str | None:
        """The margin rule: after the trade, equity (less the commission) must cover the initial margin of
        every position (stocks at full value); see :mod:`copilot_quant.backtest.accounts`."""
        need = accounts.requirement(inst, after, price)
        for symbol, pos in self._positions.items():
            if symbol != order.symbol and pos.quantity:
                mark = pos.last_price or pos.avg_entry_price
                need += accounts.requirement(accounts.instrument(symbol), pos.quantity, mark)
        equity = self.get_account_value() - commission
        if need <= equity + _EPS:
            return None
        return (
            f"{MARGIN_REJECT}: {order.side} {quantity:g} {order.symbol} at {price:.4f} would make the account's "
            f"initial margin requirement {need:,.2f} USD but equity after commission is {equity:,.2f} USD; "
            "reduce the quantity, close positions or add capital"
        )

    def _record(self, order: Order) -> None:
        if order.order_id not in self._recorded:
            self._recorded.add(order.order_id)
            self.orders.append(order)

    def _refusal(
        self, order: Order, price: float, commission: float | None = None, quantity: float | None = None
    ) -> str | None:
        """Why ``quantity`` of ``order`` (default: all that is left) cannot execute at ``price`` now, or ``None``."""
        if quantity is None:
            quantity = order.quantity - order.filled_quantity
        pos = self._positions.get(order.symbol)
        held = pos.quantity if pos is not None else 0.0
        signed = quantity if order.side == _BUY else -quantity
        after = held + signed
        if held * after >= 0 and abs(after) <= abs(held) + _EPS:
            return None  # only reduces a position: closing risk never needs cash or margin
        if after < -_EPS and not self.allow_short:
            return (
                f"short selling is disabled: selling {quantity:g} {order.symbol} but only {held:g} held; "
                "sell at most the position or pass allow_short=True"
            )
        accounts = self.accounts
        if accounts is not None:
            inst = accounts.instrument(order.symbol)
            if inst is not None or self._others:
                if commission is None:  # an estimate now, as for stocks: no particular time or order
                    commission = (
                        self._instrument_costs(
                            accounts, inst, order, price, quantity, datetime.now(UTC)
                        ).total
                        if inst is not None
                        else self.commission_model.commission(price, quantity)
                    )
                return self._margin_refusal(
                    accounts,
                    order,
                    inst=inst,
                    price=price,
                    commission=commission,
                    quantity=quantity,
                    after=after,
                )
        if commission is None:
            commission = self.commission_model.commission(price, quantity)
        others_short = self._shorts and (len(self._shorts) > 1 or order.symbol not in self._shorts)
        shorts = after < -_EPS or others_short
        if not shorts:  # long only: the cost must be paid from cash
            cost = price * quantity + commission
            if cost > self._cash + _EPS:
                return (
                    f"insufficient cash: buying {quantity:g} {order.symbol} at {price:.4f} costs "
                    f"{cost:,.2f} including commission but cash is {self._cash:,.2f}; "
                    "reduce the quantity or add capital"
                )
            return None
        # With shorts, cash holds sale proceeds that are owed back, so the rule is "no leverage": gross
        # exposure (longs plus shorts, at the latest marks) may not exceed equity after the trade. For a
        # long-only book this is exactly the cash rule above.
        gross = abs(after) * price
        equity = self._cash - signed * price - commission + after * price
        for symbol, pos in self._positions.items():
            if symbol != order.symbol and pos.quantity:
                value = pos.market_value
                gross += abs(value)
                equity += value
        if gross > equity + _EPS:
            return (
                f"insufficient buying power: {order.side} {quantity:g} {order.symbol} at {price:.4f} would make "
                f"the gross exposure (longs plus shorts) {gross:,.2f} but equity would be {equity:,.2f}; "
                "shorts are not leveraged: reduce the quantity or add capital"
            )
        return None


def _multiplier(inst: Instrument) -> float:
    """A future's contract multiplier; 1 for a pair or a stock (their positions are valued by notional)."""
    return inst.multiplier if inst.kind is AssetClass.FUTURE else 1.0
