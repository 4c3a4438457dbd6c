"""Keeping the backtest broker's positions marked for its buying-power check, at a cost per change.

Before each fill the broker must see every position it holds valued at the last closed bar: the check
for a trade while shorts are held adds up the other positions' market values. Re-marking every symbol
before every fill made a fill cost O(symbols), so a portfolio's run grew with the square of its size.
:class:`BrokerMarks` does the same marking incrementally: the first fill checked against a row marks the
positions held (once), and later fills against that row re-mark only the symbols whose mark a fill has
moved since (a fill marks its own position at its price). The broker then sees exactly what it saw when
everything was re-marked before each fill.

Two kinds of marks can wait:

* **The trading symbol's own** (``mark(row, trading=symbol)``), when its booking reads nothing of it — a
  base-currency stock while the account holds no future or forex (the margin rule values the whole
  account): the fill marks it at its price anyway, and a rejected trade marks it afterwards
  (:meth:`BrokerMarks.rejected`). A run on one such stock alone (``solo``) then marks nothing at all: it
  only remembers the row, for a rejection.
* **All of them** (:meth:`BrokerMarks.before_fill`), when the fill reads no mark at all: in an account of
  plain stocks that holds no short, a trade that leaves its position long or flat is checked against cash
  alone, and unless the strategy's ``on_fill`` may read the account, nothing else looks. The marks are
  owed; the next fill that reads marks (or :meth:`BrokerMarks.settle`, at the end of the run) pays them:
  marking at that fill's row is what the owed marks would have become by then. A long-only portfolio then
  marks nothing during its run.
"""

from __future__ import annotations

import numpy as np

from copilot_quant.backtest.broker import SimpleBroker
from copilot_quant.model.orders import Order, OrderSide

__all__ = ["BrokerMarks"]

#: From this many positions on, a row's prices are converted at once rather than one by one.
_ROW_AT_ONCE = 8
_BUY = OrderSide.BUY


