"""The broker adapter's reads of the IB account (values, positions, P&L, buying power) and its cost models.

Part of :class:`~copilot_quant.brokers.live_broker_adapter.LiveBrokerAdapter` (a mixin, so that the guide's
methods stay on the adapter): every read goes through :class:`~copilot_quant.brokers.ib_account.IbAccount`,
one trip to the IB loop thread; positions are IB's while connected and the local fill book (see
:mod:`copilot_quant.brokers.position_watch`) while not.
"""

from __future__ import annotations

import concurrent.futures
import logging

from copilot_quant.backtest.costs import PercentCommission, PercentSlippage
from copilot_quant.backtest.orders import Order, OrderSide, OrderType, Position
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_account import AccountPnL, IbAccount
from copilot_quant.brokers.position_watch import PositionWatch
from copilot_quant.errors import NotConnectedError

__all__ = ["AccountSnapshot", "BrokerAccountReads"]

#: ``(NetLiquidation, TotalCashValue, positions)``.
AccountSnapshot = tuple[float, float, dict[str, Position]]

log = logging.getLogger(__name__)


class BrokerAccountReads:
    """Account reads and cost models of the broker adapter (which sets the attributes below)."""

    _conn: IBConnection
    _account: IbAccount
    _positions: PositionWatch
    allow_short: bool
    commission_model: PercentCommission
    slippage_model: PercentSlippage

    @property
    def enable_position_tracking(self) -> bool:
        """Whether a local position book is kept from fills (served by ``get_positions`` while disconnected)."""
        return self._positions.track_local

    @enable_position_tracking.setter
    def enable_position_tracking(self, on: bool) -> None:
        self._positions.track_local = bool(on)

    def await_positions(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until IB's positions include every fill emitted so far.

        IB sends the position update just after the execution; the engine waits for it before the next
        ``on_data`` so that the strategy's account view includes the fills it was just told about.
        """
        return self._positions.wait(timeout)

    def get_cash_balance(self) -> float:
        """IB's ``TotalCashValue`` of the account."""
        return self._account.value("TotalCashValue")

    def get_account_value(self) -> float:
        """IB's ``NetLiquidation`` of the account."""
        return self._account.value("NetLiquidation")

    def get_buying_power(self) -> float:
        """IB's ``BuyingPower`` of the account."""
        return self._account.value("BuyingPower")

    def get_positions(self) -> dict[str, Position]:
        """Stock positions in the account as IB reports them, keyed by symbol (quantities not truncated).

        While disconnected, the local fill-based book is served if position tracking is on.
        """
        if not self._conn.is_connected():
            if self.enable_position_tracking:
                return self._positions.local_positions()
            raise NotConnectedError("get_positions() needs a connection to IB; call connect() first")
        return self._account.positions()

    def get_cash_balances(self) -> dict[str, tuple[float, float]]:
        """The account's cash per currency as IB reports it: ``{currency: (CashBalance, ExchangeRate)}``
        (the rate values one unit in the base currency, USD: ``{"USD": (80_000.0, 1.0), "EUR": (20_000.0,
        1.08)}``)."""
        return self._account.currencies()

    def account_snapshot(self, *, settle: float = 0.0) -> tuple[float, float, dict[str, Position]]:
        """``(NetLiquidation, TotalCashValue, positions)`` in one trip to the loop thread: what
        :meth:`get_account_value`, :meth:`get_cash_balance` and :meth:`get_positions` return, for a caller
        that wants all three (the engine, after every fill) without three cross-thread round trips.

        ``settle``: first wait up to this many seconds, on the loop, until IB's positions include every fill
        emitted so far (:meth:`await_positions`, without its cross-thread polling).
        """
        return self._account.snapshot(self._positions.settled(settle) if settle > 0 else None)

    def start_account_snapshot(self, *, settle: float = 0.0) -> concurrent.futures.Future[AccountSnapshot]:
        """:meth:`account_snapshot` started on the loop thread without waiting for it, so that the caller
        does other work meanwhile; collect it with :meth:`IBRuntime.result
        <copilot_quant.brokers.runtime.IBRuntime.result>`. Its ``settle`` covers the fills handed over so far
        (:attr:`fills_passed` tells whether more came since)."""
        return self._account.start_snapshot(self._positions.settled(settle) if settle > 0 else None)

    def account_snapshot_eager(self) -> concurrent.futures.Future[AccountSnapshot]:
        """:meth:`account_snapshot` from the IB loop thread itself (no settle: IB's messages that came
        before are already in ib_async's caches there): done at once when the caches hold the values
        (:meth:`IBRuntime.run_eager <copilot_quant.brokers.runtime.IBRuntime.run_eager>`)."""
        return self._conn.runtime.run_eager(self._account.snapshot_async())

    def account_snapshot_cached(self) -> AccountSnapshot | None:
        """:meth:`account_snapshot_eager` without a coroutine or a future: the snapshot from ib_async's caches
        (IB loop thread), or None when a value is not cached there (:meth:`account_snapshot` asks IB)."""
        return self._account.read_snapshot()

    def account_pnl_eager(self) -> concurrent.futures.Future[AccountPnL]:
        """:meth:`account_pnl` from the IB loop thread itself: done at once once IB's P&L stream runs."""
        return self._conn.runtime.run_eager(self._account.pnl_async())

    def positions_include_fills(self) -> bool:
        """Whether IB's positions include every fill emitted so far, as of now (IB loop thread, no wait)."""
        return self._positions.settled_now()

    def account_pnl(self) -> AccountPnL:
        """The account's daily, unrealized and realized P&L as IB pushes it about every second (``reqPnL``).

        Real IB pushes account values (NetLiquidation, cash) only on change or about every 3 minutes, so
        a daily-loss rail should read this instead of :meth:`get_account_value`.
        """
        return self._account.pnl()

    def check_buying_power(self, order: Order, price: float) -> bool:
        """Whether IB's BuyingPower covers ``order`` at ``price`` plus commission (see the short policy),
        in the account's base currency (an order in another currency at IB's ``ExchangeRate``; refused
        without one), less what the orders this adapter sent since IB's last account update reserve —
        IB sends its values every 3 minutes, so a fill just made and a working order are not in them
        (:mod:`~copilot_quant.brokers.buying_power`). Never looser than IB's own figure. A future or a pair
        is checked for its margin against AvailableFunds instead."""
        refusal = self._account.buying_power_refusal(order, float(price), allow_short=self.allow_short)
        if refusal is not None:
            log.info("%s", refusal)
        return refusal is None

    # ------------------------------------------------------------------ cost models
    def calculate_commission(self, fill_price: float, quantity: float) -> float:
        """The commission model's estimate (``commission_rate`` × notional); real fills carry IB's."""
        return self.commission_model.commission(fill_price, quantity)

    def calculate_slippage(self, order: Order, market_price: float) -> float:
        """``market_price`` moved against ``order`` by ``slippage_rate`` (limit orders: unchanged)."""
        if order.order_type == OrderType.LIMIT:
            return float(market_price)
        return self.slippage_model.adjust(float(market_price), OrderSide(order.side))
