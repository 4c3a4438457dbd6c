"""Continuous futures in a backtest: orders for ``"MES"`` trade the contract of the day, and rolls.

A strategy may run on a continuous symbol (``"MES"``, ``"ES=F"``): its bars are the provider's series for
that symbol (research prices), but a position can only be held in a real contract. So:

* An order for the continuous symbol is **routed** when it is submitted to the contract of that bar's day,
  ``registry.contract_on(root, day, roll_days=N)`` (the front month, rolled ``N`` weekdays before its last
  trade date): the order's ``symbol`` becomes the contract's (``"MESZ6"``), and so do its fills and the
  position; ``order.routed_from`` keeps ``"MES"`` (a strategy counting its fills matches either). A
  working order stays on the contract it was routed to. An order that only reduces a position still held
  in one earlier contract of the root (no automatic roll) trades that contract instead, so selling
  ``"MES"`` after a roll closes what is held rather than opening a short in the new contract.
* The contracts' bars are loaded beside the run's symbols (from the data provider, or taken from a
  ``data=`` frame that has their columns) to execute on; the strategy still sees only the symbols it asked
  for.
* ``self.position("MES")`` is the sum over all of MES's contracts held; ``self.positions`` lists them by
  contract.
* A **roll** happens at the first bar whose day trades a new contract. The strategy's ``on_roll(roll)``
  hook (a :class:`Roll`) is called then, before ``on_data`` for that bar. With ``auto_roll=True`` the
  engine first sends, for each contract of the root still held, a market order closing it and one
  opening the same quantity in the new contract (both execute at the next bar's open like any order, and
  are listed in ``roll.orders``); the strategy's ``on_fill`` sees their fills.

A futures contract (routed or named, ``"ESZ6"``) stops trading after its last trade date: a position
still held then is settled at the contract's last close (:class:`Expiries`), and a new order for it is
rejected.

A bar's day is the trading session it belongs to on the instrument's calendar (a CME Globex bar at 18:00
Chicago belongs to the next day's session), in the exchange's zone; for a calendar the library does not
know, the New York calendar day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from copilot_quant.backtest.market import SESSION_TZ
from copilot_quant.data.calendars import closing_session_of, exchange_tz_name
from copilot_quant.errors import ConfigError, CopilotQuantError
from copilot_quant.model.instruments import AssetClass, Instrument, InstrumentRegistry
from copilot_quant.model.orders import Order, OrderSide
from copilot_quant.model.ports import IDataFeed

__all__ = ["ContinuousRouter", "Expiries", "Roll", "check_roll_days", "closing_contract", "continuous_roots"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Roll:
    """A continuous symbol moved to its next contract at ``timestamp`` (the first bar of the new one)."""

    symbol: str
    old: str
    new: str
    timestamp: datetime
    #: the orders the automatic roll sent (closing ``old``, opening ``new``); empty without auto_roll
    orders: list[Order] = field(default_factory=list)


def check_roll_days(roll_days: object) -> int:
    """``roll_days`` as given, if it is a whole number of weekdays >= 0."""
    if isinstance(roll_days, bool) or not isinstance(roll_days, int) or roll_days < 0:
        raise ConfigError(f"roll_days must be a whole number of weekdays >= 0, e.g. 5; got {roll_days!r}")
    return roll_days


def continuous_roots(registry: InstrumentRegistry, symbols: Sequence[str]) -> dict[str, Instrument]:
    """The run's continuous futures among ``symbols`` (``"MES"``, ``"CL=F"``), each with its instrument."""
    roots: dict[str, Instrument] = {}
    for symbol in symbols:
        inst = registry.resolve(symbol)
        if inst.kind is AssetClass.FUTURE and inst.continuous:
            roots[symbol] = inst
    return roots


