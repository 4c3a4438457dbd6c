"""Round-trip trades from fills, matched first in, first out, one symbol's book at a time.

:class:`FifoLots` holds one symbol's open lots. A fill that reduces the position closes the oldest lots
first, one trade row per lot it touches (so a partial close yields a trade for the closed part and leaves
the rest open); a fill that crosses through zero closes everything and opens a new lot in the other
direction with the remainder (a reversal). Commissions are shared out per share, so each trade's ``pnl``
is net of its part of the entry and exit commissions. Lots still open at the end can be reported as
trades marked to a price (``is_open=True``).

Money is in the account's base currency. A trade in an instrument quoted in another currency (``EUR.GBP``
in GBP, ``USD.JPY`` in JPY) has its P&L computed in the quote currency and converted at the rate in force
when it is realized (:class:`QuoteRate`, at the exit fill; for a trade still open, at the mark); the
commissions are already in the base currency. ``return`` is that P&L over the entry notional, converted at
the entry's rate.

:func:`round_trips` runs a :class:`FifoLots` per symbol over a run's fills and returns the trade frame
of :attr:`~copilot_quant.backtest.results.BacktestResult.trades`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from copilot_quant.backtest.orders import Fill

__all__ = ["TRADE_COLUMNS", "FifoLots", "QuoteRate", "round_trips"]

#: Columns of :attr:`BacktestResult.trades`, in order.
TRADE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "side",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "quantity",
    "pnl",
    "return",
    "commission",
    "bars_held",
    "duration",
    "is_open",
)

_EPS = 1e-9  # quantities closer to zero than this are zero (fractional shares leave float dust)


@dataclass(slots=True)
class _Lot:
    """Part of an open position: what is left of one entry fill."""

    quantity: float  # signed: > 0 long, < 0 short
    price: float
    time: pd.Timestamp
    commission_per_share: float
    rate: float = 1.0  # base-currency value of one unit of the quote currency at the entry


@dataclass(frozen=True, slots=True)
class QuoteRate:
    """The base-currency value of one unit of a symbol's quote currency, at a fill.

    ``inverse_of_price``: the pair prices the base currency itself in its quote (``USD.JPY``): one JPY is
    worth ``1 / price`` USD at the fill's own price. Otherwise ``in_force`` holds the rate in force during
    each bar (indexed by the bar's timestamp, as the fills are): the converting pair's previous close, as
    the account had it when the bar's orders filled (``GBP.USD`` for ``EUR.GBP``).
    """

    in_force: pd.Series | None = None
    inverse_of_price: bool = False

    def at(self, time: pd.Timestamp, price: float) -> float:
        if self.inverse_of_price:
            return 1.0 / price
        series = self.in_force
        if series is None or series.empty:
            return 1.0
        # the bar a fill belongs to: the first one stamped at or after it (the last bar for a later time)
        index = pd.DatetimeIndex(series.index)
        pos = min(int(index.searchsorted(time, side="left")), len(series) - 1)
        known = series.iloc[: pos + 1].dropna()
        value = known.iloc[-1] if len(known) else series.dropna().iloc[0]
        return float(value)


class FifoLots:
    """The open lots of one symbol; :meth:`fill` matches a fill against them, oldest first.

    Each trade row returned is a dict with the :data:`TRADE_COLUMNS` keys except ``bars_held`` and
    ``duration`` (which need the bar index; :func:`round_trips` adds them).
    """

    __slots__ = ("_lots", "multiplier", "symbol")

    def __init__(self, symbol: str, multiplier: float = 1.0) -> None:
        self.symbol = symbol
        self.multiplier = float(multiplier)
        self._lots: deque[_Lot] = deque()

    @property
    def position(self) -> float:
        """The signed quantity still open."""
        return float(sum(lot.quantity for lot in self._lots))

    def fill(
        self,
        signed_quantity: float,
        price: float,
        time: pd.Timestamp,
        commission: float,
        rate: float = 1.0,
    ) -> list[dict[str, Any]]:
        """Book a fill (``signed_quantity`` > 0 buys); returns the trades it closed, oldest lot first.
        ``rate``: the base-currency value of one unit of the quote currency at the fill (see the module)."""
        closed: list[dict[str, Any]] = []
        remaining = signed_quantity
        per_share = commission / abs(signed_quantity) if signed_quantity else 0.0
        book = self._lots
        while book and abs(remaining) > _EPS and (book[0].quantity > 0) != (remaining > 0):
            lot = book[0]
            qty = min(abs(remaining), abs(lot.quantity))
            closed.append(
                _trade(
                    self.symbol,
                    lot,
                    qty,
                    price,
                    time,
                    exit_commission=per_share * qty,
                    open_=False,
                    multiplier=self.multiplier,
                    exit_rate=rate,
                )
            )
            lot.quantity -= math.copysign(qty, lot.quantity)
            remaining -= math.copysign(qty, remaining)
            if abs(lot.quantity) <= _EPS:
                book.popleft()
        if abs(remaining) > _EPS:  # opening, adding, or the far side of a reversal
            book.append(_Lot(remaining, price, time, per_share, rate))
        return closed

    def marked(self, price: float, time: pd.Timestamp, rate: float = 1.0) -> list[dict[str, Any]]:
        """The lots still open as trades marked to ``price`` at ``time`` (``is_open``, no exit commission),
        their quote-currency P&L valued at ``rate``."""
        return [
            _trade(
                self.symbol,
                lot,
                abs(lot.quantity),
                price,
                time,
                exit_commission=0.0,
                open_=True,
                multiplier=self.multiplier,
                exit_rate=rate,
            )
            for lot in self._lots
        ]


def _trade(
    symbol: str,
    lot: _Lot,
    qty: float,
    price: float,
    time: pd.Timestamp,
    *,
    exit_commission: float,
    open_: bool,
    multiplier: float = 1.0,
    exit_rate: float = 1.0,
) -> dict[str, Any]:
    """The trade row of ``qty`` of ``lot`` closed (or marked) at ``price`` (a future's points × multiplier),
    in the base currency: the quote currency's P&L at ``exit_rate``, less the commissions."""
    direction = 1.0 if lot.quantity > 0 else -1.0
    entry_commission = lot.commission_per_share * qty
    gross = direction * (price - lot.price) * qty * multiplier * exit_rate
    pnl = gross - entry_commission - exit_commission
    return {
        "symbol": symbol,
        "side": "long" if direction > 0 else "short",
        "entry_time": lot.time,
        "exit_time": time,
        "entry_price": lot.price,
        "exit_price": price,
        "quantity": qty,
        "pnl": pnl,
        "return": pnl / (lot.price * qty * multiplier * lot.rate),
        "commission": entry_commission + exit_commission,
        "is_open": open_,
    }


def round_trips(
    fills: Iterable[Fill],
    last_prices: dict[str, tuple[pd.Timestamp, float]] | None = None,
    bar_index: pd.DatetimeIndex | None = None,
    multipliers: Mapping[str, float] | None = None,
    quote_rates: Mapping[str, QuoteRate] | None = None,
) -> pd.DataFrame:
    """Round-trip trades from fills, matched FIFO per symbol (see the module docstring).

    ``last_prices`` maps a symbol to ``(time, close)`` used to mark lots still open at the end (the last
    fill price is used for a symbol missing from it). ``bar_index`` (the bar timestamps) lets
    ``bars_held`` count bars; without it ``bars_held`` is ``NaN``. Returns a frame with
    :data:`TRADE_COLUMNS`, ordered by exit time then entry time. A trade's ``pnl`` is points × quantity ×
    the contract's multiplier, which each fill carries (:attr:`Fill.multiplier`); ``multipliers`` (by
    symbol) is only for fills built without it. ``quote_rates`` converts the P&L of a symbol quoted in
    another currency than the account's (see the module docstring); a symbol missing from it is in the
    base currency.
    """
    books: dict[str, FifoLots] = {}
    last_fill: dict[str, tuple[pd.Timestamp, float]] = {}
    rows: list[dict[str, Any]] = []
    for fill in sorted(fills, key=lambda f: pd.Timestamp(f.timestamp)):
        time = pd.Timestamp(fill.timestamp)
        book = books.get(fill.symbol)
        if book is None:
            mult = fill.multiplier
            if mult == 1.0 and multipliers:
                mult = multipliers.get(fill.symbol, 1.0)
            book = books[fill.symbol] = FifoLots(fill.symbol, mult)
        last_fill[fill.symbol] = (time, fill.fill_price)
        quote = quote_rates.get(fill.symbol) if quote_rates else None
        rate = quote.at(time, fill.fill_price) if quote is not None else 1.0
        rows += book.fill(fill.signed_quantity, fill.fill_price, time, fill.commission, rate)
    marks = dict(last_fill)
    marks.update(last_prices or {})
    for symbol, book in books.items():
        time, price = marks[symbol]
        quote = quote_rates.get(symbol) if quote_rates else None
        rows += book.marked(price, time, quote.at(time, price) if quote is not None else 1.0)
    return _frame(rows, bar_index)


def _frame(rows: list[dict[str, Any]], bar_index: pd.DatetimeIndex | None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c for c in TRADE_COLUMNS if c not in ("bars_held", "duration")])
    if frame.empty:
        frame = frame.astype(
            {
                "symbol": "str",
                "side": "str",
                "entry_price": "float64",
                "exit_price": "float64",
                "quantity": "float64",
                "pnl": "float64",
                "return": "float64",
                "commission": "float64",
                "is_open": "bool",
            }
        )
        frame["entry_time"] = pd.to_datetime(frame["entry_time"], utc=True)
        frame["exit_time"] = pd.to_datetime(frame["exit_time"], utc=True)
    frame["duration"] = frame["exit_time"] - frame["entry_time"]
    if bar_index is not None and len(bar_index):
        index = bar_index.as_unit("ns")
        # A fill belongs to the bar during which it happened: the first bar stamped at or after it.
        entry_bar = index.searchsorted(frame["entry_time"].astype(index.dtype), side="left")
        exit_bar = index.searchsorted(frame["exit_time"].astype(index.dtype), side="left")
        frame["bars_held"] = (exit_bar - entry_bar).astype("int64")
    else:
        frame["bars_held"] = np.nan
    frame = frame.sort_values(["exit_time", "entry_time"], kind="stable").reset_index(drop=True)
    return frame.loc[:, list(TRADE_COLUMNS)]
