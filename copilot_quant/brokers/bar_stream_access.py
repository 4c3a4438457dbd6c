"""The live data feed's bar streams, as the engine reads them: which bars are complete, and by whose clock.

Part of :class:`~copilot_quant.brokers.live_data_adapter.LiveDataFeedAdapter` (a mixin, so that these public
methods stay on the adapter, with no extra call on the engine's hot path): :meth:`BarStreamAccess.stream_bars`
starts IB's ``keepUpToDate`` streams (:mod:`copilot_quant.brokers.ib_bar_streams`), and the rest reads them —
the bars closed by a given time (:meth:`~BarStreamAccess.completed_bars`, :meth:`~BarStreamAccess.completed_stamps`),
the frames built ahead of the next bar (:meth:`~BarStreamAccess.prepare_bars`), the newest stamps, and the clocks
a bar is judged complete and final by (IB's server time, the newest trade, the trade each stream is synced to).
The adapter owns the connection, the streams and the quotes this reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd
from ib_async import RequestError

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_bar_streams import BarStreams
from copilot_quant.brokers.ib_mapping import check_interval, empty_bars
from copilot_quant.brokers.ib_quotes import QuoteStreams
from copilot_quant.brokers.live_bars import LiveBars
from copilot_quant.brokers.stock_lookup import stock_symbol
from copilot_quant.errors import BrokerError, DataError, NotConnectedError

__all__ = ["BarStreamAccess"]

log = logging.getLogger("copilot_quant.brokers.live_data_adapter")  # the adapter's log, as before the split

_symbol = stock_symbol


class BarStreamAccess:
    """The adapter's bar streams for the engine (the adapter sets the parts below)."""

    _conn: IBConnection
    _bars: BarStreams
    _quotes: QuoteStreams
    request_timeout: float
    #: Connected now? (the adapter's: connects on first use, reconnects as the backoff allows)
    _ensure_connected: Callable[[], bool]

    def stream_bars(
        self, symbols: list[str], interval: str = "1d", lookback_days: int = 30
    ) -> dict[str, bool]:
        """Load ``lookback_days`` of history and keep it up to date as IB publishes new bars.

        Uses IB's ``keepUpToDate`` historical subscription; the bars are held in a
        :class:`~copilot_quant.brokers.live_bars.LiveBars` per stream. :meth:`completed_bars` returns history plus
        every bar that has closed so far; :attr:`bars_changed` is set whenever something arrived.
        """
        check_interval(interval)
        if lookback_days < 1:
            raise DataError(f"lookback_days must be at least 1, got {lookback_days}")
        if not self._ensure_connected():
            raise NotConnectedError("stream_bars() needs a connection; call connect() first")
        results: dict[str, bool] = {}
        self._conn.call(self._bars.start_watch)
        for raw in symbols:
            symbol = _symbol(raw)
            self._bars.spec[symbol] = (interval, int(lookback_days))
            try:
                self._conn.run(self._bars.start(symbol), timeout=self.request_timeout * 2 + 30)
                results[symbol] = True
            except (DataError, BrokerError, TimeoutError, ConnectionError) as exc:
                log.warning("could not stream %s %s bars: %s", symbol, interval, exc)
                self._bars.forget(symbol)
                results[symbol] = False
        return results

    @property
    def bars_changed(self) -> threading.Event:
        """Set (on the loop thread) whenever a streamed bar changed or was added; the engine waits on it
        (and may put its own event here, to be woken directly)."""
        return self._bars.bars_changed

    @bars_changed.setter
    def bars_changed(self, event: threading.Event) -> None:
        self._bars.bars_changed = event

    @property
    def bar_listener(self) -> Callable[[], None] | None:
        """Called on the loop thread per live bar update instead of setting :attr:`bars_changed`."""
        return self._bars.listener

    @bar_listener.setter
    def bar_listener(self, listener: Callable[[], None] | None) -> None:
        self._bars.listener = listener

    def last_bar_time(self, symbol: str) -> pd.Timestamp | None:
        """Stamp of the newest streamed bar of ``symbol`` (complete or not), or ``None``."""
        ns = self.last_bar_ns(symbol)
        return None if ns is None else pd.Timestamp(ns, tz="UTC")

    def last_bar_ns(self, symbol: str) -> int | None:
        """:meth:`last_bar_time` as int64 ns since the epoch (no pandas: it is on the engine's hot path)."""
        store = self._bars.store(_symbol(symbol))
        return None if store is None else store.last_stamp_ns()

    def completed_bars(self, symbol: str, now: pd.Timestamp | int | None = None) -> pd.DataFrame:
        """Streamed bars of ``symbol`` that have closed by ``now`` (a Timestamp or int64 ns; default: the
        server's clock)."""
        store = self._streamed(symbol)
        if store is None:
            return empty_bars()
        return store.frame(now if now is not None else self.server_time())

    def prepare_bars(self, symbols: list[str], delivered_ns: int | None = None) -> int | None:
        """Build now, for each of ``symbols``' streams, the frame the next :meth:`completed_bars` will most
        likely return — the bars held, the forming one included (or the next daily bar to come, when the
        newest held is complete by ``delivered_ns``, the last bar delivered) — so that it need not build it
        (see :meth:`LiveBars.prepare <copilot_quant.brokers.live_bars.LiveBars.prepare>`). The engine calls
        this after a bar's orders went out, off the path to the next bar's. Returns the newest stamp in
        those frames (the bar expected next), or None."""
        newest: int | None = None
        for symbol in symbols:
            store = self._streamed(symbol)
            end = store.prepare(delivered_ns) if store is not None else None
            if end is not None and (newest is None or end > newest):
                newest = end
        return newest

    def bars_prepared(self, symbols: list[str]) -> bool:
        """Whether :meth:`prepare_bars` has nothing to build for ``symbols`` (cheap: no pandas)."""
        for symbol in symbols:
            store = self._streamed(symbol)
            if store is not None and not store.prepared():
                return False
        return True

    def completed_stamps(self, symbol: str, now: pd.Timestamp | int, after: int | None = None) -> np.ndarray:
        """Stamps (int64 ns UTC, ascending) of the streamed bars of ``symbol`` closed by ``now`` (a Timestamp
        or int64 ns), only those stamped after ``after`` (int64 ns) if given; no pandas."""
        store = self._streamed(symbol)
        cutoff = now if isinstance(now, int) else pd.Timestamp(now).value
        return np.empty(0, dtype="int64") if store is None else store.stamps(cutoff, after)

    def _streamed(self, symbol: str) -> LiveBars | None:
        """The up-to-date store of ``symbol``'s bar stream (None before its first bar); DataError if none runs."""
        name = _symbol(symbol)
        if name not in self._bars.spec:
            raise DataError(f"no bar stream for {name}; call stream_bars([{name!r}]) first")
        return self._bars.store(name)

    def server_time(self) -> pd.Timestamp:
        """TWS/Gateway's clock (UTC); the local clock if it cannot be asked."""

        async def ask() -> datetime:
            return await self._conn.ib.reqCurrentTimeAsync()

        try:
            value = pd.Timestamp(self._conn.run(ask(), timeout=5))
            return value.tz_convert("UTC") if value.tzinfo else value.tz_localize("UTC")
        except (TimeoutError, BrokerError, ConnectionError, RequestError):
            return pd.Timestamp.now(tz="UTC")

    def last_trade_time(self) -> pd.Timestamp | None:
        """The newest trade time IB reported (tick 45) on any subscribed symbol: a lower bound on its clock.

        Read straight from the tickers ib_async updates as it decodes, so a bar update that arrives after
        a trade is never judged with an older time. ``None`` before the first trade tick. No round trip.
        """
        ns = self.last_trade_ns()
        return None if ns is None else pd.Timestamp(ns, tz="UTC")

    def last_trade_ns(self) -> int | None:
        """:meth:`last_trade_time` as int64 ns since the epoch (no pandas: it is on the engine's hot path)."""
        return self._quotes.newest_trade_ns()

    def synced_trade_ns(self, symbols: list[str]) -> int | None:
        """The newest trade time every one of ``symbols``' bar streams is known to include (int64 ns).

        Recorded when each stream's latest bar update arrived: IB sent the trades seen before it first,
        so a bar stamped at or before this time is complete *and* its streamed values are final. A trade
        tick alone proves the first half only (its bar update may still be on the wire). ``None`` until
        every symbol has had a bar update after a trade.
        """
        return self._bars.synced_ns([_symbol(s) for s in symbols])

    def stop_bar_streams(self) -> None:
        """Cancel every bar stream (history stays readable through :meth:`completed_bars`)."""
        self._bars.stop()