def closing_contract(
    order: Order, contract: str, earlier: Sequence[str], held: Callable[[str], float]
) -> str:
    """The contract an order for a continuous symbol trades: ``contract`` (the one of its bar's day), or the
    one earlier contract of the root still held (``earlier``: the root's contracts of the days so far) when
    the order only reduces that position and nothing is held in ``contract`` — so selling ``"MES"`` after a
    roll closes what is held rather than opening a short in the new contract. The backtest and the live
    engine route by this one rule."""
    open_ = [(c, q) for c in dict.fromkeys(earlier) if c != contract and (q := held(c))]
    if len(open_) != 1 or held(contract):
        return contract
    old, quantity = open_[0]
    signed = order.quantity if order.side_enum is OrderSide.BUY else -order.quantity
    if quantity * signed < 0 and abs(signed) <= abs(quantity) + 1e-9:
        return old  # it only reduces the old position: close it rather than open a spread
    return contract


class ContinuousRouter:
    """The continuous symbols of one run: the contract per bar, routing, rolls and position sums.

    Args:
        registry: resolves the symbols and gives the contract of each day.
        symbols: the run's symbols (those that are not continuous futures are ignored).
        index: the bar timestamps.
        roll_days: weekdays before the front's last trade date at which orders move to the next contract.
    """

    __slots__ = ("_contracts", "_registry", "roots")

    def __init__(
        self,
        registry: InstrumentRegistry,
        symbols: Sequence[str],
        index: pd.DatetimeIndex,
        roll_days: int = 5,
    ) -> None:
        check_roll_days(roll_days)
        self._registry = registry
        #: continuous symbol -> its instrument
        self.roots = continuous_roots(registry, symbols)
        sessions = _Sessions(index)
        cache: dict[tuple[str, date], str] = {}
        #: continuous symbol -> contract symbol per bar
        self._contracts: dict[str, list[str]] = {}
        for symbol, inst in self.roots.items():
            per_bar = []
            for day in sessions.days(inst.calendar):
                key = (inst.root, day)
                if key not in cache:
                    cache[key] = registry.contract_on(inst.root, day, roll_days=roll_days).symbol
                per_bar.append(cache[key])
            self._contracts[symbol] = per_bar

    @classmethod
    def for_run(
        cls, registry: InstrumentRegistry, symbols: Sequence[str], index: pd.DatetimeIndex, roll_days: int
    ) -> ContinuousRouter | None:
        router = cls(registry, symbols, index, roll_days)
        return router if router.roots else None

    def contracts(self) -> list[str]:
        """Every contract some bar of the run trades, in order of first use."""
        return list(dict.fromkeys(c for per_bar in self._contracts.values() for c in per_bar))

    def contract(self, symbol: str, bar: int) -> str | None:
        """The contract ``symbol`` trades at ``bar`` (``None`` if it is not a continuous symbol)."""
        per_bar = self._contracts.get(symbol)
        return per_bar[bar] if per_bar is not None else None

    def route(self, order: Order, bar: int, held: Callable[[str], float] | None = None) -> None:
        """Point an order for a continuous symbol at the contract of ``bar``'s day (others are left alone),
        or, when it closes (part of) a position still held in one earlier contract of the root, at that
        contract (``held``: quantity held by contract symbol)."""
        contract = self.contract(order.symbol, bar)
        if contract is not None and held is not None:
            contract = self._closing(order, contract, bar, held)
        if contract is not None:
            log.debug("order %s for %s trades %s", order.order_id, order.symbol, contract)
            order.routed_from, order.symbol = order.symbol, contract

    def _closing(self, order: Order, contract: str, bar: int, held: Callable[[str], float]) -> str:
        return closing_contract(order, contract, self._contracts[order.symbol][: bar + 1], held)

    def held_closes(self, closes: pd.DataFrame, contract_closes: pd.DataFrame) -> pd.DataFrame:
        """``closes`` (a column per symbol, a row per bar of the run) with each continuous symbol's column
        replaced by what holding it returns: from one bar to the next, the move of the contract held over
        that step (the contract of the step's first bar), chained from the first close. A spliced series
        jumps by the contracts' price gap at every roll, which no holder earns or loses; the buy-and-hold
        benchmark reads these instead. ``contract_closes`` has a column per contract (a step whose contract
        has no close at either end keeps the spliced series' move)."""
        out = closes.copy()
        for symbol, per_bar in self._contracts.items():
            if symbol not in out.columns:
                continue
            spliced = out[symbol].ffill().to_numpy(dtype=float)  # between bars the last close holds
            finite = np.flatnonzero(np.isfinite(spliced))
            if len(finite) < 2:
                continue
            held = np.asarray(per_bar[:-1], dtype=object)  # the contract held over each step
            with np.errstate(divide="ignore", invalid="ignore"):
                steps = np.ones(len(spliced))
                steps[1:] = spliced[1:] / spliced[:-1]
                for contract in dict.fromkeys(per_bar[:-1]):
                    if contract not in contract_closes.columns:
                        continue
                    prices = contract_closes[contract].ffill().to_numpy(dtype=float)
                    moves = prices[1:] / prices[:-1]
                    use = (held == contract) & np.isfinite(moves) & (prices[:-1] > 0)
                    steps[1:][use] = moves[use]
            steps[~np.isfinite(steps)] = 1.0  # before the symbol's first close: no move
            first = finite[0]
            steps[: first + 1] = 1.0
            chained = spliced[first] * np.cumprod(steps)
            chained[:first] = np.nan
            out[symbol] = chained
        return out

    def rolls_at(self, bar: int, timestamp: datetime) -> list[Roll]:
        """The rolls that take effect at ``bar`` (none at the first bar)."""
        if bar <= 0:
            return []
        return [
            Roll(symbol, per_bar[bar - 1], per_bar[bar], timestamp)
            for symbol, per_bar in self._contracts.items()
            if per_bar[bar] != per_bar[bar - 1]
        ]

    def position(self, symbol: str, positions: Mapping[str, float]) -> float:
        """The quantity held in all of ``symbol``'s root's contracts (``positions``: quantity by symbol)."""
        root = self.roots[symbol].root
        total = 0.0
        for held, quantity in positions.items():
            inst = self._registry.resolve(held)
            if inst.kind is AssetClass.FUTURE and not inst.continuous and inst.root == root:
                total += quantity
        return total

    def roll_orders(self, roll: Roll, positions: Mapping[str, float]) -> list[Order]:
        """Market orders moving every position in ``roll``'s root (but the new contract) into the new one."""
        root = self.roots[roll.symbol].root
        orders: list[Order] = []
        for held, quantity in positions.items():
            inst = self._registry.resolve(held)
            if held == roll.new or not quantity or inst.continuous or inst.kind is not AssetClass.FUTURE:
                continue
            if inst.root != root:
                continue
            close_side, open_side = (
                (OrderSide.SELL, OrderSide.BUY) if quantity > 0 else (OrderSide.BUY, OrderSide.SELL)
            )
            orders.append(Order(held, abs(quantity), side=close_side))
            orders.append(Order(roll.new, abs(quantity), side=open_side))
        return orders

    def load(
        self,
        frame: pd.DataFrame,
        provider: IDataFeed | None,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        interval: str,
    ) -> pd.DataFrame | None:
        """The contracts' bars the run needs and ``frame`` lacks, on ``frame``'s index, as a
        ``(Metric, Symbol)`` frame (``None`` when nothing is missing)."""
        present = (
            set(frame.columns.get_level_values(1)) if isinstance(frame.columns, pd.MultiIndex) else set()
        )
        missing = [c for c in self.contracts() if c not in present]
        if not missing:
            return None
        if provider is None:
            raise ConfigError(
                f"orders for {', '.join(self.roots)} trade the contract of the day ({', '.join(missing)}), "
                "but the data has no columns for them; add their bars to the frame or pass a data_provider"
            )
        pieces = {c: provider.get_historical_data(c, start, end, interval) for c in missing}
        index = pd.DatetimeIndex(frame.index)
        columns = {}
        for contract, loaded in pieces.items():
            bars = loaded
            if isinstance(bars.index, pd.DatetimeIndex) and bars.index.tz is not None:
                bars = bars.tz_convert(index.tz)
            bars = bars.reindex(index)
            for metric in ("Open", "High", "Low", "Close", "Volume"):
                if metric in bars.columns:
                    columns[(metric, contract)] = bars[metric].astype("float64")
        return pd.DataFrame(columns, index=index)


