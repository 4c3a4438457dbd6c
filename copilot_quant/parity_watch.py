"""What each strategy instance of a parity run did at its boundary: the bars it was handed, what it raised.

:func:`watched` wraps a strategy class so that both runs (backtest and live) count bars and record the
strategy's exceptions in one way (:class:`Watch`); :func:`after_first_bar` also skips the range's first
bar, which is history in the live run. One :class:`Watch` per strategy instance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import pandas as pd

from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import FastStrategy, Strategy
from copilot_quant.parity_report import StrategyFailure

__all__ = ["Watch", "after_first_bar", "bar_of", "utc", "watched"]


def utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def bar_of(instant: datetime, stamps: pd.DatetimeIndex) -> pd.Timestamp:
    """The stamp (close) of the bar whose price path contains ``instant``: the first stamp >= it."""
    ts = pd.Timestamp(instant)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    i = int(stamps.searchsorted(ts, side="left"))
    return stamps[min(i, len(stamps) - 1)]


class Watch:
    """What one run's strategy instance did at its boundary: the bars it was handed and what it raised.

    Filled by the class :func:`_watched` makes, on the thread that calls the strategy (the engine's one
    worker thread, live). ``on_bar`` called from ``on_data`` (a ``FastStrategy`` live) is the same bar:
    counted once, and its exception recorded once. Used as ``with watch.hook(...)``, so the wrapper adds
    one frame to a strategy's traceback, not more.
    """

    def __init__(self, stamps: pd.DatetimeIndex | None = None) -> None:
        self.stamps = stamps
        #: Skip the next bar (the range's first, history in the live run): set by :func:`_after_first_bar`.
        self.skip_first_bar = False
        self.bars = 0
        self.failures: list[StrategyFailure] = []
        #: Every order the strategy returned, in order: what is its own in the run (by identity).
        self.orders: list[Order] = []
        self._active: list[tuple[str, pd.Timestamp | None]] = []
        self._next: tuple[str, pd.Timestamp | None] = ("", None)
        self._last_bar: pd.Timestamp | None = None

    def skips(self) -> bool:
        """Whether to skip this bar hook call (the first bar, when :attr:`skip_first_bar`)."""
        if self._active or not self.skip_first_bar:
            return False
        self.skip_first_bar = False
        return True

    def bar_hook(self, hook: str, timestamp: datetime) -> Watch:
        """The context of an ``on_data``/``on_bar`` call: counts the bar (once) and records an exception."""
        bar = utc(timestamp)
        if not self._active:
            self.bars += 1
            self._last_bar = bar
        return self.hook(hook, bar)

    def hook(self, hook: str, bar: pd.Timestamp | None) -> Watch:
        """The context of any other hook call (``bar`` ``None``: outside any bar)."""
        self._next = (hook, bar)
        return self

    def placed(self, orders: Any) -> Any:
        """Note the orders a bar hook returned (as they are: the engine checks what they are) and return them."""
        if isinstance(orders, list | tuple):
            self.orders.extend(o for o in orders if isinstance(o, Order))
        return orders

    def owns(self, order: Order) -> bool:
        return any(o is order for o in self.orders)

    def bar_of(self, fill: Fill) -> pd.Timestamp | None:
        if fill.timestamp is None or self.stamps is None or len(self.stamps) == 0:
            return self._last_bar
        return bar_of(fill.timestamp, self.stamps)

    def __enter__(self) -> None:
        self._active.append(self._next)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        hook, bar = self._active.pop()
        if isinstance(exc, Exception) and not self._active:  # the engine records it and carries on
            self.failures.append(StrategyFailure(bar, hook, f"{type(exc).__name__}: {exc}"))


def watched(strategy_class: type[Strategy], watch: Watch) -> type[Strategy]:
    """``strategy_class`` with its hooks reporting to ``watch`` (exceptions still reach the engine)."""

    with_time = getattr(strategy_class, "bar_timestamps", True) is not False

    class Watched(strategy_class):  # type: ignore[valid-type,misc]
        def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
            if watch.skips():
                return None
            with watch.bar_hook("on_data", timestamp):
                return cast("list[Order] | None", watch.placed(super().on_data(timestamp, data)))

        if issubclass(strategy_class, FastStrategy):  # the backtest engine calls on_bar, not on_data
            # The watch needs each bar's time: the engines pass it to this wrapper even when the strategy
            # asked for its values only (bar_timestamps = False), and the wrapper leaves it out for it.
            bar_timestamps = True

            def on_bar(self, timestamp: datetime, *values: float) -> list[Order] | None:
                if watch.skips():
                    return None
                with watch.bar_hook("on_bar", timestamp):
                    placed = super().on_bar(timestamp, *values) if with_time else super().on_bar(*values)
                    return cast("list[Order] | None", watch.placed(placed))

        def on_fill(self, fill: Fill) -> None:
            with watch.hook("on_fill", watch.bar_of(fill)):
                super().on_fill(fill)

        def on_stop(self) -> None:
            with watch.hook("on_stop", None):
                super().on_stop()

        def finalize(self) -> None:
            with watch.hook("finalize", None):
                super().finalize()

    Watched.__name__ = Watched.__qualname__ = strategy_class.__name__
    return Watched


def after_first_bar(strategy_class: type[Strategy], watch: Watch | None = None) -> type[Strategy]:
    """``strategy_class`` whose ``on_data`` (``on_bar``) skips the range's first bar, which is history live.

    Live, the engine needs at least one completed bar before it starts (IB returns error 162 for an empty
    history request), and it hands the strategy only bars completed after ``start()``. The backtest gets
    the same treatment so both runs call ``on_data`` on exactly the same bars with the same windows. Make
    one instance per class: the skipping is kept in ``watch`` (a fresh one when not given).
    """
    watch = watch if watch is not None else Watch()
    watch.skip_first_bar = True
    return watched(strategy_class, watch)
