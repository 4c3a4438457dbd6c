"""IB streaming quotes (``reqMktData``): one ticker per symbol, its ticks in a :class:`QuoteBook`, and
what IB said about the symbol's market-data permissions (no, delayed or partial quotes).

Threading: ticks and IB messages arrive on the IB loop thread (``on_tickers``, ``on_ib_error``); readers
on other threads read the quote book and the tickers under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventkit import Event
from ib_async import Contract, Ticker

from copilot_quant.brokers.bar_cache import QuoteBook
from copilot_quant.brokers.market_data_permissions import describe_market_data_type, permission_problem
from copilot_quant.errors import BrokerError

if TYPE_CHECKING:
    from copilot_quant.brokers.connection import IBConnection

__all__ = ["QuoteStreams", "trade_ns"]

log = logging.getLogger(__name__)


def trade_ns(ticker: Ticker | None) -> int | None:
    """The ticker's last trade time (tick 45, live or delayed) as int64 ns, or ``None``."""
    if ticker is None:
        return None
    newest: float | None = None
    for stamp in (ticker.lastTimestamp, ticker.delayedLastTimestamp):
        if stamp is not None:  # tz-aware (ib_async stamps in its default zone, UTC)
            seconds = stamp.timestamp()
            if newest is None or seconds > newest:
                newest = seconds
    return None if newest is None else round(newest * 1_000_000) * 1_000


class QuoteStreams:
    """The quote subscriptions of one data adapter.

    Args:
        connection: the IB connection.
        contract: ``await contract(symbol)`` → the qualified contract.
        on_tick: called ``(symbol, monotonic_now)`` when a *trade* is reported (its time advanced): the
            bar streams' liveness — a quote change without a trade moves no bar, so it proves nothing.
    """

    def __init__(
        self,
        connection: IBConnection,
        *,
        contract: Callable[[str], Awaitable[Contract]],
        on_tick: Callable[[str, float], Any],
    ) -> None:
        self._conn = connection
        self._contract = contract
        self._on_tick = on_tick
        self.book = QuoteBook()
        self._tickers: dict[str, Ticker] = {}
        self._subscribed: set[str] = set()
        self._lock = threading.RLock()
        self._problems: dict[str, tuple[int, str]] = {}
        self._last_trade: dict[str, int] = {}  # symbol -> the last trade time passed to on_tick (loop thread)
        #: ``(symbol, code, explanation)`` when IB answers a subscription with a market-data permission
        #: code (354, 10167, 10168, 10089, 10090): no, delayed or partial quotes (IB loop thread).
        self.problem = Event("market_data_problem")

    # ------------------------------------------------------------------ subscriptions
    async def subscribe(self, symbol: str) -> None:
        """(Re)subscribe ``symbol`` (loop thread)."""
        contract = await self._contract(symbol)
        with self._lock:
            old = self._tickers.pop(symbol, None)
        ib = self._conn.ib
        if old is not None and old.contract is not None and ib.isConnected():
            ib.cancelMktData(old.contract)
        ticker = ib.reqMktData(contract, "", False, False)
        with self._lock:
            self._tickers[symbol] = ticker
            self._subscribed.add(symbol)
        self._record_tick(symbol, ticker)  # a snapshot may already be there

    def unsubscribe(self, symbol: str) -> bool:
        """Cancel ``symbol``'s quotes (any thread but the loop); returns whether it was subscribed."""
        with self._lock:
            ticker = self._tickers.pop(symbol, None)
            was = symbol in self._subscribed
            self._subscribed.discard(symbol)
        self.book.forget(symbol)
        if ticker is not None and ticker.contract is not None and self._conn.is_connected():
            try:
                self._conn.call(self._conn.ib.cancelMktData, ticker.contract)
            except (TimeoutError, BrokerError, ConnectionError) as exc:
                log.warning("cancelling %s market data failed: %s", symbol, exc)
        return was

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(self._subscribed)

    def is_subscribed(self, symbol: str) -> bool:
        return symbol in self._subscribed

    # ------------------------------------------------------------------ IB events (loop thread)
    def on_tickers(self, tickers: set[Ticker]) -> None:
        with self._lock:
            by_id = {id(t): s for s, t in self._tickers.items()}
        now = time.monotonic()
        for ticker in tickers:
            symbol = by_id.get(id(ticker))
            if symbol is not None:
                self._record_tick(symbol, ticker)
                traded = trade_ns(ticker)
                if traded is not None and traded > self._last_trade.get(symbol, -1):
                    self._last_trade[symbol] = traded
                    self._on_tick(symbol, now)

    def _record_tick(self, symbol: str, ticker: Ticker) -> None:
        self.book.update(
            symbol,
            last=ticker.last,
            bid=ticker.bid,
            ask=ticker.ask,
            open_=ticker.open,
            high=ticker.high,
            low=ticker.low,
            close=ticker.close,
            volume=ticker.volume,
            # the last trade's exchange time (IB's tick 45) when known: market time, which differs from
            # the wall clock in a replay; else when the tick arrived
            time=ticker.lastTimestamp or ticker.time or datetime.now(UTC),
        )

    def on_ib_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        problem = permission_problem(code)
        symbol = str(getattr(contract, "symbol", "") or "").upper()
        if problem is None or not symbol:
            return
        if self._problems.get(symbol, (0, ""))[0] != code:
            log.warning("market data for %s: %s (IB %d: %s)", symbol, problem, code, message)
        self._problems[symbol] = (code, problem)
        self.problem.emit(symbol, code, problem)

    # ------------------------------------------------------------------ reading
    def problems(self) -> dict[str, str]:
        """``{symbol: what IB said is wrong with its quotes}``."""
        return {symbol: f"{text} (IB {code})" for symbol, (code, text) in self._problems.items()}

    def data_type(self, symbol: str) -> str:
        """How IB serves ``symbol``'s quotes now: ``real-time``, ``frozen``, ``delayed``, ``delayed-frozen``."""
        with self._lock:
            ticker = self._tickers.get(symbol)
        return describe_market_data_type(getattr(ticker, "marketDataType", 1) if ticker is not None else 1)

    def trade_ns(self, symbol: str) -> int | None:
        """The last trade time IB reported for ``symbol`` (int64 ns), or None."""
        with self._lock:
            return trade_ns(self._tickers.get(symbol))

    def newest_trade_ns(self) -> int | None:
        """The newest trade time over every subscribed symbol (int64 ns), or None."""
        with self._lock:
            tickers = list(self._tickers.values())
        return max((t for t in map(trade_ns, tickers) if t is not None), default=None)