class _Sessions:
    """The trading day of each bar, per calendar (computed once per calendar)."""

    __slots__ = ("_by_calendar", "_index")

    def __init__(self, index: pd.DatetimeIndex) -> None:
        self._index = index
        self._by_calendar: dict[str, list[date]] = {}

    def days(self, calendar: str) -> list[date]:
        known = self._by_calendar.get(calendar)
        if known is None:
            known = self._by_calendar[calendar] = _days(self._index, calendar)
        return known


def _days(index: pd.DatetimeIndex, calendar: str) -> list[date]:
    """Each bar's session day on ``calendar`` (exchange zone), or its New York day if that cannot be told."""
    if index.tz is not None and len(index):
        try:
            closes = closing_session_of(index, calendar)
            return list(closes.tz_convert(exchange_tz_name(calendar)).date)
        except (CopilotQuantError, KeyError, ValueError) as exc:  # an unknown calendar, bars beyond it
            log.debug("session days on %s unavailable (%s); using New York days", calendar, exc)
    local = index.tz_convert(SESSION_TZ) if index.tz is not None else index
    return list(local.date)


class Expiries:
    """The futures contracts among a run's price columns, and when each stops trading.

    A position still held after its contract's last trade date is settled at the contract's last close
    (the final settlement, as for the cash-settled index futures; ``tag="expiry"`` on the closing order),
    at the first bar of a later day; a new order for an expired contract is rejected.
    """

    __slots__ = ("_days", "_due", "expiry")

    def __init__(
        self, symbols: Sequence[str], instruments: Sequence[Instrument | None], index: pd.DatetimeIndex
    ) -> None:
        #: contract symbol -> (column, last trade date)
        self.expiry: dict[str, tuple[int, date]] = {
            s: (k, inst.expiry)
            for k, (s, inst) in enumerate(zip(symbols, instruments, strict=True))
            if inst is not None and inst.kind is AssetClass.FUTURE and inst.expiry is not None
        }
        sessions = _Sessions(index)
        #: contract symbol -> each bar's session day on the contract's calendar
        self._days = {
            s: sessions.days(inst.calendar)
            for s, inst in zip(symbols, instruments, strict=True)
            if inst is not None and s in self.expiry
        }
        #: bar -> the contracts that expired before its day but after the previous bar's
        self._due: dict[int, list[tuple[str, int, date]]] = {}
        for symbol, (k, last) in self.expiry.items():
            bar = next((i for i, day in enumerate(self._days[symbol]) if day > last), None)
            if bar is not None and bar > 0:
                self._due.setdefault(bar, []).append((symbol, k, last))

    @classmethod
    def for_run(
        cls, symbols: Sequence[str], instruments: Sequence[Instrument | None], index: pd.DatetimeIndex
    ) -> Expiries | None:
        expiries = cls(symbols, instruments, index)
        # nothing to do (and the fast path stays open) when no contract stops trading within the bars
        return expiries if expiries._due else None

    def due(self, bar: int) -> list[tuple[str, int, date]]:
        """``(symbol, column, last trade date)`` of each contract whose positions settle at ``bar``."""
        return self._due.get(bar, [])

    def expired(self, symbol: str, bar: int) -> date | None:
        """The last trade date of ``symbol`` if it is before ``bar``'s day, else ``None``."""
        known = self.expiry.get(symbol)
        if known is None or self._days[symbol][bar] <= known[1]:
            return None
        return known[1]
