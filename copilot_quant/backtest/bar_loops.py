"""The backtest's bar loops: each bar, match the working orders, call the strategies, submit their orders.

Two loops, one order of events (see :mod:`copilot_quant.backtest.engine` for the timing model):

* :meth:`BarLoops.general` — any strategies: a pandas history window for a ``Strategy``, plain values for
  a ``FastStrategy``, several strategies called in the order they were added;
* :meth:`BarLoops.fast` — one ``FastStrategy``: ``map`` calls ``on_bar`` straight from the value columns
  (no pandas, no tuple per bar; no timestamp either when the strategy sets ``bar_timestamps = False``).
  Once ``on_bar`` has returned for bar *i*, the body submits its orders and matches bar *i+1*, before
  ``map`` calls ``on_bar`` for it: the same order of events, so an order placed at bar *i* fills at bar
  *i+1*'s open at the earliest. While no order is working, ``filter`` skips the bars whose ``on_bar``
  returned nothing without running any Python between them. Nothing counts the bars in Python: the bar
  ``on_bar`` is called for is read, when needed, from how far ``map`` has read the values (a
  :class:`~copilot_quant.backtest.market.BarCursor` on the first of them), by the body and by the run's clock.

The loops own no account state: they move the :class:`RunClock` (what the strategies' account views and
the booking read) and hand orders and executions to the engine's callables.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, Protocol

import pandas as pd

from copilot_quant.backtest.indicators import bar_columns, bar_values, value_count
from copilot_quant.backtest.market import EPOCH, BarCursor, MarketData
from copilot_quant.backtest.order_book import Booker, OrderBook
from copilot_quant.backtest.strategy import FastStrategy, Strategy, takes_timestamp

__all__ = ["BarLoops", "ProgressCallback", "RunClock"]

#: ``progress(bars_done, bars_total)``, called about a hundred times per run and once at the end.
ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class RunClock:
    """Where a run stands: the current bar (-1 before the first), its time, and whether its orders are
    being matched (then only the bars before it have closed).

    The bar is ``fixed``, or — while the fast loop lets ``map`` call ``on_bar`` — read from the ``live``
    cursor of the values ``map`` reads (:class:`~copilot_quant.backtest.market.BarCursor`): nothing is
    written per bar, and a strategy's account view still reads the bar it is called for.
    """

    fixed: int = -1
    now: datetime | None = None
    executing: bool = False
    #: The cursor of the fast loop's ``on_bar`` values while ``map`` drives it: the bar is its position.
    live: BarCursor | None = None

    @property
    def bar(self) -> int:
        live = self.live
        return self.fixed if live is None else live.position()

    @bar.setter
    def bar(self, value: int) -> None:
        self.fixed = value
        self.live = None


class Submit(Protocol):
    def __call__(self, owner: int, orders: Any, bar: int, ts: datetime, /) -> None: ...


class RecordError(Protocol):
    def __call__(self, owner: int, exc: Exception, hook: str, ts: datetime | None, /) -> None: ...


class BarLoops:
    """Drives one run's bars through the order book and the strategies.

    Args:
        clock: the run's clock, moved bar by bar.
        market: the run's bars.
        book: the working orders.
        submit: ``submit(owner, orders, bar, ts)``, what a strategy returned at bar ``bar``.
        book_fill: books one execution (the order book calls it).
        record_error: ``record_error(owner, exc, hook, ts)``, a strategy hook that raised.
        indicator_frame: a ``FastStrategy``'s indicators over the whole history (causality checked).
        before_call: ``before_call(owner, bar, ts)``, run before strategy ``owner`` is called at bar ``bar``
            (a futures run's expiries and rolls); only the general loop takes it.
    """

    def __init__(  # noqa: PLR0917 - the run's collaborators, each named
        self,
        clock: RunClock,
        market: MarketData,
        book: OrderBook,
        submit: Submit,
        book_fill: Booker,
        record_error: RecordError,
        indicator_frame: Callable[[FastStrategy], pd.DataFrame],
        before_call: Callable[[int, int, datetime], None] | None = None,
    ) -> None:
        self._clock = clock
        self._market = market
        self._book = book
        self._submit = submit
        self._book_fill = book_fill
        self._record_error = record_error
        self._indicator_frame = indicator_frame
        self._before_call = before_call

    def general(self, strategies: list[Strategy], progress: ProgressCallback | None) -> None:
        """The general loop: pandas history views for ``Strategy``, plain values for ``FastStrategy``."""
        market, clock = self._market, self._clock
        callers = [self._caller(k, s) for k, s in enumerate(strategies)]
        book, submit, book_fill = self._book, self._submit, self._book_fill
        execute_bar = book.bar_executor()
        opens, highs, lows, closes = market.opens, market.highs, market.lows, market.closes
        session_end = market.session_end
        n = len(market)
        step = max(n // 100, 1)
        for i, ts in enumerate(market.stamps()):
            clock.fixed, clock.now = i, ts
            if book:
                clock.executing = True
                execute_bar(i, opens, highs, lows, closes, bool(session_end[i]), book_fill)
                clock.executing = False
            for k, call in enumerate(callers):
                try:
                    orders = call(i, ts)
                except Exception as exc:
                    self._record_error(k, exc, "on_data", ts)
                    continue
                if orders:
                    submit(k, orders, i, ts)
            if progress is not None and (i + 1) % step == 0:
                progress(i + 1, n)
        if progress is not None:
            progress(n, n)

    def _caller(self, k: int, strategy: Strategy) -> Callable[[int, datetime], Any]:
        call: Callable[[int, datetime], Any]
        if isinstance(strategy, FastStrategy):
            frame = self._indicator_frame(strategy)
            rows = list(bar_values(frame))
            on_bar = strategy.on_bar
            if takes_timestamp(strategy, len(rows[0]) if rows else None):
                call = lambda i, ts: on_bar(ts, *rows[i])  # noqa: E731 - the per-bar call, kept tiny
            else:
                call = lambda i, ts: on_bar(*rows[i])  # noqa: E731
        else:
            on_data, history = strategy.on_data, self._market.history
            call = lambda i, ts: on_data(ts, history(i))  # noqa: E731
        before = self._before_call
        if before is None:
            return call

        def before_then_call(i: int, ts: datetime) -> Any:
            before(k, i, ts)
            return call(i, ts)

        return before_then_call

    def fast(self, strategy: FastStrategy, progress: ProgressCallback | None) -> None:
        """One FastStrategy: a tight loop over plain floats (see the module docstring); no ``before_call``.

        ``map`` calls ``on_bar`` in C; the bar it is called for is read from the values' cursor, never
        counted in Python. While no order is working (and no ``progress`` is asked for), ``filter`` hands
        the body only the results of ``on_bar`` that hold orders: it submits them, then matches the next
        bar at its open — before ``map`` calls ``on_bar`` for that bar, so orders placed at bar *i* fill at
        bar *i+1* and never earlier. While orders work, the body runs for every bar and matches each.
        """
        market, clock = self._market, self._clock
        # plain floats (and per-symbol rows of them), converted lazily in chunks: the loop never touches
        # numpy or pandas; the cursor follows the first iterator map reads
        cursor = BarCursor()
        frame = self._indicator_frame(strategy)
        if takes_timestamp(strategy, value_count(frame)):
            calls: Iterator[Any] = map(strategy.on_bar, market.iter_stamps(cursor), *bar_columns(frame))
        else:  # no datetime is built per bar (FastStrategy.bar_timestamps)
            calls = map(strategy.on_bar, *bar_columns(frame, cursor))
        book, submit, book_fill, stamp = self._book, self._submit, self._book_fill, market.stamp
        offsets = (
            market.offsets()
        )  # a bar's time is EPOCH + offsets.item(bar): market.stamp, without its call
        pending = book.pending
        execute_bar = book.bar_executor()
        opens, highs, lows, closes = market.opens, market.highs, market.lows, market.closes
        session_end = market.session_end
        n = len(market)
        step = max(n // 100, 1)
        next_report = step if progress is not None else n + 1  # compared with the bars done
        every_bar = progress is not None  # the body reports progress: it must see every bar
        position = cursor.position
        results: Iterator[Any] = calls
        bar = done = -1  # the last bar handed to the body; the last bar the body finished with
        with _quiet_gc():
            while True:
                clock.live = cursor
                placed = filter(None, results)  # the results of on_bar that hold orders
                try:
                    while True:
                        attended = every_bar or bool(pending)
                        for orders in results if attended else placed:  # on_bar(bar) has just returned
                            bar = cursor.end - cursor.items.__length_hint__() - 1  # cursor.position()
                            if orders:
                                clock.fixed, clock.live = (
                                    bar,
                                    None,
                                )  # clock.bar = bar, without the setter's call
                                clock.now = ts = EPOCH + offsets.item(bar)
                                submit(0, orders, bar, ts)
                            following = bar + 1
                            if pending and following < n:
                                clock.fixed, clock.live = following, None
                                clock.now = EPOCH + offsets.item(following)
                                clock.executing = True
                                execute_bar(
                                    following,
                                    opens,
                                    highs,
                                    lows,
                                    closes,
                                    session_end.item(following),
                                    book_fill,
                                )
                                clock.executing = False
                            if following == next_report:
                                progress(following, n)  # type: ignore[misc]  # next_report stays beyond n without a callback
                                next_report += step
                            clock.live = cursor
                            done = bar
                            if attended is not (every_bar or bool(pending)):
                                break  # orders started or stopped working: change how bars are handed over
                        else:
                            break  # every bar is done
                    break
                except Exception as exc:
                    if bar != done or not _from_python(exc):
                        # the body failed (the engine, a progress callback), or the loop's C machinery did
                        # (e.g. ``filter`` testing a result whose truth value is undefined, a numpy array,
                        # as the body's ``if orders`` would): not on_bar, whose frame an error would pass
                        raise
                    failed = position()  # the bar whose on_bar raised (map has read its values, no more)
                    clock.now = ts = stamp(failed)
                    self._record_error(0, exc, "on_bar", ts)
                    # bar ``failed`` goes on as if on_bar returned nothing; map goes on with the next bar
                    results = chain((None,), calls)
                    bar = done = failed - 1
        clock.bar = n - 1
        clock.now = market.index[-1].to_pydatetime()
        if progress is not None and n % step:
            progress(n, n)


def _from_python(exc: BaseException) -> bool:
    """Whether ``exc`` came out of a Python frame called from the loop's line (``on_bar``), rather than
    from the C iterators themselves (then the failed item was already consumed: it is no on_bar error)."""
    tb = exc.__traceback__
    return tb is not None and tb.tb_next is not None


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """The garbage collector's settings for the fast loop, restored afterwards.

    * Every object that exists now is moved out of the collector's sight (``gc.freeze``): the loop's
      inputs (a million timestamps and indicator values) live for the whole run, and each full collection
      would walk them again for tens of milliseconds. Skipped if someone else froze objects already
      (unfreezing would undo their freeze).
    * The youngest generation is collected every :data:`_YOUNG_THRESHOLD` allocations rather than 700:
      each trade leaves an order, a fill and their records alive, and collecting that often moves them up
      the generations only to walk them again — about a tenth of a minute-bar run. Garbage is still
      collected as the loop goes, a few thousand objects at a time.
    """
    frozen = not gc.get_freeze_count()
    if frozen:
        gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], _YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if frozen:
            gc.unfreeze()


#: Allocations between two collections of the youngest generation while the fast loop runs (Python: 700).
_YOUNG_THRESHOLD = 10_000
