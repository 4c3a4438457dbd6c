"""Continuous futures live, as in a backtest (:mod:`copilot_quant.backtest.rolls`): a strategy run on ``"MES"``.

IB trades only real contracts, so the engine does what the backtest does, by the same rule
(``registry.contract_on(root, day, roll_days=N)``, days in New York of the bar stamps):

* **Bars**: the strategy's ``MES`` column is the contract of each bar's day — the bars of ``MESZ6`` until
  its roll, then ``MESH7``'s — spliced from the contracts' own bar streams (:class:`SplicedBars`), which is
  how the data sources build a continuous series (unadjusted), so a backtest on ``MES`` sees the same bars.
  The engine streams the contracts of the lookback's days and the next one; at each roll it starts the
  stream of the contract after the new one.
* **Orders** for ``MES`` are routed to the contract of the bar they were decided on: ``order.symbol``
  becomes ``"MESZ6"`` (journaled, sent, filled and held under it), ``order.routed_from`` keeps ``"MES"``.
  As in the backtest (:func:`~copilot_quant.backtest.rolls.closing_contract`), an order that only reduces
  the strategy's position still held in one earlier contract (no automatic roll) trades that contract.
* **Positions** are per contract; ``self.position("MES")`` is the sum over the root's contracts.
* **Rolls**: at the first bar of a day that trades a new contract, the strategy's ``on_roll(roll)`` is
  called before its ``on_data``; with ``auto_roll=True`` the engine first sends, for each contract of the
  root the strategy holds, a market order closing it and one opening the same quantity in the new contract.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.market import SESSION_TZ
from copilot_quant.backtest.rolls import Roll, check_roll_days, closing_contract, continuous_roots
from copilot_quant.brokers.ib_mapping import empty_bars
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.model.instruments import AssetClass, InstrumentRegistry
from copilot_quant.model.orders import Order, OrderSide

if TYPE_CHECKING:
    from copilot_quant.live.events import ErrorLog
    from copilot_quant.live.order_router import OrderRouter

__all__ = ["ContinuousSymbols", "ContractStreams", "LiveRolls", "SplicedBars", "run_contracts"]

log = logging.getLogger(__name__)


def _day(stamp_ns: int) -> date:
    return pd.Timestamp(int(stamp_ns), tz="UTC").tz_convert(SESSION_TZ).date()


class ContinuousSymbols:
    """The run's continuous futures: the contract of each day, routing, rolls and position sums."""

    __slots__ = ("_by_day", "_registry", "roll_days", "roots")

    def __init__(self, registry: InstrumentRegistry, symbols: Sequence[str], roll_days: int = 5) -> None:
        self.roll_days = check_roll_days(roll_days)
        self._registry = registry
        #: continuous symbol -> its instrument
        self.roots = continuous_roots(registry, symbols)
        self._by_day: dict[tuple[str, date], str] = {}

    def __bool__(self) -> bool:
        return bool(self.roots)

    def contract_on(self, symbol: str, day: date) -> str:
        """The contract ``symbol`` trades on ``day``."""
        root = self.roots[symbol].root
        key = (root, day)
        found = self._by_day.get(key)
        if found is None:
            found = self._by_day[key] = self._registry.contract_on(root, day, roll_days=self.roll_days).symbol
        return found

    def contract_at(self, symbol: str, stamp_ns: int) -> str:
        """The contract ``symbol`` trades at the bar stamped ``stamp_ns``."""
        return self.contract_on(symbol, _day(stamp_ns))

    def next_contract(self, contract: str) -> str:
        """The contract listed after ``contract`` (the one a roll out of it moves into)."""
        inst = self._registry.resolve(contract)
        assert inst.expiry is not None  # a contract, not a continuous symbol
        return self._registry.contracts_after(inst.root, inst.expiry, 2)[-1].symbol

    def contracts(self, first: date, last: date, *, alive_on: date | None = None) -> list[str]:
        """Every contract some day of ``[first, last]`` trades, and the next one of each root; with
        ``alive_on``, only those not expired on that day. (A live run streams the expired ones too: the
        data adapter looks futures up with IB's ``includeExpired``.)"""
        out: dict[str, None] = {}
        for symbol in self.roots:
            day = first
            current = ""
            while day <= last:
                current = self.contract_on(symbol, day)
                expiry = self._registry.resolve(current).expiry
                if alive_on is None or expiry is None or expiry >= alive_on:
                    out[current] = None
                day = date.fromordinal(day.toordinal() + 1)
            if current:
                out[self.next_contract(current)] = None
        return list(out)

    def route(self, order: Order, stamp_ns: int, held: Callable[[str], float] | None = None) -> None:
        """Point an order for a continuous symbol at the contract of the bar (others are left alone), or,
        when it only closes (part of) a position still held in one earlier contract of the root, at that
        contract (``held``: the strategy's quantity by contract symbol), as the backtest routes it."""
        if order.symbol in self.roots and not order.routed_from:
            contract = self.contract_at(order.symbol, stamp_ns)
            if held is not None:
                contract = closing_contract(order, contract, self._earlier(order.symbol, contract), held)
            log.debug("order %s for %s trades %s", order.order_id, order.symbol, contract)
            order.routed_from, order.symbol = order.symbol, contract

    def _earlier(self, symbol: str, contract: str) -> list[str]:
        """The root's contracts of the days seen so far (the lookback's and the bars') before ``contract``."""
        root = self.roots[symbol].root
        expiry = self._registry.resolve(contract).expiry
        seen = dict.fromkeys(c for (r, _), c in self._by_day.items() if r == root and c != contract)
        return [c for c in seen if expiry is None or (self._registry.resolve(c).expiry or expiry) < expiry]

    def rolls(self, previous_ns: int | None, stamp_ns: int) -> list[Roll]:
        """The rolls between the bar stamped ``previous_ns`` and the one at ``stamp_ns``."""
        if previous_ns is None:
            return []
        when = pd.Timestamp(int(stamp_ns), tz="UTC").to_pydatetime()
        out = []
        for symbol in self.roots:
            old, new = self.contract_at(symbol, previous_ns), self.contract_at(symbol, stamp_ns)
            if old != new:
                out.append(Roll(symbol, old, new, when))
        return out

    def position(self, symbol: str, positions: Mapping[str, float]) -> float:
        """The quantity held in all of ``symbol``'s root's contracts (``positions``: quantity by symbol)."""
        root = self.roots[symbol].root
        return sum(q for held, q in positions.items() if self._contract_of(held, root))

    def _contract_of(self, symbol: str, root: str) -> bool:
        try:
            inst = self._registry.resolve(symbol)
        except Exception:  # a symbol the registry cannot read is no contract of the root
            return False
        return inst.kind is AssetClass.FUTURE and not inst.continuous and inst.root == root

    def roll_orders(self, roll: Roll, positions: Mapping[str, float]) -> list[Order]:
        """Market orders moving every position in ``roll``'s root (but the new contract) into the new one,
        as the backtest's automatic roll sends them."""
        root = self.roots[roll.symbol].root
        orders: list[Order] = []
        for held, quantity in positions.items():
            if held == roll.new or not quantity or not self._contract_of(held, root):
                continue
            close, open_ = (
                (OrderSide.SELL, OrderSide.BUY) if quantity > 0 else (OrderSide.BUY, OrderSide.SELL)
            )
            orders.append(Order(held, abs(quantity), side=close))
            orders.append(Order(roll.new, abs(quantity), side=open_))
        return orders


