"""The IB account as the broker adapter reads it: account values, stock positions, buying power.

Everything is read from ib_async's caches, which IB keeps current (``reqAccountUpdates`` and positions,
started at connect), so most reads are one trip to the IB loop thread. Note that real IB pushes account
values every 3 minutes (positions right after a fill), so NetLiquidation and cash lag fills at IB; the
simulated gateway follows that cadence on its market clock (``GatewayConfig.account_update_interval``,
:mod:`copilot_quant.gateway.account_cadence`). IB pushes the account's P&L (``reqPnL``) about every second: :meth:`IbAccount.pnl` reads it, for
rails that must not lag (the daily-loss limit).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ib_async import RequestError

from copilot_quant.backtest.orders import Order, OrderSide, Position
from copilot_quant.brokers.buying_power import Commitments, ExchangeRateUnknownError, headroom
from copilot_quant.brokers.ib_contracts import TRADED_SEC_TYPES, instrument_key, unit_avg_cost
from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.errors import BrokerError, ConfigError, NotConnectedError
from copilot_quant.model.instruments import FOREX_MARGIN_RATE, AssetClass, Instrument, InstrumentRegistry

if TYPE_CHECKING:
    from ib_async import AccountValue

    from copilot_quant.brokers.connection import IBConnection

__all__ = ["AccountPnL", "IbAccount", "base_currency", "pick_account_value"]

log = logging.getLogger(__name__)

#: What is margined, not paid in full: a future, a forex pair.
_MARGINED = (AssetClass.FUTURE, AssetClass.FOREX)
#: The keys of IB's exchange rate per currency (TWS may prefix per-currency keys with ``$LEDGER-``).
_RATE_TAGS = ("ExchangeRate", "$LEDGER-ExchangeRate")
#: The account values the pre-check compares with: a new one of either ends the reservations it includes.
_CHECKED_TAGS = frozenset({"BuyingPower", "AvailableFunds"})


@dataclass(frozen=True, slots=True)
class AccountPnL:
    """The account's P&L as IB pushes it (``reqPnL``, about every second); NaN where IB sent none."""

    daily: float
    unrealized: float
    realized: float


def _number(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) and abs(number) < 1e300 else math.nan


def base_currency(values: Iterable[AccountValue]) -> str | None:
    """The account's base currency: the currency IB sends the account-wide NetLiquidation in (once, unlike
    the per-currency tags), else the one ``Currency`` row other than ``BASE``; None when neither tells."""
    named = set()
    for v in values:
        if v.tag == "NetLiquidation" and v.currency not in ("", "BASE"):
            return str(v.currency)
        if v.tag == "Currency" and v.value not in ("", "BASE"):
            named.add(str(v.value))
    return named.pop() if len(named) == 1 else None


def pick_account_value(values: Iterable[AccountValue], tag: str, base: str | None = None) -> float | None:
    """``tag``'s value in the account's base currency: its ``BASE`` row (a per-currency tag's total, in
    the base currency), else its row in the base currency (``base``, or read from ``values``), else its
    row without a currency. Never another currency's row: IB sends RealizedPnL, CashBalance and the like
    per currency too, and a USD row of an EUR account is not the account's figure. None when absent."""
    values = list(values)
    base = base or base_currency(values)
    rows: dict[str, str] = {}
    for v in values:
        if v.tag == tag:
            rows.setdefault(str(v.currency), v.value)
    for currency in ("BASE", base, ""):
        if currency is None or currency not in rows:
            continue
        number = _number(rows[currency])
        if not math.isnan(number):
            return number
    return None


