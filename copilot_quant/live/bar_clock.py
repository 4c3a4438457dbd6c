"""The bar clock: which streamed bars are complete *and* final, by the broker's clock, never the wall clock.

A bar is new once it is complete (its close time has passed on IB's clock) and final (IB will not rewrite
it): the strategy then sees it, and never a later one. Plain int64 nanoseconds on the hot path: this runs
between a bar's arrival and the strategy's orders, where every pandas call costs tens of microseconds (the
CPU is cold between bars). What can be known before the bar — the frame of the bars held, the forming
one included, and the pandas Timestamp of the forming bar's stamp — is built after the previous bar's
orders went out (:meth:`BarClock.prepare`), and the exchange's date is the standard library's.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.data.dates import EXCHANGE_TZ
from copilot_quant.model.bars import combine_symbols

__all__ = ["BAR_SETTLE_NS", "BarClock", "BarSource"]

#: The exchange's time zone, for its date (see BarClock.trading_day).
_EXCHANGE_ZONE = ZoneInfo(EXCHANGE_TZ)

#: How long past its close a bar waits when only the clock says it closed: IB rewrites a forming bar about
#: every 5 s, so its final values can lag its close by that much (trades the stream has caught up with
#: prove completion at once and need no wait).
BAR_SETTLE_NS = 6_000_000_000


class BarSource(Protocol):
    """What the clock reads bars from: the live data feed, or :class:`~copilot_quant.live.continuous.
    SplicedBars` around it when the run has continuous futures."""

    def completed_stamps(self, symbol: str, now: int, after: int | None = None) -> np.ndarray: ...

    def completed_bars(self, symbol: str, now: pd.Timestamp | int | None = None) -> pd.DataFrame: ...

    def last_bar_ns(self, symbol: str) -> int | None: ...

    def synced_trade_ns(self, symbols: list[str]) -> int | None: ...

    def server_time(self) -> pd.Timestamp: ...

    def prepare_bars(self, symbols: list[str], delivered_ns: int | None = None) -> int | None: ...

    def bars_prepared(self, symbols: list[str]) -> bool: ...


class BarClock:
    """Knows the broker's clock (a lower bound) and the last bar delivered; finds the next complete bars."""

    __slots__ = (
        "_asked_for",
        "_asked_ns",
        "_feed",
        "_plain",
        "_stamp",
        "_traded_ns",
        "last_bar",
        "recheck_at",
        "server_ns",
        "symbols",
    )

    def __init__(self, feed: LiveDataFeedAdapter) -> None:
        self._plain = feed
        self._feed: BarSource = feed
        self.symbols: list[str] = []
        #: The last bar delivered to the strategy (UTC), or None before the first.
        self.last_bar: pd.Timestamp | None = None
        #: The broker's clock as last known (int64 ns), or None before the first check.
        self.server_ns: int | None = None
        self._asked_for: int | None = None
        self._asked_ns: int | None = None  # the broker's clock by its last reqCurrentTime answer
        self._traded_ns: int | None = None  # the newest trade every bar stream has caught up with
        #: Monotonic time of a pending settle re-check (see :meth:`completed`), or None.
        self.recheck_at: float | None = None
        self._stamp: tuple[int, pd.Timestamp, datetime | None] | None = None  # the last stamp() built

    def start(self, symbols: list[str], source: BarSource | None = None) -> None:
        """Begin a run on ``symbols``: only bars completed from now on are new (history is context).

        ``source``: where the bars are read (default: the data feed the clock was made with)."""
        self._feed = source if source is not None else self._plain
        self.symbols = list(symbols)
        self.server_ns = self._asked_ns = self._traded_ns = self._asked_for = None
        self.recheck_at = None
        self.last_bar = None
        history = self.new_bar_stamps(self.now_ns(fresh=True))
        self.last_bar = pd.Timestamp(int(history[-1]), tz="UTC") if len(history) else None

    def completed(self, now: int) -> np.ndarray:
        """Stamps of the bars complete and final at ``now`` (from :meth:`now_ns`) not delivered yet.

        A bar closed by the clock but not yet settled schedules a re-check (:attr:`recheck_at`).
        """
        cutoff = self.completion_cutoff(now)
        new = self.new_bar_stamps(cutoff)
        if cutoff < now and len(self.new_bar_stamps(now)) > len(new):
            # Closed by the clock, not yet settled: ask again once IB's last update must have come.
            self.recheck_at = time.monotonic() + BAR_SETTLE_NS / 1e9
        return new

    def new_bar_stamps(self, now: int) -> np.ndarray:
        """Stamps (int64 ns, ascending) of the bars completed since the last one delivered, up to the
        newest stamp every symbol has reached (with several symbols, a bar waits for all of them)."""
        after = -1 if self.last_bar is None else self.last_bar.value
        if len(self.symbols) == 1:  # the bars after the last one delivered, found by the store itself
            return self._feed.completed_stamps(self.symbols[0], now, after)
        stamps = [self._feed.completed_stamps(s, now) for s in self.symbols]
        if not stamps or any(len(a) == 0 for a in stamps):
            return np.empty(0, dtype="int64")
        common_end = min(int(a[-1]) for a in stamps)
        merged = np.unique(np.concatenate(stamps))
        lo = int(merged.searchsorted(after, side="right"))
        hi = int(merged.searchsorted(common_end, side="right"))
        return merged[lo:hi]

    def window(self, end_ns: int) -> pd.DataFrame:
        """The strategy's data up to and including the bar stamped ``end_ns``, in the backtest's shape."""
        symbols = self.symbols
        if len(symbols) == 1:
            return self._feed.completed_bars(symbols[0], end_ns)
        return combine_symbols({s: self._feed.completed_bars(s, end_ns) for s in symbols})

    def prepare(self) -> None:
        """Build now what the next bar's delivery would build (off the path from a bar to its orders): each
        symbol's frame of the bars held and of the bar expected next, and that bar's Timestamp."""
        expected = self._feed.prepare_bars(
            self.symbols, None if self.last_bar is None else self.last_bar.value
        )
        if expected is not None:
            self.stamp_datetime(expected)

    def prepared(self) -> bool:
        """Whether :meth:`prepare` has nothing to build (cheap: no pandas)."""
        return self._feed.bars_prepared(self.symbols)

    def stamp(self, ns: int) -> pd.Timestamp:
        """The bar stamp ``ns`` as a UTC Timestamp (the last one asked is kept: the same object again)."""
        cached = self._stamp
        if cached is not None and cached[0] == ns:
            return cached[1]
        value = pd.Timestamp(ns, tz="UTC")
        self._stamp = (ns, value, None)
        return value

    def stamp_datetime(self, ns: int) -> datetime:
        """:meth:`stamp` as a ``datetime`` (what an order's ``timestamp`` holds), kept with it."""
        value = self.stamp(ns)
        cached = self._stamp
        assert cached is not None
        moment = cached[2]
        if moment is None:
            moment = value.to_pydatetime()
            self._stamp = (ns, value, moment)
        return moment

    def now(self, *, fresh: bool = False) -> pd.Timestamp:
        """:meth:`now_ns` as a UTC Timestamp."""
        return pd.Timestamp(self.now_ns(fresh=fresh), tz="UTC")

    def now_ns(self, *, fresh: bool = False) -> int:
        """What the engine knows of the broker's clock (int64 ns): a lower bound, asked for only when needed.

        Two sources, both never ahead of IB's clock (so no forming bar is ever taken for a closed one):
        the last ``reqCurrentTime`` answer and the newest trade time IB stamped on a tick (tick 45; a
        trade at 16:00:00 proves the 16:00 bar closed) that every symbol's bar stream had caught up with
        when its latest update arrived (so the bar's streamed values are final, not one update behind,
        and a week's bar has its Friday). Bars stamped at or before that bound are complete
        whatever the time is now, so the round trip (≈1 ms, counted against IB's message rate) is skipped
        whenever the trades already prove a new bar closed; it is made when a streamed bar is newer than
        the bound (once per forming bar), on the ``update_interval`` timer, and at start.
        """
        known, newest = self._known()
        if fresh or known is None or self._unseen(known, newest):
            asked = self._feed.server_time().value
            self._asked_ns = asked if self._asked_ns is None else max(asked, self._asked_ns)
            known = asked if known is None else max(asked, known)
            self.server_ns, self._asked_for = known, newest
        return known

    def known_now_ns(self) -> int | None:
        """:meth:`now_ns` without asking IB: None when it would ask (a bar newer than the broker's clock
        as known, or no clock yet). For the IB loop thread, which must not wait for IB's answer."""
        known, newest = self._known()
        if known is None or self._unseen(known, newest):
            return None
        return known

    def _newest(self) -> int | None:
        """The newest streamed bar's stamp over every symbol (complete or forming), or None."""
        feed = self._feed
        symbols = self.symbols
        if len(symbols) == 1:
            return feed.last_bar_ns(symbols[0])
        return max((t for t in (feed.last_bar_ns(s) for s in symbols) if t is not None), default=None)

    def _known(self) -> tuple[int | None, int | None]:
        """The broker's clock as the trades prove it (updated), and the newest streamed bar's stamp."""
        newest = self._newest()
        known = self.server_ns
        traded = self._feed.synced_trade_ns(self.symbols) if known is not None else None
        if traded is not None:
            self._traded_ns = traded
            if known is not None and traded > known:
                known = self.server_ns = traded
        return known, newest

    def _unseen(self, known: int | None, newest: int | None) -> bool:
        # A bar still forming (stamp in the future) is re-checked when a newer bar arrives or on the timer,
        # not on every update of that same bar.
        return newest is not None and (known is None or newest > known) and newest != self._asked_for

    def completion_cutoff(self, now: int) -> int:
        """Bars stamped at or before this are complete *and* final (``now`` from :meth:`now_ns`).

        A trade the streams have caught up with proves both. The clock alone (``reqCurrentTime``: no trade
        since, e.g. an illiquid symbol or delayed data) proves only that the bar closed: IB rewrites a
        forming bar about every 5 s, so its last update may still be on the way; such a bar waits until
        the clock is ``BAR_SETTLE_NS`` past its close (:meth:`completed` schedules the re-check).
        """
        traded = -1 if self._traded_ns is None else self._traded_ns
        if traded >= now or self._asked_ns is None:
            return now
        return max(traded, self._asked_ns - BAR_SETTLE_NS)

    @property
    def server_now(self) -> pd.Timestamp | None:
        """The broker's clock as last known, or ``None`` before the first check."""
        return None if self.server_ns is None else pd.Timestamp(self.server_ns, tz="UTC")

    def trading_day(self) -> date:
        """The exchange's date now (New York for the NYSE), by the broker's clock when known: a session
        never spans two of them, while a UTC day splits the evening off (8 pm New York is already tomorrow).

        Read on every account read, so no pandas: the standard library's time zone arithmetic (C code).
        """
        ns = self.server_ns if self.server_ns is not None else time.time_ns()
        return datetime.fromtimestamp(ns // 1_000_000_000, _EXCHANGE_ZONE).date()