class SplicedBars:
    """The bar source of the engine's clock: the data feed, with each continuous symbol's bars spliced from
    its contracts' streams (the contract of each bar's day). Other symbols pass straight through."""

    __slots__ = ("_continuous", "_contracts", "_feed")

    def __init__(
        self, feed: LiveDataFeedAdapter, continuous: ContinuousSymbols, contracts: Sequence[str]
    ) -> None:
        self._feed = feed
        self._continuous = continuous
        #: continuous symbol -> the contracts streamed for it
        self._contracts: dict[str, list[str]] = {s: [] for s in continuous.roots}
        for contract in contracts:
            self.add(contract)

    def add(self, contract: str) -> None:
        """A contract now streamed (a roll's next one)."""
        for symbol, listed in self._contracts.items():
            if contract not in listed and self._continuous._contract_of(
                contract, self._continuous.roots[symbol].root
            ):
                listed.append(contract)

    @property
    def contracts(self) -> list[str]:
        return [c for listed in self._contracts.values() for c in listed]

    def _own(self, symbol: str, contract: str, stamps: np.ndarray) -> np.ndarray:
        """Those of ``contract``'s ``stamps`` whose day trades it."""
        keep = [self._continuous.contract_at(symbol, int(s)) == contract for s in stamps]
        return stamps[np.asarray(keep, dtype=bool)] if len(stamps) else stamps

    def completed_stamps(self, symbol: str, now: int, after: int | None = None) -> np.ndarray:
        listed = self._contracts.get(symbol)
        if listed is None:
            return self._feed.completed_stamps(symbol, now, after)
        parts = [self._own(symbol, c, self._feed.completed_stamps(c, now, after)) for c in listed]
        return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype="int64")

    def completed_bars(self, symbol: str, now: pd.Timestamp | int | None = None) -> pd.DataFrame:
        listed = self._contracts.get(symbol)
        if listed is None:
            return self._feed.completed_bars(symbol, now)
        pieces = []
        for contract in listed:
            bars = self._feed.completed_bars(contract, now)
            if len(bars):
                keep = self._own(symbol, contract, pd.DatetimeIndex(bars.index).asi8)
                pieces.append(bars.loc[bars.index.isin(pd.DatetimeIndex(keep, tz="UTC"))])
        if not pieces:
            return empty_bars()
        return pd.concat(pieces).sort_index()

    def last_bar_ns(self, symbol: str) -> int | None:
        listed = self._contracts.get(symbol)
        if listed is None:
            return self._feed.last_bar_ns(symbol)
        stamps = [t for t in (self._feed.last_bar_ns(c) for c in listed) if t is not None]
        return max(stamps, default=None)

    def synced_trade_ns(self, symbols: list[str]) -> int | None:
        # a continuous symbol is proven by its contract of the moment (an expired one trades no more)
        names: list[str] = []
        for symbol in symbols:
            listed = self._contracts.get(symbol)
            if listed is None:
                names.append(symbol)
                continue
            newest = self.last_bar_ns(symbol)
            names.append(self._continuous.contract_at(symbol, newest) if newest is not None else listed[0])
        return self._feed.synced_trade_ns(names)

    def server_time(self) -> pd.Timestamp:
        return self._feed.server_time()

    def prepare_bars(self, symbols: list[str], delivered_ns: int | None = None) -> int | None:
        return self._feed.prepare_bars(self._streams_of(symbols), delivered_ns)

    def bars_prepared(self, symbols: list[str]) -> bool:
        return self._feed.bars_prepared(self._streams_of(symbols))

    def _streams_of(self, symbols: list[str]) -> list[str]:
        """The streams ``symbols`` read: a continuous symbol's contracts, any other symbol itself."""
        return [name for symbol in symbols for name in self._contracts.get(symbol, [symbol])]

    def closes(self, end_ns: int) -> dict[str, float]:
        """Each streamed contract's latest close at or before ``end_ns`` (what positions in it are marked at)."""
        end = pd.Timestamp(int(end_ns), tz="UTC")
        out: dict[str, float] = {}
        for contract in self.contracts:
            bars = self._feed.completed_bars(contract, end)
            if len(bars):
                out[contract] = float(bars["Close"].iloc[-1])
        return out