class IbAccount:
    """Reads of one connection's account. ``*_async``/``read_*`` run on the loop thread; the rest from any
    other thread."""

    def __init__(self, connection: IBConnection, commission: Callable[[float, float], float]) -> None:
        self._conn = connection
        self._commission = commission
        #: (account, its base currency) as last read from the account values (see :meth:`read_value`).
        self._base: tuple[str, str] | None = None
        #: conId -> instrument key of the contracts seen in positions (a contract's key never changes).
        self._keys: dict[int, str] = {}
        #: symbol -> its instrument by the default registry (None: unreadable), for the buying-power check.
        self._instruments: dict[str, Instrument | None] = {}
        #: What this adapter's orders reserve of IB's buying power until IB's values include them.
        self.commitments = Commitments()
        #: The ib_async ``IB`` whose account updates clear the reservations (see _watch_account_updates).
        self._watching: Any = None

    def _instrument(self, symbol: str) -> Instrument | None:
        """``InstrumentRegistry().resolve(symbol)`` (None when it cannot read it), once per symbol: what the
        buying-power check reads of it — kind, currency, root, margin — is the same whatever the date."""
        if symbol in self._instruments:
            return self._instruments[symbol]
        try:
            inst: Instrument | None = InstrumentRegistry().resolve(symbol)
        except ConfigError:
            inst = None
        self._instruments[symbol] = inst
        return inst

    def read_value(self, tag: str) -> float | None:
        """``tag``'s value from ib_async's cache as :func:`pick_account_value` reads it (loop thread), or None.

        On the path from a bar to its orders (the account read, the buying-power check): dict lookups in
        ib_async's account values, keyed ``(account, tag, currency, modelCode)`` — the engine's
        subscriptions all have modelCode ``""`` — instead of scanning the account's hundred-odd rows.
        """
        ib = self._conn.ib
        account = self._conn.account or ""
        rows = getattr(getattr(ib, "wrapper", None), "accountValues", None)
        if not account or not isinstance(rows, dict):
            return pick_account_value(ib.accountValues(account), tag)
        for currency in ("BASE", self._base_currency(ib, account, rows), ""):
            row = rows.get((account, tag, currency, "")) if currency is not None else None
            if row is not None:
                number = _number(row.value)
                if not math.isnan(number):
                    return number
        return None

    def _base_currency(self, ib: Any, account: str, rows: dict[Any, Any]) -> str | None:
        """:func:`base_currency` of ``account``, read again only when its NetLiquidation row is not where it
        was found last time (another account, or a base currency known from a ``Currency`` row only)."""
        known = self._base
        if known is not None and known[0] == account and (account, "NetLiquidation", known[1], "") in rows:
            return known[1]
        base = base_currency(ib.accountValues(account))
        self._base = None if base is None else (account, base)
        return base

    def _key(self, contract: Any) -> str:
        """:func:`instrument_key` of ``contract``, cached by its conId (a future's once IB named its contract)."""
        con_id = getattr(contract, "conId", 0)
        key = self._keys.get(con_id) if con_id else None
        if key is None:
            key = instrument_key(contract)
            if con_id and (contract.secType != "FUT" or contract.localSymbol):
                self._keys[con_id] = key
        return key

    async def value_async(self, tag: str) -> float:
        """An account value from ib_async's cache (kept current by IB), else from an account summary."""
        ib = self._conn.ib
        account = self._conn.account or ""
        value = self.read_value(tag)
        if value is None:
            values = ib.accountValues(account)
            value = pick_account_value(await ib.accountSummaryAsync(account), tag, base_currency(values))
        if value is None:
            raise BrokerError(f"IB did not report {tag} for account {account}")
        return value

    def read_currencies(self) -> dict[str, tuple[float, float]]:
        """``{currency: (CashBalance, ExchangeRate)}`` as IB last sent them (loop thread): each currency the
        account holds, its balance and its rate to the base currency (``BASE`` itself left out)."""
        ib = self._conn.ib
        balances: dict[str, float] = {}
        rates: dict[str, float] = {}
        for v in ib.accountValues(self._conn.account or ""):
            if v.currency in ("", "BASE") or v.tag not in ("CashBalance", "ExchangeRate"):
                continue
            try:
                (balances if v.tag == "CashBalance" else rates)[v.currency] = float(v.value)
            except ValueError:
                continue
        return {c: (amount, rates.get(c, float("nan"))) for c, amount in balances.items()}

    def currencies(self) -> dict[str, tuple[float, float]]:
        if not self._conn.is_connected():
            raise NotConnectedError("cash balances need a connection to IB; call connect() first")
        result: dict[str, tuple[float, float]] = self._conn.call(self.read_currencies)
        return result

    def value(self, tag: str) -> float:
        if not self._conn.is_connected():
            raise NotConnectedError(f"{tag} needs a connection to IB; call connect() first")
        value: float = self._conn.run(self.value_async(tag), timeout=10)
        return value

    async def pnl_async(self, wait: float = 2.0) -> AccountPnL:
        """The account's P&L from IB's ``reqPnL`` stream (subscribed on first use; waits up to ``wait``
        seconds for IB's first report)."""
        ib = self._conn.ib
        account = self._conn.account or ""
        if not ib.pnl(account):
            ib.reqPnL(account)
            deadline = asyncio.get_running_loop().time() + wait
            while not ib.pnl(account) or math.isnan(_number(ib.pnl(account)[0].dailyPnL)):
                if asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(0.02)
        items = ib.pnl(account)
        if not items:
            raise BrokerError(f"IB sent no P&L for account {account}")
        p = items[0]
        return AccountPnL(_number(p.dailyPnL), _number(p.unrealizedPnL), _number(p.realizedPnL))

    def pnl(self) -> AccountPnL:
        if not self._conn.is_connected():
            raise NotConnectedError("account_pnl() needs a connection to IB; call connect() first")
        result: AccountPnL = self._conn.run(self.pnl_async(), timeout=10)
        return result

    def positions(self) -> dict[str, Position]:
        result: dict[str, Position] = self._conn.call(self.read_positions)
        return result

    def snapshot(
        self, before: Coroutine[Any, Any, Any] | None = None
    ) -> tuple[float, float, dict[str, Position]]:
        """``(NetLiquidation, TotalCashValue, positions)`` in one trip to the loop thread (``before`` is
        awaited first, on the loop, in the same trip)."""
        return IBRuntime.result(self.start_snapshot(before), timeout=10)

    def start_snapshot(
        self, before: Coroutine[Any, Any, Any] | None = None
    ) -> concurrent.futures.Future[tuple[float, float, dict[str, Position]]]:
        """:meth:`snapshot` started on the loop thread without waiting for it (collect it with
        :meth:`IBRuntime.result <copilot_quant.brokers.runtime.IBRuntime.result>`)."""
        if not self._conn.is_connected():
            if before is not None:
                before.close()
            raise NotConnectedError("account_snapshot() needs a connection to IB; call connect() first")

        return self._conn.submit(self.snapshot_async(before))

    async def snapshot_async(
        self, before: Coroutine[Any, Any, Any] | None = None
    ) -> tuple[float, float, dict[str, Position]]:
        """:meth:`snapshot` on the loop thread (``before`` awaited first)."""
        if before is not None:
            await before
        value = await self.value_async("NetLiquidation")
        cash = await self.value_async("TotalCashValue")
        return value, cash, self.read_positions()

    def read_snapshot(self) -> tuple[float, float, dict[str, Position]] | None:
        """:meth:`snapshot_async` from ib_async's caches alone (loop thread, no await): None when a value is
        not cached (only an account summary from IB could tell)."""
        value = self.read_value("NetLiquidation")
        cash = self.read_value("TotalCashValue") if value is not None else None
        if value is None or cash is None:
            return None
        return value, cash, self.read_positions()

    def read_positions(self) -> dict[str, Position]:
        """IB's positions (stocks, futures contracts, forex pairs) by instrument key (``AAPL``, ``MESZ6``,
        ``EUR.USD``), marked with its portfolio prices (loop thread: ib_async's caches). A position's
        average price is per unit (IB folds a future's multiplier into its avgCost)."""
        ib = self._conn.ib
        account = self._conn.account or ""
        key = self._key
        marks = {
            key(item.contract): item
            for item in ib.portfolio(account)
            if item.contract.secType in TRADED_SEC_TYPES
        }
        out: dict[str, Position] = {}
        for p in ib.positions(account):
            if p.contract.secType not in TRADED_SEC_TYPES or not p.position:
                continue
            symbol = key(p.contract)
            avg = unit_avg_cost(p.contract, p.avgCost)
            pos = Position(symbol, quantity=float(p.position), avg_entry_price=avg)
            item = marks.get(symbol)
            if item is not None and item.marketPrice and item.marketPrice > 0:
                pos.update_unrealized_pnl(float(item.marketPrice))
                pos.realized_pnl = float(item.realizedPNL or 0.0)
            out[symbol] = pos
        return out

    def read_position(self, symbol: str) -> float:
        """IB's position in ``symbol`` (an instrument key) from ib_async's cache (loop thread)."""
        account = self._conn.account or ""
        key = self._key
        return sum(
            float(p.position)
            for p in self._conn.ib.positions(account)
            if p.contract.secType in TRADED_SEC_TYPES and key(p.contract) == symbol
        )

    def position(self, symbol: str) -> float:
        """:meth:`read_position` from another thread (0.0 when it cannot be read)."""
        try:
            return float(self._conn.call(self.read_position, symbol, timeout=5))
        except (BrokerError, TimeoutError, ConnectionError):
            return 0.0

    def buying_power_refusal(self, order: Order, price: float, *, allow_short: bool) -> str | None:
        """Why ``order`` is not affordable at ``price``, or ``None`` when it is (from any other thread)."""
        if not self._conn.is_connected():
            return "cannot check buying power: not connected to IB"
        try:
            refusal: str | None = self._conn.run(
                self.refusal_async(order, price, allow_short=allow_short), timeout=10
            )
        except (BrokerError, TimeoutError, ConnectionError, RequestError) as exc:
            return f"cannot check buying power: {exc}"
        return refusal

    # ------------------------------------------------------------------ the buying-power pre-check
    async def check_async(self, order: Order, price: float, *, allow_short: bool) -> tuple[str | None, float]:
        """The pre-check of ``order`` at ``price`` (loop thread): ``(why it is refused or None, what it
        reserves once placed)``, in the account's base currency.

        A stock needs the value of what it opens (see the short policy) plus commission out of IB's
        BuyingPower; a future or a pair the margin it adds plus commission out of AvailableFunds (see
        :meth:`_margin_check`). Either is checked against IB's figure less what this adapter's orders
        reserved since IB last updated it (:mod:`copilot_quant.brokers.buying_power`): never more than IB's
        figure. An order in another currency than the account's is valued at IB's ``ExchangeRate`` for it;
        without one it is refused (:class:`~copilot_quant.brokers.buying_power.ExchangeRateUnknownError`).
        """
        self._watch_account_updates()
        inst = self._instrument(order.symbol)
        try:
            if inst is not None and inst.kind in _MARGINED:
                return await self._margin_check(order, price, inst)
            return await self._stock_check(order, price, inst, allow_short)
        except ExchangeRateUnknownError as exc:
            return str(exc), 0.0

    async def refusal_async(self, order: Order, price: float, *, allow_short: bool) -> str | None:
        """Why ``order`` is not affordable at ``price``, or ``None`` (loop thread; see :meth:`check_async`)."""
        return (await self.check_async(order, price, allow_short=allow_short))[0]

    async def _stock_check(
        self, order: Order, price: float, inst: Instrument | None, allow_short: bool
    ) -> tuple[str | None, float]:
        qty = float(order.quantity)
        held = self.read_position(order.symbol)
        if order.side == OrderSide.BUY:
            opening = qty if held >= 0 else max(0.0, qty - abs(held))  # covering a short frees margin
        else:
            opening = max(0.0, qty - max(held, 0.0))
            if opening > 0 and not allow_short:
                return (
                    f"selling {qty:g} {order.symbol} would open a short position and allow_short=False",
                    0.0,
                )
        if opening <= 0:
            return None, 0.0  # it only reduces a position: never refused (nor kept back by a missing rate)
        unit = self._unit_value(order.symbol, inst, price)
        needed = unit * opening + self._commission(unit, qty)
        power = await self.value_async("BuyingPower")
        refusal = self._short_of(needed, "BuyingPower", power)
        if refusal is not None:
            refusal = (
                f"insufficient buying power: {order.side} {qty:g} {order.symbol} at {price:.2f} needs "
                f"{needed:,.2f}{self._in_base()} including commission but {refusal}; reduce the quantity"
            )
        return refusal, needed

    async def _margin_check(self, order: Order, price: float, inst: Instrument) -> tuple[str | None, float]:
        """A future or a pair needs margin, not its value, out of the account's AvailableFunds (as the
        backtest and the simulated gateway ask): a future its initial margin per contract (the default
        registry's figure), a pair :data:`FOREX_MARGIN_RATE` of its value, for what the order adds to the
        position. A short is ordinary for both: never refused as one. IB's own requirement decides in
        the end (an order it refuses is REJECTED); ``precheck_buying_power=False`` leaves it all to IB."""
        qty = float(order.quantity)
        held = self.read_position(order.symbol)
        # what the position grows by: a reversal's closing part frees the margin its opening part needs
        opening = abs(held + order.signed_quantity) - abs(held)
        if opening <= 0:
            return None, 0.0
        unit = self._unit_value(order.symbol, inst, price)
        base = self._in_base()
        if inst.kind is AssetClass.FUTURE:
            rate = unit / price  # the margin is in the contract's currency
            needed = opening * inst.initial_margin * rate
            basis = f"{opening:g} contracts x {inst.initial_margin:,.2f} {inst.currency} initial margin"
        else:
            needed = unit * opening * FOREX_MARGIN_RATE
            basis = f"{FOREX_MARGIN_RATE:.0%} of {unit * opening:,.2f}{base}"
        needed += self._commission(unit, qty)
        available = await self.value_async("AvailableFunds")
        refusal = self._short_of(needed, "AvailableFunds", available)
        if refusal is not None:
            refusal = (
                f"insufficient buying power: {order.side} {qty:g} {order.symbol} needs {needed:,.2f}{base} "
                f"of margin ({basis}, with commission) but {refusal}; reduce the quantity"
            )
        return refusal, needed

    def _short_of(self, needed: float, tag: str, ib_value: float) -> str | None:
        """None when ``needed`` fits in IB's ``tag`` less the reservations; else what it was compared with."""
        reserved = self.commitments.total()
        left = headroom(ib_value, reserved)
        if needed <= left:
            return None
        said = f"IB {tag} is {ib_value:,.2f}{self._in_base()}"
        if reserved > 0:
            said += (
                f" less {reserved:,.2f} reserved by orders sent since IB's last account update "
                f"(their fills and working orders are not in it yet): {left:,.2f} left"
            )
        return said

    def _unit_value(self, symbol: str, inst: Instrument | None, price: float) -> float:
        """One unit of ``symbol`` at ``price`` in the account's base currency (loop thread), at IB's
        ``ExchangeRate`` for the currency it is quoted in; a pair at its quote currency's rate, else its
        base currency's (``USD.JPY``: one USD). A symbol the registry cannot read counts as quoted in USD.
        Raises :class:`ExchangeRateUnknownError` when IB has sent no rate that values it."""
        currency = inst.currency if inst is not None else "USD"
        rate = self._rate(currency)
        if rate is not None:
            return price * rate
        if inst is not None and inst.kind is AssetClass.FOREX:
            rate = self._rate(inst.root)
            if rate is not None:
                return rate
        known = inst.root if inst is not None and inst.kind is AssetClass.FOREX else ""
        raise ExchangeRateUnknownError(
            f"cannot check buying power: IB has sent no ExchangeRate for {currency}"
            + (f" or {known}" if known else "")
            + f" (the account's base currency is {self._base_name()}), so {symbol} cannot be valued in it. "
            "IB reports a rate for each currency the account deals in: convert some cash into "
            f"{currency} first (a forex order), or pass precheck_buying_power=False to leave the check to IB"
        )

    def _rate(self, currency: str) -> float | None:
        """IB's ``ExchangeRate`` of ``currency`` (what one unit is worth in the base currency; 1 for the base
        itself), read by key from ib_async's cache (loop thread); None when IB has sent none. The key may
        carry TWS's optional ``$LEDGER-`` prefix of per-currency values."""
        if currency == self._base_name(default=""):
            return 1.0
        for tag in _RATE_TAGS:
            number = self._row(tag, currency)
            if number is not None and number > 0:
                return number
        return None

    def _row(self, tag: str, currency: str) -> float | None:
        """The number in ``tag``'s row for ``currency`` exactly (loop thread), or None."""
        ib = self._conn.ib
        account = self._conn.account or ""
        rows = getattr(getattr(ib, "wrapper", None), "accountValues", None)
        if account and isinstance(rows, dict):
            row = rows.get((account, tag, currency, ""))
            number = math.nan if row is None else _number(row.value)
        else:
            values = (v.value for v in ib.accountValues(account) if v.tag == tag and v.currency == currency)
            number = _number(next(values, None))
        return None if math.isnan(number) else number

    def _base_name(self, default: str = "unknown") -> str:
        """The account's base currency as IB's values tell it (loop thread)."""
        ib = self._conn.ib
        account = self._conn.account or ""
        rows = getattr(getattr(ib, "wrapper", None), "accountValues", None)
        if account and isinstance(rows, dict):
            base = self._base_currency(ib, account, rows)
        else:
            base = base_currency(ib.accountValues(account))
        return base or default

    def _in_base(self) -> str:
        """`` EUR``: the base currency after an amount, or nothing when IB has not told it."""
        base = self._base_name(default="")
        return f" {base}" if base else ""

    def _watch_account_updates(self) -> None:
        """Have IB's account updates clear the reservations they include (once per IB object; loop thread)."""
        ib = self._conn.ib
        if self._watching is not ib:
            ib.accountValueEvent += self._on_account_value
            self._watching = ib

    def _on_account_value(self, value: AccountValue) -> None:
        # IB recomputed the figure the check compares with: it includes every fill received before it
        if value.tag in _CHECKED_TAGS and value.account == (self._conn.account or value.account):
            self.commitments.account_updated()
