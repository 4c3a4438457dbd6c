"""IB keepUpToDate bar streams: history plus every bar as IB publishes it, held in a store per stream.

Threading: ib_async's bar updates arrive on the IB loop thread, which only *queues* the changed rows
(cheap, under a lock) and sets :attr:`BarStreams.bars_changed`; readers (the engine's worker) merge them
into the :class:`~copilot_quant.brokers.live_bars.LiveBars` store on their own thread. Each stream's
liveness is watched apart from quotes (:mod:`copilot_quant.brokers.stream_health`): a stream silent while
its symbol's ticks keep coming is restarted and reported on :attr:`BarStreams.stalled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from eventkit import Event
from ib_async import BarDataList, Contract, RequestError

from copilot_quant.brokers.ib_contracts import calendar_of
from copilot_quant.brokers.ib_mapping import IB_BAR_SIZE
from copilot_quant.brokers.live_bars import LiveBars
from copilot_quant.brokers.stream_health import BarStreamWatch
from copilot_quant.data.calendars import is_market_open
from copilot_quant.errors import BrokerError, DataError

if TYPE_CHECKING:
    from copilot_quant.brokers.connection import IBConnection

__all__ = ["BarStreams", "stream_duration"]

log = logging.getLogger(__name__)

RequestBars = Callable[..., Awaitable[tuple[BarDataList, str]]]

#: A restart asks for up to this many days more than the lookback, in turn (see stream_duration).
_RESTART_SPREAD = 4


def stream_duration(lookback_days: int, restarts: int) -> str:
    """IB ``durationStr`` of a stream's ``restarts``-th (re)start: the lookback plus 0, 1, 2, 3 days in turn.

    A restart never repeats the previous request, which IB's pacing rules would hold back for 15 s (the
    overlap is merged away), and a week of nightly restarts never asks for a week more history.
    """
    days = int(lookback_days) + restarts % _RESTART_SPREAD
    return f"{days} D" if days <= 365 else f"{-(-days // 365)} Y"


class BarStreams:
    """The bar streams of one data adapter.

    Args:
        connection: the IB connection the streams run on.
        contract: ``await contract(symbol)`` → the qualified contract.
        request_bars: ``await request_bars(contract, end, duration, bar_size, keep_up_to_date=True)`` →
            ``(bars, ib_said)`` (the adapter's paced request).
        trade_ns: the newest trade time IB reported for a symbol (int64 ns) or None (see :meth:`synced_ns`).
        closed: whether the owner was closed (the watchdog ends then).
        store_size: bars kept per stream.
        stale_after: seconds a stream may stay silent while ticks flow (None: not watched).
    """

    def __init__(
        self,
        connection: IBConnection,
        *,
        contract: Callable[[str], Awaitable[Contract]],
        request_bars: RequestBars,
        trade_ns: Callable[[str], int | None],
        closed: Callable[[], bool],
        store_size: int,
        stale_after: float | None,
    ) -> None:
        self._conn = connection
        self._contract = contract
        self._request_bars = request_bars
        self._trade_ns = trade_ns
        self._closed = closed
        self._store_size = store_size
        self.spec: dict[str, tuple[str, int]] = {}  # symbol -> (interval, lookback days)
        self._streams: dict[str, BarDataList] = {}
        self._restarts: dict[str, int] = {}
        self._live: dict[tuple[str, str], LiveBars] = {}
        # Streamed bars not yet merged into ``_live``, oldest first. The loop thread only appends here
        # (cheap, under ``_pending_lock``); readers merge them on their own thread under ``_flush_lock``,
        # which also keeps merges in arrival order when two threads read at once.
        self._pending: dict[tuple[str, str], list[Any]] = {}
        self._pending_lock = threading.Lock()
        #: Per symbol: the newest trade time seen when its latest bar update arrived (see synced_ns),
        #: queued with the rows and published once they are merged into the store.
        self._pending_traded: dict[str, int] = {}
        self._synced: dict[str, int] = {}
        self._flush_lock = threading.Lock()
        #: Set (on the loop thread) whenever a streamed bar changed or was added; the engine waits on it.
        self.bars_changed = threading.Event()
        #: Called instead (on the loop thread, after the rows are queued) for a live update, when set: the
        #: engine's inline dispatch (:mod:`copilot_quant.live.inline`), which sets the event if it cannot.
        self.listener: Callable[[], None] | None = None
        self._watch = BarStreamWatch(stale_after) if stale_after else None
        self._watch_task: asyncio.Task[None] | None = None
        #: ``(symbol, silent_seconds, times_stalled)`` when a dead stream was found and restarted.
        self.stalled = Event("bar_stream_stalled")

    # ------------------------------------------------------------------ starting (loop thread)
    def start_watch(self) -> None:
        """Start the liveness watchdog on the loop (once; no-op when not watched)."""
        if self._watch is not None and (self._watch_task is None or self._watch_task.done()):
            self._watch_task = asyncio.get_running_loop().create_task(self._watch_streams())

    async def start(self, symbol: str) -> None:
        """(Re)start ``symbol``'s stream per :attr:`spec`: backfill plus live updates."""
        interval, days = self.spec[symbol]
        restarts = self._restarts.get(symbol, -1) + 1
        self._restarts[symbol] = restarts
        contract = await self._contract(symbol)
        ib = self._conn.ib
        old = self._streams.pop(symbol, None)
        if old is not None and ib.isConnected() and getattr(old, "reqId", None) is not None:
            # A request that failed (e.g. 162, no data) has no reqId and nothing to cancel.
            ib.cancelHistoricalData(old)
        duration = stream_duration(days, restarts)
        bars, ib_said = await self._request_bars(
            contract, "", duration, IB_BAR_SIZE[interval], keep_up_to_date=True
        )
        if ib_said:
            log.warning("no %s history for the %s bar stream: %s", interval, symbol, ib_said)
        self._streams[symbol] = bars
        if self._watch is not None:
            self._watch.bar(symbol, time.monotonic())
        self._absorb(symbol, bars, full=True)

    def forget(self, symbol: str) -> None:
        """``symbol``'s stream could not start: drop its spec."""
        self.spec.pop(symbol, None)

    # ------------------------------------------------------------------ IB events (loop thread)
    def on_bar_update(self, bars: BarDataList, has_new_bar: bool) -> None:
        for symbol, stream in list(self._streams.items()):  # stop() may clear it meanwhile
            if stream is bars:
                if self._watch is not None:
                    self._watch.bar(symbol, time.monotonic())
                self._absorb(symbol, bars, full=False)
                return

    def on_tick(self, symbol: str, now: float) -> None:
        """A tick of ``symbol`` arrived (feeds the liveness watch of its stream)."""
        if self._watch is not None and symbol in self._streams:
            self._watch.tick(symbol, now)

    def _absorb(self, symbol: str, bars: BarDataList, *, full: bool) -> None:
        """Queue the stream's changed bars (loop thread: no pandas here) and wake the engine at once.

        ib_async replaces a changed ``BarData`` instead of mutating it, so keeping references is safe.
        An update touches the last bar only (it rewrites the forming bar, or appends a new one: the bar
        before keeps the values of its own last update, queued then), so that is the row queued.
        """
        spec = self.spec.get(symbol)
        if spec is None:
            return
        interval = spec[0]
        rows = list(bars) if full else bars[-1:]
        traded = self._trade_ns(symbol)
        with self._pending_lock:
            self._pending.setdefault((symbol, interval), []).extend(rows)
            if traded is not None:
                self._pending_traded[symbol] = traded
        listener = self.listener
        if listener is None or full:
            self.bars_changed.set()
            return
        try:
            listener()
        except Exception:  # never into ib_async: the engine's worker takes the bar
            log.exception("the bar listener failed")
            self.bars_changed.set()

    async def _watch_streams(self) -> None:
        watch = self._watch
        if watch is None:
            return
        while not self._closed():
            await asyncio.sleep(min(watch.limit / 4, 5.0))
            in_session = not self._conn.stale_only_in_session or is_market_open()
            if not in_session or not self._conn.state.has_socket:
                continue
            now = time.monotonic()
            for symbol in watch.stalled(now):
                if symbol not in self.spec:
                    watch.forget(symbol)
                    continue
                silent = now - watch.last_bar[symbol]
                stalls = watch.restarted(symbol, now)
                log.warning(
                    "the %s bar stream sent nothing for %.0fs while its quotes kept coming: restarting it "
                    "(stall %d)",
                    symbol,
                    silent,
                    stalls,
                )
                try:
                    await self.start(symbol)
                except (DataError, BrokerError, ConnectionError, RequestError, TimeoutError) as exc:
                    log.error("restarting the dead %s bar stream failed: %s", symbol, exc)
                self.stalled.emit(symbol, silent, stalls)

    # ------------------------------------------------------------------ reading (any thread but the loop)
    def flush(self, symbol: str, interval: str) -> None:
        """Merge the queued bars of one stream into its live store (called by readers, off the loop)."""
        key = (symbol, interval)
        if key not in self._pending:  # a racy peek is fine: a row queued just after is seen next time
            return
        with self._flush_lock:
            with self._pending_lock:
                rows = self._pending.pop(key, None)
                traded = self._pending_traded.pop(symbol, None)
            if rows:
                store = self._live.get(key)
                if store is None:
                    store = self._live[key] = LiveBars(interval, self._store_size, calendar_of(symbol))
                store.upsert(rows)
            if traded is not None and traded > self._synced.get(symbol, -1):
                # Published only now that the rows are in the store: whoever sees this time sees them.
                self._synced[symbol] = traded

    def store(self, symbol: str) -> LiveBars | None:
        """The up-to-date store of ``symbol``'s stream (None before its first bar or without a stream)."""
        spec = self.spec.get(symbol)
        if spec is None:
            return None
        self.flush(symbol, spec[0])
        return self._live.get((symbol, spec[0]))

    def synced_ns(self, symbols: list[str]) -> int | None:
        """The newest trade time every one of ``symbols``' streams is known to include (int64 ns)."""
        if len(symbols) == 1:
            return self._synced.get(symbols[0])
        values = [self._synced.get(s) for s in symbols]
        if not values or any(v is None for v in values):
            return None
        return min(v for v in values if v is not None)

    def stop(self) -> None:
        """Cancel every stream (history stays readable); stops the watchdog."""
        streams = list(self._streams.values())
        self._streams.clear()
        if streams and self._conn.is_connected():
            for bars in streams:
                if getattr(bars, "reqId", None) is None:
                    continue
                try:
                    self._conn.call(self._conn.ib.cancelHistoricalData, bars)
                except (TimeoutError, BrokerError, ConnectionError) as exc:
                    log.warning("cancelling a bar stream failed: %s", exc)
        for symbol, (interval, _) in list(self.spec.items()):
            self.flush(symbol, interval)  # what arrived before the cancel is kept in the cache
            if self._watch is not None:
                self._watch.forget(symbol)
        self.spec.clear()
        task, self._watch_task = self._watch_task, None
        if task is not None and self._conn.runtime.is_running:
            with contextlib.suppress(TimeoutError, BrokerError, ConnectionError):
                self._conn.call(task.cancel)