class LiveRolls:
    """The worker's side of continuous futures: routing, the rolls at each bar (the automatic roll's orders,
    then ``on_roll``) and the next contract's stream."""

    __slots__ = ("_record", "_stream", "auto_roll", "bars", "symbols")

    def __init__(
        self,
        symbols: ContinuousSymbols,
        bars: SplicedBars,
        *,
        auto_roll: bool,
        stream: Callable[[str], bool],
        record: Callable[[str, Exception, str], None],
    ) -> None:
        self.symbols = symbols
        self.bars = bars
        self.auto_roll = auto_roll
        self._stream = stream
        self._record = record

    @classmethod
    def for_run(
        cls, continuous: tuple[ContinuousSymbols, list[str]], streams: ContractStreams, *, auto_roll: bool
    ) -> LiveRolls:
        """The run's rolls: ``continuous`` from :func:`run_contracts`, ``streams`` starting a next contract."""
        symbols, contracts = continuous
        bars = SplicedBars(streams.feed, symbols, contracts)
        return cls(symbols, bars, auto_roll=auto_roll, stream=streams.start, record=streams.failed)

    def rolls_at(self, previous: pd.Timestamp | None, stamp: pd.Timestamp) -> list[Roll]:
        rolls = self.symbols.rolls(None if previous is None else previous.value, stamp.value)
        for roll in rolls:
            log.info("%s rolls from %s to %s at %s", roll.symbol, roll.old, roll.new, stamp)
            following = self.symbols.next_contract(roll.new)
            if following not in self.bars.contracts and self._stream(following):
                self.bars.add(following)
        return rolls

    def on_rolls(
        self, name: str, strategy: Any, held: Mapping[str, float], rolls: Sequence[Roll]
    ) -> list[Order]:
        """The automatic roll's orders for one strategy (from what it holds), after telling it each roll."""
        orders: list[Order] = []
        for shared in rolls:
            roll = Roll(shared.symbol, shared.old, shared.new, shared.timestamp)
            if self.auto_roll:
                roll.orders = self.symbols.roll_orders(roll, held)
                for order in roll.orders:
                    order.timestamp = roll.timestamp
                orders.extend(roll.orders)
            try:
                strategy.on_roll(roll)
            except Exception as exc:
                self._record(name, exc, f"in on_roll at {roll.timestamp}")
        return orders


