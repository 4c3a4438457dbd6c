"""``LiveDataFeedAdapter``: IB historical and streaming data behind the backtest's :class:`IDataFeed` port.

Bars come back in exactly the backtest's shape: a UTC ``DatetimeIndex`` (daily bars stamped at the
session close, intraday bars at their end) and float columns ``Open, High, Low, Close, Volume``.

Threading contract: every public method is synchronous and thread-safe, and may be called from any
thread except the IB loop thread. The adapter's :class:`~copilot_quant.brokers.connection.IBConnection`
runs ib_async on its own loop thread (see :mod:`copilot_quant.brokers.runtime`); ticks and bar updates
are processed there continuously, so the caller may ``time.sleep()`` while data keeps arriving.

Connections: the constructor never connects. A standalone adapter opens its own socket with client id
``client_id + 1`` (the broker adapter uses ``client_id``), so both adapters of the guide's example can be
connected at once. :class:`~copilot_quant.backtest.live_engine.LiveStrategyEngine` instead passes one
shared ``connection=`` to both adapters: one socket, one client id.

Resilience: historical requests go through a pacing limiter and are retried after IB's pacing error 162.
The last ``cache_size`` bars per symbol and interval are cached. When the connection is lost,
``get_historical_data`` serves the cache and :meth:`is_fallback_mode` becomes true while the connection
reconnects in the background with backoff (a call never adds an attempt of its own then; without the
background loop, calls retry at most as often as the backoff allows); with nothing cached it raises :class:`~copilot_quant.errors.DataUnavailableError` — never an empty
frame standing in for an error. After a reconnect every market-data subscription and bar stream is
renewed and the bars missed during the gap are backfilled.

The bar streams the engine reads (:meth:`stream_bars`, :meth:`completed_bars` and the clocks that judge a bar
complete) are a mixin of their own: :mod:`copilot_quant.brokers.bar_stream_access`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

import pandas as pd
from eventkit import Event
from ib_async import IB, BarDataList, Contract, RequestError

from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.brokers.bar_cache import BarCache
from copilot_quant.brokers.bar_stream_access import BarStreamAccess
from copilot_quant.brokers.config import resolve_connection
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_bar_streams import BarStreams
from copilot_quant.brokers.ib_contracts import calendar_of
from copilot_quant.brokers.ib_history import request_bars, warn_no_bars
from copilot_quant.brokers.ib_mapping import (
    IB_BAR_SIZE,
    bars_to_frame,
    check_interval,
    duration_string,
)
from copilot_quant.brokers.ib_quotes import QuoteStreams
from copilot_quant.brokers.pacing import HistoricalPacer
from copilot_quant.brokers.reconnect import ConnectionState
from copilot_quant.brokers.stock_lookup import StockLookup, stock_symbol
from copilot_quant.data.calendars import whole_session_range
from copilot_quant.data.dates import resolve_range, slice_range
from copilot_quant.data.intervals import INTRADAY_INTERVALS
from copilot_quant.errors import (
    BrokerError,
    DataError,
    NotConnectedError,
    UnknownSymbolError,
)

__all__ = ["LiveDataFeedAdapter"]

log = logging.getLogger(__name__)

_symbol = stock_symbol


class LiveDataFeedAdapter(BarStreamAccess, IDataFeed):
    """Historical and real-time IB data as an :class:`IDataFeed` (see the module docstring).

    Args:
        paper_trading: paper (default) or live account; picks the default port and the safety checks.
        host, port, client_id: override ``IB_HOST``/``IB_PORT``/``IB_CLIENT_ID`` (see
            :mod:`copilot_quant.brokers.config`). A standalone adapter connects as ``client_id + 1``.
        use_gateway: IB Gateway (4002/4001) instead of TWS (7497/7496) for the default port.
        enable_cache: keep recent bars for fallback while disconnected.
        cache_size: bars kept per symbol and interval.
        connection: share an existing :class:`IBConnection` (the engine does this); the adapter then
            neither opens nor closes the socket itself.
        request_timeout: seconds to wait for one historical request.
        first_tick_timeout: seconds ``subscribe``/``get_latest_price`` wait for a first tick.
        auto_reconnect: reconnect in the background after an unexpected drop.
        stale_after: seconds without any tick (while subscribed, in session) before the feed is treated
            as stale and resubscribed; ``None`` disables the watchdog.
        bar_stale_after: seconds a bar stream may stay silent while its symbol's ticks keep arriving before
            it is judged dead (only in the regular session unless the connection's
            ``stale_only_in_session`` is off): it is restarted and :attr:`bar_stream_stalled` fires —
            ``(symbol, silent_seconds, times_stalled)``, on the IB loop thread. ``None`` disables it.
        pacer: the historical-request limiter (IB's published limits by default).
    """

    def __init__(  # noqa: PLR0917 - the guide's positional signature
        self,
        paper_trading: bool = True,
        host: str | None = None,
        port: int | None = None,
        client_id: int | None = None,
        use_gateway: bool = False,
        enable_cache: bool = True,
        cache_size: int = 1000,
        *,
        connection: IBConnection | None = None,
        request_timeout: float = 60.0,
        first_tick_timeout: float = 3.0,
        auto_reconnect: bool = True,
        stale_after: float | None = None,
        pacer: HistoricalPacer | None = None,
        bar_stale_after: float | None = 60.0,
    ) -> None:
        if connection is None:
            settings = resolve_connection(paper_trading, host, port, client_id, use_gateway)
            settings = settings.with_client_id(settings.client_id + 1)
            connection = IBConnection(
                settings, auto_reconnect=auto_reconnect, stale_after=stale_after, name="copilot-quant-data"
            )
            self._owns_connection = True
        else:
            self._owns_connection = False
        self._conn = connection
        self.paper_trading = paper_trading
        self.enable_cache = enable_cache
        self._cache = BarCache(cache_size)
        self._pacer = pacer or HistoricalPacer()
        self._recent: dict[tuple[Any, ...], tuple[float, pd.DataFrame]] = {}
        self.request_timeout = float(request_timeout)
        self.first_tick_timeout = float(first_tick_timeout)
        self._stocks = StockLookup(self._conn)
        self._fallback = False
        self._ever_connected = False
        self._closed = False
        # Reconnects tried by calls (not by the background loop) since the link was lost: their backoff.
        self._call_reconnect_failures = 0
        self._next_call_reconnect = 0.0
        self._conn.restored += self._on_restored
        self._conn.stale += self._on_stale
        self._handlers_on: IB | None = None  # the IB object our handlers are on
        if bar_stale_after is not None and bar_stale_after <= 0:
            raise DataError(f"bar_stale_after must be positive seconds or None, got {bar_stale_after}")
        #: The keepUpToDate bar streams (see ib_bar_streams.py), watched apart from quotes.
        self._bars = BarStreams(
            self._conn,
            contract=self._contract,
            request_bars=self._request_bars,
            trade_ns=lambda symbol: self._quotes.trade_ns(symbol),  # noqa: PLW0108 - _quotes is built below
            closed=lambda: self._closed,
            store_size=max(cache_size, 100_000),
            stale_after=bar_stale_after,
        )
        #: ``(symbol, silent_seconds, times_stalled)`` when a dead bar stream was found and restarted.
        self.bar_stream_stalled: Event = self._bars.stalled
        #: Streaming quotes and what IB said about their permissions (see ib_quotes.py).
        self._quotes = QuoteStreams(self._conn, contract=self._contract, on_tick=self._bars.on_tick)
        #: ``(symbol, code, explanation)`` when IB answers a subscription with a market-data permission
        #: code (354, 10167, 10168, 10089, 10090): no, delayed or partial quotes (IB loop thread).
        self.market_data_problem: Event = self._quotes.problem

    # ------------------------------------------------------------------ connection
    @property
    def connection(self) -> IBConnection:
        return self._conn

    def connect(self, timeout: float = 30) -> bool:
        """Connect to TWS/Gateway (no-op when connected). ``False`` if it cannot be reached."""
        self._closed = False
        ok = self._conn.connect(timeout)
        if ok:
            self._after_connect()
        return ok

    def _after_connect(self) -> None:
        self._ever_connected = True
        self._fallback = False
        self._call_reconnect_failures = 0
        self._next_call_reconnect = 0.0
        current = self._conn._ib
        if current is not None and self._handlers_on is not current:
            self._conn.call(self._install_handlers)

    def _install_handlers(self) -> None:
        # Once per IB object: reconnects reuse it, so handlers are never installed twice.
        ib = self._conn.ib
        if self._handlers_on is ib:
            return
        ib.pendingTickersEvent += self._quotes.on_tickers
        ib.barUpdateEvent += self._bars.on_bar_update
        ib.errorEvent += self._quotes.on_ib_error
        self._handlers_on = ib

    def disconnect(self) -> None:
        """Cancel this adapter's subscriptions; close the socket if the adapter owns it."""
        self._closed = True
        if self._conn.is_connected():
            self.unsubscribe(self._quotes.symbols())
            self.stop_bar_streams()
        if self._owns_connection:
            self._conn.disconnect()

    def is_connected(self) -> bool:
        return self._conn.is_connected()

    def reconnect(self, timeout: float = 30) -> bool:
        """One immediate reconnect attempt; on success subscriptions are renewed and fallback ends."""
        self._closed = False
        ok = self._conn.reconnect(timeout)
        if ok:
            self._after_connect()
        return ok

    def is_fallback_mode(self) -> bool:
        """True while data is (or would be) served from the cache because the connection is lost."""
        if self._fallback:
            return True
        lost = self._conn.state in (ConnectionState.RECONNECTING, ConnectionState.STOPPED)
        return self._ever_connected and not self._closed and lost

    def __enter__(self) -> LiveDataFeedAdapter:
        if not self.connect():
            raise NotConnectedError(
                f"could not connect to {self._conn.settings.describe()}; is TWS/IB Gateway running with the API enabled?"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    # ------------------------------------------------------------------ historical data
    def get_historical_data(
        self,
        symbol: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        interval: str = "1d",
    ) -> pd.DataFrame:
        """Bars for ``symbol`` in ``[start_date, end_date]`` (naive dates are New York time), backtest shape.

        Requests IB data up to ``end_date`` (or up to now). Unsupported intervals raise
        :class:`DataError`; unknown symbols :class:`UnknownSymbolError`. No bars in the range is an empty
        frame and a WARNING that says the range asked for and what IB has (its error 162 text, or the span
        of the bars it returned). While disconnected, cached bars are served (fallback mode) or
        :class:`DataUnavailableError` is raised; a lost connection is retried by the background reconnect
        loop, not by each call.

        IB refuses an identical history request within 15 s (pacing), so one is answered with the previous
        answer: an open-ended request repeated within 15 s does not include a bar that closed in between.
        For bars as they complete, ``subscribe()`` and read ``get_latest_bar()`` (the engine's ``on_data``
        does this for you).
        """
        symbol = _symbol(symbol)
        check_interval(interval)
        lo, hi = resolve_range(start_date, end_date)
        if interval in INTRADAY_INTERVALS:  # a date range holds its dates' whole sessions, as in a backtest
            lo, hi = whole_session_range(lo, hi, calendar_of(symbol))
        key = (symbol, interval, lo, hi)
        recent = self._recent.get(key)
        fresh = recent is not None and time.monotonic() - recent[0] < self._pacer.rules.identical_window
        if recent is not None and fresh and self._conn.is_connected():
            return recent[1].copy()  # IB refuses identical requests within 15 s; the answer is the same
        if not self._ensure_connected():
            why = "not connected to IB"
            if self._conn.reconnecting_in_background:
                why += " (reconnecting in the background)"
            return self._from_cache(symbol, interval, lo, hi, why)
        try:
            frame, ib_said = self._conn.run(
                self._history(symbol, lo, hi, interval), timeout=self.request_timeout * 2 + 30
            )
        except (NotConnectedError, ConnectionError, TimeoutError, BrokerError) as exc:
            return self._from_cache(symbol, interval, lo, hi, f"request failed: {exc}")
        self._fallback = False
        if self.enable_cache:
            self._cache.merge(symbol, interval, frame)
        result = slice_range(frame, lo, hi).copy()
        if result.empty:
            warn_no_bars(symbol, interval, lo, hi, answer=frame, ib_said=ib_said)
        now = time.monotonic()
        window = self._pacer.rules.identical_window
        self._recent = {k: v for k, v in self._recent.items() if now - v[0] < window}
        self._recent[key] = (now, result)
        return result.copy()

    def _ensure_connected(self) -> bool:
        """Connected now? Connects on first use; after a drop, tries to reconnect only as the backoff allows.

        While the connection's background loop retries (with backoff and jitter) the answer is simply no: a
        caller polling during an outage must not add an attempt per call. Without that loop (auto-reconnect
        off, or it gave up) the calls themselves try, at most as often as :attr:`IBConnection.backoff` says.
        """
        if self._conn.is_connected():
            return True
        if self._closed:
            return False
        if not self._ever_connected:
            # Used before connect(): connect on first use, as the guide's cache example expects.
            return self.connect(timeout=min(self.request_timeout, 10.0))
        if self._conn.reconnecting_in_background or time.monotonic() < self._next_call_reconnect:
            return False
        log.warning("IB connection lost; trying one reconnect before falling back to cached data")
        try:
            ok = self.reconnect(timeout=5)
        except (OSError, TimeoutError, BrokerError):
            ok = False
        if ok:
            self._call_reconnect_failures = 0
        else:
            delay = self._conn.backoff.delay(self._call_reconnect_failures)
            self._call_reconnect_failures += 1
            self._next_call_reconnect = time.monotonic() + delay
        return ok

    def _from_cache(
        self, symbol: str, interval: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None, why: str
    ) -> pd.DataFrame:
        part = self._cache.fallback(symbol, interval, lo, hi, why, enabled=self.enable_cache)
        if not self._fallback:
            log.warning("serving cached %s %s bars (fallback mode): %s", symbol, interval, why)
        self._fallback = True
        return part.copy()

    async def _contract(self, symbol: str) -> Contract:
        return await self._stocks.contract(symbol)

    def unknown_symbols(self, symbols: list[str] | str) -> list[str]:
        """The symbols among ``symbols`` that IB knows no US stock for (looked up once, then cached).

        Other lookup failures (connection, IB errors) are not counted here: the request that needs the
        symbol reports them.
        """
        names = [_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
        if not self._ensure_connected():
            raise NotConnectedError("unknown_symbols() needs a connection; call connect() first")
        unknown: list[str] = []
        for name in names:
            try:
                self._conn.run(self._contract(name), timeout=self.request_timeout)
            except UnknownSymbolError:
                unknown.append(name)
            except (DataError, BrokerError, TimeoutError, ConnectionError) as exc:
                log.debug("looking up %s failed: %s", name, exc)
        return unknown

    async def _history(
        self, symbol: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None, interval: str
    ) -> tuple[pd.DataFrame, str]:
        """IB's bars for the request, and IB's "no data" message when it answered with one (else '')."""
        contract = await self._contract(symbol)
        now = pd.Timestamp.now(tz="UTC")
        end: datetime | str = "" if hi is None or hi >= now else hi.ceil("s").to_pydatetime()
        duration = duration_string(lo, hi if hi is not None and hi < now else now, interval)
        bars, ib_said = await self._request_bars(
            contract, end, duration, IB_BAR_SIZE[interval], keep_up_to_date=False
        )
        return bars_to_frame(bars, interval, calendar_of(symbol)), ib_said

    async def _request_bars(
        self, contract: Contract, end: datetime | str, duration: str, bar_size: str, *, keep_up_to_date: bool
    ) -> tuple[BarDataList, str]:
        """IB's bars, and IB's message when it answered "no data" (see :func:`.ib_history.request_bars`)."""
        return await request_bars(
            self._conn.ib,
            self._pacer,
            contract,
            end,
            duration,
            bar_size,
            keep_up_to_date=keep_up_to_date,
            request_timeout=self.request_timeout,
        )

    def get_ticker_info(self, symbol: str) -> dict[str, Any]:
        """Contract details from IB: symbol, name, exchange, currency, con_id, min_tick, industry…"""
        symbol = _symbol(symbol)
        if not self._ensure_connected():
            return {"symbol": symbol}

        result: dict[str, Any] = self._conn.run(self._stocks.details(symbol), timeout=self.request_timeout)
        return result

    # ------------------------------------------------------------------ streaming quotes
    def subscribe(self, symbols: list[str] | str) -> dict[str, bool]:
        """Stream quotes for ``symbols``; returns ``{symbol: subscribed?}``.

        Waits up to ``first_tick_timeout`` seconds for a first price so that :meth:`get_latest_price`
        answers right away. Unknown symbols map to ``False`` (and are logged).
        """
        names = [_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
        if not self._ensure_connected():
            raise NotConnectedError("subscribe() needs a connection; call connect() first")
        results: dict[str, bool] = {}
        for name in names:
            try:
                self._conn.run(self._quotes.subscribe(name), timeout=self.request_timeout)
                results[name] = True
            except (DataError, BrokerError, TimeoutError, ConnectionError) as exc:
                log.warning("could not subscribe to %s: %s", name, exc)
                results[name] = False
        ok = [s for s, good in results.items() if good]
        self._conn.mark_subscribed(bool(self._quotes.symbols()))
        book = self._quotes.book
        if ok and not book.wait_for(ok, self.first_tick_timeout):
            missing = [s for s in ok if book.get(s) is None]
            log.info("no first tick yet for %s after %.1fs", ", ".join(missing), self.first_tick_timeout)
        return results

    def unsubscribe(self, symbols: list[str] | str) -> dict[str, bool]:
        """Stop streaming quotes; returns ``{symbol: was subscribed and is now cancelled}``."""
        names = [_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
        results = {name: self._quotes.unsubscribe(name) for name in names}
        self._conn.mark_subscribed(bool(self._quotes.symbols()))
        return results

    def market_data_problems(self) -> dict[str, str]:
        """``{symbol: what IB said is wrong with its quotes}`` (no, delayed or partial market data)."""
        return self._quotes.problems()

    def market_data_type(self, symbol: str) -> str:
        """How IB serves ``symbol``'s quotes now: ``real-time``, ``frozen``, ``delayed``, ``delayed-frozen``."""
        return self._quotes.data_type(_symbol(symbol))

    def subscribed_symbols(self) -> list[str]:
        return self._quotes.symbols()

    def get_latest_price(self, symbol: str) -> float | None:
        """The latest traded price (else the bid/ask midpoint) of a subscribed symbol.

        Waits up to ``first_tick_timeout`` for a first tick; ``None`` if the symbol is not subscribed or
        IB has sent no price at all.
        """
        symbol = _symbol(symbol)
        book = self._quotes.book
        quote = book.get(symbol)
        if quote is None and self._quotes.is_subscribed(symbol):
            book.wait_for([symbol], self.first_tick_timeout)
            quote = book.get(symbol)
        return None if quote is None else quote.price

    def get_latest_bar(self, symbol: str) -> pd.Series | None:
        """The latest bar as a Series with ``Open, High, Low, Close, Volume`` (named by its timestamp).

        The last streamed bar when a bar stream runs for ``symbol``, else today's OHLCV from the ticks.
        """
        symbol = _symbol(symbol)
        if symbol in self._bars.spec:
            store = self._bars.store(symbol)
            frame = store.frame() if store is not None else None
            if frame is not None and not frame.empty:
                return frame.iloc[-1].astype("float64")
        book = self._quotes.book
        if self._quotes.is_subscribed(symbol) and book.get(symbol) is None:
            book.wait_for([symbol], self.first_tick_timeout)
        return book.as_bar(symbol)

    # ------------------------------------------------------------------ recovery (loop thread)
    def _on_restored(self, data_lost: bool) -> None:
        if data_lost and not self._closed:
            asyncio.get_running_loop().create_task(self._resubscribe("reconnected"))

    def _on_stale(self, silent: float) -> None:
        if not self._closed:
            asyncio.get_running_loop().create_task(self._resubscribe(f"no data for {silent:.0f}s"))

    async def _resubscribe(self, why: str) -> None:
        symbols = self._quotes.symbols()
        streams = sorted(self._bars.spec)
        log.info("%s: renewing %d quote subscriptions and %d bar streams", why, len(symbols), len(streams))
        self._stocks.clear()  # ib_async reset its state; qualify again on the new session
        for symbol in symbols:
            try:
                await self._quotes.subscribe(symbol)
            except (DataError, ConnectionError, RequestError) as exc:
                log.warning("resubscribing %s failed: %s", symbol, exc)
        for symbol in streams:
            try:
                await self._bars.start(symbol)  # full lookback again: the gap is backfilled by merge
            except (DataError, ConnectionError, RequestError) as exc:
                log.warning("restarting the %s bar stream failed: %s", symbol, exc)
        self._fallback = False
        self.bars_changed.set()

    def __repr__(self) -> str:
        return f"LiveDataFeedAdapter({self._conn.settings.describe()}, state={self._conn.state.value})"
