"""The strategy API: one class that runs unchanged in a backtest and in paper or live trading.

Timing contract (both engines): ``on_data(timestamp, data)`` is called once per *closed* bar.
``timestamp`` is that bar's tz-aware (UTC) timestamp and ``data`` holds every bar up to and including
it — never a later one. Single-symbol runs get flat columns ``Open, High, Low, Close, Volume``;
multi-symbol runs get MultiIndex columns ``(Metric, Symbol)``, e.g. ``data[('Close', 'AAPL')]``.
Orders returned from bar *t* are executed by the engine afterwards (in a backtest, by default at bar
*t+1*'s open), so a strategy can never trade at a price it has not yet seen.

Strategies read, brokers write: ``self.positions``, ``self.cash`` and ``self.equity`` are read-only
views supplied by the engine the strategy runs in. What they mean:

* **One strategy on the account** — the account's: its positions, its cash, its equity (cash plus the
  market value of the positions).
* **Several strategies on one account** (``BacktestEngine.add_strategy`` called several times) — each strategy's own
  book, built from the fills of its own orders only (:class:`~copilot_quant.model.book.StrategyBook`):
  ``self.positions`` is what its fills add up to (the account holds the net of all strategies);
  ``self.cash`` is its capital share (``add_strategy(..., capital=)``, by default an equal share of the
  account's starting cash) plus the cash its own fills moved; ``self.equity`` is that cash plus its
  positions' market value, i.e. its capital share plus its own P&L. Size orders from these as if the
  strategy had a sub-account; buying power, though, is checked on the whole account, which all the
  strategies share. ``on_fill``, ``open_orders()`` and ``cancel()`` concern only its own orders.

Working orders: ``self.open_orders()`` lists this strategy's orders that can still fill (limit and stop
orders resting from earlier bars), oldest first; ``self.cancel(order_or_id)`` asks the engine to cancel
one. Call them from ``on_data``/``on_bar`` or ``on_fill``. Timing contract:

* **Backtest** — a cancel is immediate: when ``cancel()`` returns, the order is ``CANCELLED`` (reason
  ``'cancelled by the strategy'``) and can never fill, so a cancel requested in ``on_data`` for bar *t*
  takes effect before bar *t+1* is matched. From ``on_fill`` (while a bar's orders are matched, in
  submission order) the order can no longer fill later in that bar either.
* **Live** — ``cancel()`` sends the request to IB before it returns; IB confirms it asynchronously
  (normally well before the next bar), and the order becomes ``CANCELLED`` then. If IB executed the
  order before the request reached it, the fill reaches ``on_fill`` as usual and the order ends
  ``FILLED`` (or ``CANCELLED`` with a partial fill).
* Both — ``open_orders()`` stops listing an order as soon as its cancel is requested. Cancelling an
  order that is no longer working (filled, rejected, expired, already cancelled) is logged and ignored;
  an id the strategy never submitted raises :class:`~copilot_quant.errors.StrategyError`. Every
  cancelled order stays in the run's record (``result.orders`` in a backtest, the journal live).

``self.modify(order_or_id, limit_price=..., quantity=..., ...)`` changes a working order's price, size or
time in force in place (IB's modify: same order, same id). In a backtest the new terms apply from the next
bar; live they are sent to IB at once and IB acknowledges them. It returns a named outcome
(:class:`~copilot_quant.model.modify.ModifyOutcome`); see :meth:`Strategy.modify`.

Two ways to write a strategy:

* :class:`Strategy` — implement ``on_data`` and work with pandas, exactly as the guide shows.
* :class:`FastStrategy` — compute indicators vectorized once in ``indicators(data)`` (causal
  operations only, e.g. ``rolling``) and decide per bar in ``on_bar(timestamp, *values)`` from plain
  floats. The backtest engine then runs without any per-bar DataFrame work; in live trading the same
  class is driven through ``on_data``.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

import pandas as pd

from copilot_quant.backtest.indicators import indicator_columns, last_bar_values
from copilot_quant.backtest.orders import Fill, Order, Position
from copilot_quant.errors import StrategyError
from copilot_quant.model.modify import MODIFIABLE, ModifyOutcome

__all__ = ["CANCELLED_BY_STRATEGY", "FastStrategy", "Strategy", "StrategyContext"]

log = logging.getLogger(__name__)

#: The reason (``Order.reject_reason``) an order cancelled through :meth:`Strategy.cancel` ends with.
CANCELLED_BY_STRATEGY = "cancelled by the strategy"


class StrategyContext(Protocol):
    """What an engine exposes to a strategy. Implementations return snapshots, never live state.

    ``open_orders`` and ``cancel`` back :meth:`Strategy.open_orders` and :meth:`Strategy.cancel` (see
    the module docstring for their timing contract); both concern only the bound strategy's orders.
    ``symbols`` backs :attr:`Strategy.symbols`: the symbols the run trades, as the user gave them.
    """

    def positions(self) -> Mapping[str, Position]: ...

    def cash(self) -> float: ...

    def equity(self) -> float: ...

    def open_orders(self) -> list[Order]: ...

    def cancel(self, order: Order | str) -> None: ...

    def modify(self, order: Order | str, changes: Mapping[str, Any]) -> ModifyOutcome: ...

    def symbols(self) -> tuple[str, ...]: ...


_EMPTY: Mapping[str, Position] = MappingProxyType({})
_UNSET = object()


class Strategy(ABC):
    """Base class for trading strategies; see the module docstring for the timing contract.

    Hooks, in the order an engine calls them:

    * ``initialize()`` — once, before the first bar; set parameters and state here.
    * ``on_start()`` — once, after ``initialize``, when the engine starts feeding data.
    * ``on_data(timestamp, data) -> list[Order] | None`` — once per closed bar.
    * ``on_fill(fill)`` — once per execution, in order.
    * ``on_roll(roll)`` — a continuous future's contract changed (backtest: before that bar's ``on_data``).
    * ``on_stop()`` then ``finalize()`` — once each, after the last bar (also when there was no data).

    From the hooks a strategy may read ``positions``/``cash``/``equity`` and the run's ``symbols``, list its working orders with
    :meth:`open_orders` and cancel them with :meth:`cancel`.
    """

    def __init__(self) -> None:
        self._context: StrategyContext | None = None

    @property
    def name(self) -> str:
        """The strategy's name: its class name unless a subclass overrides or assigns it."""
        return self.__dict__.get("_own_name") or type(self).__name__

    @name.setter
    def name(self, value: str) -> None:
        # strategies written for the earlier implementation set ``self.name`` themselves
        self.__dict__["_own_name"] = str(value)

    # ----------------------------------------------------------------- hooks
    def initialize(self) -> None:  # noqa: B027 - optional hook
        """Called once before the first bar."""

    def on_start(self) -> None:  # noqa: B027 - optional hook
        """Called once when the engine starts feeding data (after ``initialize``)."""

    @abstractmethod
    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        """Decide on orders after the bar at ``timestamp`` closed. ``None`` means no orders."""

    def on_fill(self, fill: Fill) -> None:  # noqa: B027 - optional hook
        """Called once per fill of one of this strategy's orders."""

    def on_roll(self, roll: Any) -> None:  # noqa: B027 - optional hook
        """Called when a continuous future the strategy runs on (``"MES"``) moves to its next contract,
        before ``on_data`` for the first bar of the new one (see :mod:`copilot_quant.backtest.rolls`)."""

    def on_stop(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last bar, before ``finalize``."""

    def finalize(self) -> None:  # noqa: B027 - optional hook
        """Called once at the very end of a run."""

    # ----------------------------------------------------- read-only account view
    # A strategy may assign ``self.positions``/``self.cash``/``self.equity`` for its own bookkeeping
    # (code written for a base class without these views does); its value then hides the engine's view.
    def _own(self, name: str, value: Any) -> None:
        self.__dict__["_own_" + name] = value

    def bind(self, context: StrategyContext | None) -> None:
        """Attach the engine's read-only view (called by engines, not by users)."""
        self._context = context

    @property
    def positions(self) -> Mapping[str, Position]:
        """Open positions by symbol (snapshots); empty before the engine starts."""
        own = self.__dict__.get("_own_positions", _UNSET)
        if own is not _UNSET:
            return own
        ctx = getattr(self, "_context", None)
        return ctx.positions() if ctx is not None else _EMPTY

    @positions.setter
    def positions(self, value: Any) -> None:
        self._own("positions", value)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols this run trades, in the order given (``--symbols``, ``run(..., symbols)``,
        ``engine.start(symbols)``); empty before the engine binds the strategy (it has by ``initialize``).

        A strategy with a single-symbol default reads ``self.symbols[0]`` instead of assuming a ticker, so
        it trades what it is run on: single-symbol data (flat columns) carries no symbol name.
        """
        own = self.__dict__.get("_own_symbols", _UNSET)
        if own is not _UNSET:
            return own
        ctx = getattr(self, "_context", None)
        listing = getattr(ctx, "symbols", None) if ctx is not None else None
        return tuple(listing()) if listing is not None else ()

    @symbols.setter
    def symbols(self, value: Any) -> None:
        self._own("symbols", value)

    def position(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0 when flat). In a backtest, a continuous future (``"MES"``)
        holds the sum over its contracts (``MESZ6``, ``MESH7`` …; :mod:`copilot_quant.backtest.rolls`)."""
        name = symbol.upper()
        if "_own_positions" not in self.__dict__:
            # the engine's own lookup, when it has one: no snapshot of every position per call, which
            # a portfolio strategy asking about each of hundreds of symbols every bar would pay for
            ctx = getattr(self, "_context", None)
            quantity = getattr(ctx, "position_quantity", None) if ctx is not None else None
            if quantity is not None:
                return float(quantity(name))
        pos = self.positions.get(name)
        return pos.quantity if pos is not None else 0.0

    @property
    def cash(self) -> float:
        own = self.__dict__.get("_own_cash", _UNSET)
        if own is not _UNSET:
            return own
        ctx = getattr(self, "_context", None)
        return ctx.cash() if ctx is not None else 0.0

    @cash.setter
    def cash(self, value: Any) -> None:
        self._own("cash", value)

    @property
    def equity(self) -> float:
        """Cash plus the signed market value of all positions."""
        own = self.__dict__.get("_own_equity", _UNSET)
        if own is not _UNSET:
            return own
        ctx = getattr(self, "_context", None)
        return ctx.equity() if ctx is not None else 0.0

    @equity.setter
    def equity(self, value: Any) -> None:
        self._own("equity", value)

    # ----------------------------------------------------------------- working orders
    def open_orders(self) -> list[Order]:
        """This strategy's orders that are still working, oldest (first submitted) first.

        Working means submitted or partially filled, and not asked to be cancelled: an order leaves the
        list as soon as :meth:`cancel` is called for it (live, also before IB confirms). Live, an order
        held back while the market is closed (``outside_hours='hold'``) is listed too, and so is, after a
        restart, an order that a strategy of the same name sent in an earlier run and that is still
        working at IB (rebuilt from the journal, with its old ``order_id``). Empty before the engine starts. The list is new on each call; the orders in it are the engine's objects (read
        their ``status``, ``filled_quantity`` ... but do not change them).
        """
        ctx = getattr(self, "_context", None)
        listing = getattr(ctx, "open_orders", None) if ctx is not None else None
        return list(listing()) if listing is not None else []

    def cancel(self, order: Order | str) -> None:
        """Request the cancellation of one of this strategy's working orders (an ``Order`` or its ``order_id``).

        Backtest: immediate — the order is ``CANCELLED`` when this returns and can never fill, so a
        cancel from ``on_data`` at bar *t* is in force before bar *t+1* is matched. Live: the cancel is
        sent to IB before this returns and the order becomes ``CANCELLED`` when IB confirms; if IB had
        already executed it, the fill arrives through ``on_fill`` and the order ends ``FILLED``.

        Cancelling an order that is no longer working (filled, rejected, expired, or already cancelled
        or being cancelled) does nothing but log it. Raises :class:`~copilot_quant.errors.StrategyError`
        for an id this strategy never submitted to the engine (or when no engine runs the strategy). An
        ``order_id`` used for several orders names the latest; pass the ``Order`` itself to be exact.
        """
        if not isinstance(order, Order | str):
            raise StrategyError(
                f"{self.name}.cancel() takes an Order or its order_id (a str), got {type(order).__name__}"
            )
        ctx = getattr(self, "_context", None)
        cancel = getattr(ctx, "cancel", None) if ctx is not None else None
        if cancel is None:
            what = order.order_id if isinstance(order, Order) else order
            raise StrategyError(
                f"{self.name}.cancel({what!r}): the strategy is not running in an engine that can cancel "
                "orders; call cancel() from on_data, on_bar or on_fill while a backtest or live engine runs it"
            )
        cancel(order)

    def modify(self, order: Order | str, **changes: Any) -> ModifyOutcome:
        """Change a working order's terms in place — IB's modify: same order, same id, new terms.

        ``changes`` are new values of ``quantity``, ``limit_price``, ``stop_price``, ``time_in_force``
        (``'day'``, ``'gtc'``, ``'gtd'``) and ``good_till``, e.g. ``self.modify(order, limit_price=101.5)``.
        The new terms are checked as a new order's would be; another field (side, symbol, order type ...)
        raises :class:`~copilot_quant.errors.OrderValidationError`: cancel the order and submit a new one.

        Returns a :class:`~copilot_quant.model.modify.ModifyOutcome`:

        * Backtest: ``APPLIED`` — the order has its new terms when this returns and executes by them from the
          next bar on (a modification from ``on_data`` at bar *t* is in force when bar *t+1* is matched; from
          ``on_fill`` while bar *t* is matched, the order sits out the rest of bar *t*: no look-ahead).
        * Live: ``SENT`` — sent to IB with the order's own id; the order shows its new terms at once. IB
          acknowledges the change (its openOrder/orderStatus for the same id); if IB refuses it (the order
          filled meanwhile: error 104), the refusal is logged and the order's terms are restored. The journal
          records the modification as an event of the same order. ``NOT_SENT`` when it could not be sent
          (no connection, trading halted, or a risk limit refused the new terms). An order held back while the
          market is closed is simply changed (``APPLIED``).
        * Both: ``ALREADY_FILLED`` (IB's 104), ``NOT_WORKING`` (cancelled, rejected, expired or being
          cancelled) and ``BELOW_FILLED`` (the new quantity is below the shares already filled) change
          nothing and are logged. A new quantity equal to what already filled completes the order.

        Raises :class:`~copilot_quant.errors.StrategyError` for an order this strategy never submitted (or
        when no engine runs the strategy).
        """
        if not isinstance(order, Order | str):
            raise StrategyError(
                f"{self.name}.modify() takes an Order or its order_id (a str), got {type(order).__name__}"
            )
        ctx = getattr(self, "_context", None)
        modify = getattr(ctx, "modify", None) if ctx is not None else None
        if modify is None:
            what = order.order_id if isinstance(order, Order) else order
            raise StrategyError(
                f"{self.name}.modify({what!r}): the strategy is not running in an engine that can modify "
                f"orders ({', '.join(MODIFIABLE)}); call modify() from on_data, on_bar or on_fill while a "
                "backtest or live engine runs it"
            )
        outcome: ModifyOutcome = modify(order, changes)
        return outcome


class FastStrategy(Strategy):
    """A strategy whose signals are computed vectorized once, then read per bar as plain numbers.

    Implement:

    * ``indicators(data) -> Mapping[str, pd.Series | pd.DataFrame]`` — called with the whole history.
      A ``Series`` is one value per bar; a ``DataFrame`` with one column per symbol (for a portfolio, e.g.
      ``data['Close'].rolling(10).mean()``) is one value per bar and symbol. Every indicator must be
      *causal*: its value at bar *t* may only depend on bars up to *t* (``rolling``, ``ewm``,
      ``shift(+n)``, ``cummax`` ... never ``shift(-n)`` or centred windows). The backtest engine
      checks this by recomputing on a prefix and raises if a value changed.
    * ``on_bar(timestamp, *values) -> list[Order] | None`` — called per closed bar with the
      indicators' values at that bar, in the order ``indicators`` returned them: a float for a
      ``Series``, a :class:`~copilot_quant.backtest.indicators.SymbolValues` for a per-symbol
      ``DataFrame`` (read it by symbol: ``fast['AAPL']``). A portfolio strategy reads::

          def indicators(self, data):
              closes = data['Close']  # one column per symbol
              return {'fast': closes.rolling(10).mean(), 'slow': closes.rolling(30).mean()}

          def on_bar(self, timestamp, fast, slow):
              return [Order(s, 100) for s in self.symbols if fast[s] > slow[s] and not self.position(s)]

    In live trading the engine calls ``on_data``, which recomputes the indicators on the history it
    has and passes the latest values to ``on_bar``: the same class runs in both modes.

    Set ``bar_timestamps = False`` on the class when ``on_bar`` does not need the bar's time: it is then
    called with the values only, ``on_bar(fast, slow)``, and the backtest builds no ``datetime`` per bar
    (about 0.1 s of a 0.65 s run on a million minute bars). Everything else is the same: the orders still
    carry their bar's timestamp, and fill at the next bar's open. An ``on_bar`` whose parameters cannot take
    the values (with the timestamp or without, as the flag says) is refused before the run.
    """

    #: Whether ``on_bar`` takes the bar's timestamp first (``on_bar(timestamp, *values)``, the default) or
    #: the indicator values only (``False``: ``on_bar(*values)``).
    bar_timestamps: ClassVar[bool] = True

    @abstractmethod
    def indicators(self, data: pd.DataFrame) -> Mapping[str, pd.Series | pd.DataFrame]:
        """Causal indicators aligned with ``data.index``: Series, or DataFrames with one column per symbol."""

    @abstractmethod
    def on_bar(self, timestamp: datetime, *values: Any) -> list[Order] | None:
        """Decide on orders from the indicator values at ``timestamp`` (floats, or per-symbol values)."""

    def indicator_frame(self, data: pd.DataFrame) -> pd.DataFrame:
        """``indicators(data)`` as one float frame aligned with ``data.index`` (see
        :func:`~copilot_quant.backtest.indicators.indicator_columns` for its columns)."""
        return indicator_columns(self.indicators(data), data.index, self.name)

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        if data.empty:
            return None
        values = last_bar_values(self.indicator_frame(data))
        return self.on_bar(timestamp, *values) if takes_timestamp(self) else self.on_bar(*values)


def takes_timestamp(strategy: FastStrategy, values: int | None = None) -> bool:
    """``strategy.bar_timestamps``, refused with a :class:`StrategyError` unless it is ``True`` or ``False``.

    With ``values`` (how many indicator values ``on_bar`` gets), ``on_bar``'s signature is checked too: one
    that cannot take them (with the timestamp first or not, as the flag says) is refused before the run,
    with the fix, rather than failing on every bar.
    """
    flag = strategy.bar_timestamps
    if not isinstance(flag, bool):
        raise StrategyError(
            f"{strategy.name}.bar_timestamps must be True (on_bar(timestamp, *values)) or False "
            f"(on_bar(*values)), got {flag!r}"
        )
    if values is not None:
        _check_on_bar(strategy, values + flag, flag)
    return flag


def _check_on_bar(strategy: FastStrategy, count: int, timestamps: bool) -> None:
    try:
        signature = inspect.signature(strategy.on_bar)
    except (TypeError, ValueError):  # no signature to read (a builtin or an unusual callable): trust it
        return
    try:
        signature.bind(*range(count))
    except TypeError as exc:
        shape = "on_bar(timestamp, *values)" if timestamps else "on_bar(*values), without the timestamp"
        other = "False" if timestamps else "True"
        raise StrategyError(
            f"{strategy.name}.on_bar{signature} cannot take its {count - timestamps} indicator value(s) "
            f"as {shape} ({exc}); match indicators() in on_bar's parameters, or set bar_timestamps = {other} "
            "if the timestamp is what differs"
        ) from None