def run_contracts(
    feed: LiveDataFeedAdapter, names: Sequence[str], lookback_days: int, roll_days: int
) -> tuple[ContinuousSymbols, list[str]] | None:
    """The run's continuous futures and the contracts to stream for them (every contract of a lookback day,
    expired ones too — looked up with ``includeExpired`` — so the bars are spliced as the backtest's, and
    the next), by the broker's date; None when the run has none."""
    today = feed.server_time().tz_convert(SESSION_TZ).date()
    continuous = ContinuousSymbols(InstrumentRegistry(reference=today), names, roll_days)
    if not continuous:
        return None
    first = today - timedelta(days=max(1, int(lookback_days)))
    return continuous, continuous.contracts(first, today)


class ContractStreams:
    """Starts the stream (bars and quotes) of a contract a roll needs next, mid-run (worker thread)."""

    __slots__ = ("_errors", "_interval", "_lookback", "_router", "_streamed", "feed")

    def __init__(
        self,
        feed: LiveDataFeedAdapter,
        *,
        router: OrderRouter,
        streamed: list[str],
        errors: ErrorLog,
        interval: str,
        lookback_days: int,
    ) -> None:
        self.feed, self._router, self._streamed, self._errors = feed, router, streamed, errors
        self._interval, self._lookback = interval, lookback_days

    def start(self, contract: str) -> bool:
        ok = self.feed.stream_bars([contract], self._interval, self._lookback).get(contract, False)
        if not ok:
            self._errors.record(f"could not stream {contract}, the contract after the roll", "data")
            return False
        self.feed.subscribe([contract])
        self._streamed.append(contract)  # the engine's list: unsubscribed at stop
        self._router.symbols = self._router.symbols | {contract}
        return True

    def failed(self, name: str, exc: Exception, where: str) -> None:
        """A strategy's ``on_roll`` raised: counted and kept like any strategy error."""
        self._errors.strategy_failed(name, exc, f"{type(exc).__name__}: {exc}", where)