class BrokerMarks:
    """The broker's positions in the run's symbols, marked at a row of ``marks`` on demand.

    Args:
        broker: the account (it may hold positions from an earlier run: they are marked too).
        marks: closes carried over missing bars, ``(bars, symbols)``.
        symbol_index: symbol -> column of ``marks``.
    """

    __slots__ = (
        "_broker",
        "_deferrable",
        "_held",
        "_last",
        "_marks",
        "_moved",
        "_owed",
        "_plain",
        "_row",
        "_shorts",
        "_solo",
        "_waiting",
    )

    def __init__(self, broker: SimpleBroker, marks: np.ndarray, symbol_index: dict[str, int]) -> None:
        self._broker = broker
        self._marks = marks
        #: symbol -> column, for every symbol the broker holds a position in
        self._held = {s: k for s, k in symbol_index.items() if broker.position_quantity(s)}
        self._row = -1  # the row the held positions are marked at (-1: none yet)
        self._moved: list[tuple[str, int]] = []  # positions a fill re-marked since
        self._plain: dict[str, bool] = {}  # symbol -> whether it is a base-currency stock (asked once)
        self._waiting: tuple[str, int] | None = None  # the trading symbol left unmarked by mark(row, trading)
        # the one symbol of a run on a single base-currency stock, without margin rules: its mark always waits
        (only,) = symbol_index if len(symbol_index) == 1 else (None,)
        plain = only is not None and broker.instrument(only) is None and not broker.margin_rules
        self._solo: str | None = only if plain else None
        held = broker.get_positions()
        #: symbols held short (the broker's check then reads the other positions' marks)
        self._shorts = {s for s, p in held.items() if p.quantity < 0}
        #: whether whole fills may owe their marks: every symbol (run or held) a plain stock, whose check
        #: reads no mark while the account is long (futures, forex: margin values every position)
        self._deferrable = not broker.margin_rules and all(
            broker.instrument(s) is None for s in (*symbol_index, *held)
        )
        self._owed = -1  # the row marks are owed at (-1: none)
        self._last: tuple[str, float] | None = None  # the fill booked since the last before_fill

    def before_fill(self, row: int, order: Order, quantity: float | None, observed: bool) -> None:
        """Before ``quantity`` of ``order`` (None: what is left) is booked against ``row``: mark what the
        broker's check (or, when ``observed``, the strategy's ``on_fill``) can read, or owe the marks when
        nothing can (see the module docstring). Then call :meth:`filled` or :meth:`rejected`."""
        self._last = None
        if self._solo is None and self._deferrable and not observed and not self._shorts:
            if order.side is _BUY:  # nothing is short: a purchase leaves the account long
                owe = True
            else:
                if quantity is None:
                    quantity = order.quantity - order.filled_quantity
                owe = self._broker.position_quantity(order.symbol) - quantity >= 0
            if owe:
                if row >= 0:
                    self._owed = row
                    self._waiting = None
                    if row != self._row:  # paying will re-mark every held position: forget what moved
                        self._row = -1
                        self._moved.clear()
                return
        self.mark(row, order.symbol)

    def settle(self) -> None:
        """Pay owed marks: the broker is left as if every fill had been marked (call after the last fill)."""
        if self._owed < 0:
            return
        self.mark(self._owed)
        last = self._last
        if last is not None:  # the last fill marked its own position at its price after the marks
            self._broker.mark(*last)

    def mark(self, row: int, trading: str | None = None) -> None:
        """Make every held position marked at ``row`` (a negative row, before the first close: no-op).

        ``trading``: the symbol about to be booked. Its own mark is left for the booking (see the module
        docstring) when that reads nothing of it; the caller then calls :meth:`filled` or :meth:`rejected`.
        """
        if row < 0:
            return
        solo = self._solo
        if solo is not None:  # the only symbol that can be held: marked right here, unless it waits
            self._row = row
            if trading == solo:
                self._waiting = (solo, 0)
            elif self._broker.position_quantity(solo):
                self._waiting = None
                self._broker.mark(solo, self._marks.item(row, 0))
            return
        self._owed = -1
        held = self._held
        if row != self._row:
            self._row = row
            if not held:  # nothing to mark (and nothing moved that is still held)
                self._moved.clear()
                return
            skip = self._skippable(trading, held)
            mark, marks = self._broker.mark, self._marks
            if len(held) > _ROW_AT_ONCE:
                prices = marks[row].tolist()  # one conversion for the row, not one per symbol
                for symbol, k in held.items():
                    if symbol != skip:
                        mark(symbol, prices[k])  # no-op where the symbol has no price yet
            else:
                for symbol, k in held.items():
                    if symbol != skip:
                        mark(symbol, marks.item(row, k))
        else:
            moved = self._moved
            if not moved:
                return
            skip = self._skippable(trading, held)
            mark, marks = self._broker.mark, self._marks
            for symbol, k in moved:
                if symbol != skip:
                    mark(symbol, marks.item(row, k))
        self._moved.clear()

    def _skippable(self, trading: str | None, held: dict[str, int]) -> str | None:
        """``trading`` when its mark can wait for its booking (recorded in ``_waiting``), else None."""
        self._waiting = None
        if trading is None or trading not in held:
            return None
        plain = self._plain.get(trading)
        if plain is None:
            plain = self._plain[trading] = self._broker.instrument(trading) is None
        if not plain or self._broker.margin_rules:
            return None
        self._waiting = (trading, held[trading])
        return trading

    @property
    def solo(self) -> bool:
        """A run on one base-currency stock alone, without margin rules: a fill needs no :meth:`before_fill`
        or :meth:`filled` (its symbol's mark always waits for the fill, which marks it); after a refused
        trade, :meth:`rejected` with the trade's row marks it."""
        return self._solo is not None

    def rejected(self, row: int | None = None) -> None:
        """The trade :meth:`mark` was told of was refused: mark its symbol now, as if it had not waited.
        In a :attr:`solo` run the trade's ``row`` may be given instead (no :meth:`before_fill` was called)."""
        if row is not None and self._solo is not None:
            self.mark(row)
            return
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            symbol, k = waiting
            if self._broker.position_quantity(symbol):  # only held positions are marked
                self._broker.mark(symbol, self._marks.item(self._row, k))

    def filled(self, symbol: str, k: int, price: float) -> None:
        """A fill in ``symbol`` (column ``k``) was booked at ``price``: its position changed and is marked
        at the fill."""
        self._waiting = None
        if symbol == self._solo:
            return  # a solo run keeps no record: mark() marks its symbol directly
        if self._row >= 0:  # else the next marking re-marks every held position anyway
            self._moved.append((symbol, k))
        self._last = (symbol, price)
        quantity = self._broker.position_quantity(symbol)
        if quantity:
            self._held[symbol] = k
        else:
            self._held.pop(symbol, None)
        if quantity < 0:
            self._shorts.add(symbol)
        elif self._shorts:
            self._shorts.discard(symbol)
