"""Download IB historical bars into the local Parquet store: chunked, paced, resumable.

::

    from copilot_quant.brokers.config import resolve_connection
    from copilot_quant.brokers.connection import IBConnection
    from copilot_quant.brokers.ib_download import Downloader
    from copilot_quant.data.store import ParquetStore

    conn = IBConnection(resolve_connection(paper_trading=True), auto_reconnect=False)
    conn.connect()
    report = Downloader(conn, ParquetStore()).run(["AAPL"], "1m", "2024-01-02", "2024-03-28")
    conn.disconnect()

How it works:

* **Only what is missing.** The sessions of the range come from the exchange calendar (weekends and
  holidays are never missing; sessions not closed yet are left for later). A session is missing when the
  store holds no bar of it. The missing ones are cut into the fewest requests IB's duration table allows
  (:mod:`copilot_quant.data.ib_chunks`). Each answered request is written to the store at once, so an
  interrupted download (Ctrl-C, a lost connection, ``max_chunks``) loses at most the request in flight and
  the next run asks only for what is still missing.
* **Paced.** Every request books a slot with :class:`~copilot_quant.brokers.pacing.HistoricalPacer` under
  IB's rules (no identical request within 15 s, at most 5 per contract in 2 s, 60 in 10 minutes), with a
  small safety margin, and the downloader sleeps until then. The clock and the sleep are injectable, so
  tests can run hours of pacing on a fake clock. If IB still answers 162 "pacing violation", or a request
  times out, the chunk is retried after a growing back-off; it is never skipped.
* **Adjusted or not.** ``TRADES`` by default. ``adjusted=True`` asks for ``ADJUSTED_LAST``, which IB serves
  only for requests ending *now* (no endDateTime): it is one request from the range's start to the latest
  session, refused with :class:`AdjustedRangeError` when that is longer than IB's maximum duration.
* **Gaps reported.** Sessions IB had no bars for (halts, a calendar day the data lacks) stay missing and are
  listed in :attr:`DownloadReport.gaps`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from ib_async import Contract, RequestError, Stock

from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_mapping import bars_to_frame
from copilot_quant.brokers.pacing import HistoricalPacer, PacingRules
from copilot_quant.data.calendars import DEFAULT_CALENDAR
from copilot_quant.data.dates import DateLike, resolve_range
from copilot_quant.data.ib_chunks import (
    MAX_SESSIONS,
    Chunk,
    Session,
    check_download_interval,
    missing_mask,
    plan_chunks,
    trading_sessions,
)
from copilot_quant.data.store import ParquetStore
from copilot_quant.data.validation import normalize_symbol
from copilot_quant.errors import DataError, DataUnavailableError, UnknownSymbolError

__all__ = [
    "DOWNLOAD_PACING",
    "AdjustedRangeError",
    "DownloadReport",
    "Downloader",
    "ProgressCallback",
    "pacing_schedule",
]

log = logging.getLogger(__name__)

#: IB's published rules plus a margin, so a request that left "just in time" is not judged early by TWS.
DOWNLOAD_PACING = PacingRules(
    identical_window=15.5, per_contract_window=2.5, per_contract_max=5, global_window=605.0, global_max=60
)

_HMDS = 162
_NO_SECURITY = 200

#: ``progress(done, total, chunk, bars)`` after each answered request.
ProgressCallback = Callable[[int, int, Chunk, int], None]


def pacing_schedule(chunks: list[Chunk], rules: PacingRules = DOWNLOAD_PACING) -> list[float]:
    """Seconds after the start at which each of ``chunks`` may be sent under ``rules`` (answers taking no
    time): the least wall time a download needs at IB. Runs the real limiter on a simulated clock."""
    now = [0.0]
    pacer = HistoricalPacer(rules=rules, clock=lambda: now[0])
    times = []
    for chunk in chunks:
        now[0] += pacer.reserve((chunk.symbol, chunk.interval), (chunk.symbol, chunk.end, chunk.duration))
        times.append(now[0])
    return times


class AdjustedRangeError(DataError):
    """An adjusted (``ADJUSTED_LAST``) download reaching further back than one request ending now can."""


@dataclass(slots=True)
class DownloadReport:
    """What a :meth:`Downloader.run` did."""

    interval: str
    what_to_show: str
    planned: int = 0
    requests: list[Chunk] = field(default_factory=list)
    bars: dict[str, int] = field(default_factory=dict)
    gaps: dict[str, list[str]] = field(default_factory=dict)
    retries: int = 0
    waited: float = 0.0
    complete: bool = True

    @property
    def done(self) -> int:
        return len(self.requests)


class Downloader:
    """Fills a :class:`ParquetStore` from IB over a connected :class:`IBConnection` (see the module docs).

    Args:
        connection: a connected IB connection (the caller opens and closes it).
        store: where the bars go.
        pacer: the request limiter (default: :data:`DOWNLOAD_PACING` on ``clock``).
        clock, sleep: monotonic seconds and how to wait (inject a fake pair to test hours of pacing fast).
        request_timeout: seconds one request may take before it is retried.
        retries: retries of one chunk after a pacing violation or a timeout before giving up.
        backoff: seconds before the first retry; doubled on each further one (at most 10 minutes).
        calendar: exchange calendar of the sessions.
    """

    def __init__(
        self,
        connection: IBConnection,
        store: ParquetStore,
        *,
        pacer: HistoricalPacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        request_timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 15.0,
        calendar: str = DEFAULT_CALENDAR,
    ) -> None:
        if request_timeout <= 0 or retries < 0 or backoff < 0:
            raise DataError("request_timeout must be > 0, retries >= 0 and backoff >= 0")
        self._conn = connection
        self.store = store
        self.pacer = pacer or HistoricalPacer(rules=DOWNLOAD_PACING, clock=clock)
        self._sleep = sleep
        self.request_timeout = float(request_timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.calendar = calendar
        self._contracts: dict[str, Contract] = {}

    # ------------------------------------------------------------------ planning
    def server_time(self) -> pd.Timestamp:
        """IB's clock (UTC); sessions closing after it are not downloaded yet."""

        async def ask() -> datetime:
            return await self._conn.ib.reqCurrentTimeAsync()

        now = self._conn.run(ask(), timeout=self.request_timeout)
        return pd.Timestamp(now).tz_convert("UTC")

    def _sessions(self, start: DateLike | None, end: DateLike | None, now: pd.Timestamp) -> list[Session]:
        lo, hi = resolve_range(start, end)
        if lo is None:
            raise DataError("a download needs a start date, e.g. --start 2024-01-02")
        hi = now if hi is None else min(hi, now)
        return [s for s in trading_sessions(lo, hi, self.calendar) if s.close <= now] if lo <= hi else []

    def stored_stamps(self, symbol: str, interval: str) -> pd.DatetimeIndex:
        if not self.store.path(symbol, interval).exists():
            return pd.DatetimeIndex([], tz="UTC")
        return pd.DatetimeIndex(self.store.bars(symbol, interval).index)

    def plan(
        self,
        symbols: list[str],
        interval: str,
        start: DateLike | None,
        end: DateLike | None = None,
        *,
        adjusted: bool = False,
        now: pd.Timestamp | None = None,
    ) -> list[Chunk]:
        """The requests a :meth:`run` with these arguments would send, in order."""
        check_download_interval(interval)
        now = self.server_time() if now is None else now
        sessions = self._sessions(start, end, now)
        if adjusted:
            return [self._adjusted_chunk(normalize_symbol(s), interval, start, now) for s in symbols]
        chunks: list[Chunk] = []
        for raw in symbols:
            symbol = normalize_symbol(raw)
            missing = missing_mask(sessions, self.stored_stamps(symbol, interval))
            chunks.extend(plan_chunks(symbol, interval, sessions, missing))
        return chunks

    def _adjusted_chunk(self, symbol: str, interval: str, start: DateLike | None, now: pd.Timestamp) -> Chunk:
        # ADJUSTED_LAST has no endDateTime at IB: one request from the start up to the latest session.
        sessions = self._sessions(start, now, now)
        limit = MAX_SESSIONS[interval]
        if not sessions:
            raise DataError(f"no closed session between {start} and now ({now:%Y-%m-%d %H:%M} UTC)")
        if len(sessions) > limit:
            earliest = sessions[-limit].day
            raise AdjustedRangeError(
                f"IB serves adjusted ({interval}) bars only in one request ending now, at most {limit} "
                f"session(s) back; start at {earliest} or later, or download --unadjusted (TRADES)"
            )
        return Chunk(symbol, interval, tuple(sessions))

    # ------------------------------------------------------------------ running
    def run(
        self,
        symbols: list[str],
        interval: str,
        start: DateLike | None,
        end: DateLike | None = None,
        *,
        adjusted: bool = False,
        progress: ProgressCallback | None = None,
        max_chunks: int | None = None,
    ) -> DownloadReport:
        """Download what the store lacks of ``symbols`` in ``[start, end]``; ``max_chunks`` stops early
        (the rest is fetched by the next run). Raises :class:`DataUnavailableError` when a chunk keeps
        failing (everything answered before it is stored)."""
        what = "ADJUSTED_LAST" if adjusted else "TRADES"
        now = self.server_time()
        chunks = self.plan(symbols, interval, start, end, adjusted=adjusted, now=now)
        report = DownloadReport(interval=interval, what_to_show=what, planned=len(chunks))
        log.info("Downloading %d %s request(s) of %s (%s).", len(chunks), interval, ", ".join(symbols), what)
        _, hi = resolve_range(start, end)
        for chunk in chunks:
            if max_chunks is not None and report.done >= max_chunks:
                report.complete = False
                break
            frame = self._fetch(chunk, what, report)
            if hi is not None:  # an adjusted request runs up to now; keep what was asked for
                frame = frame[frame.index <= hi]
            if not frame.empty:
                self.store.write(chunk.symbol, frame, interval)
            report.requests.append(chunk)
            report.bars[chunk.symbol] = report.bars.get(chunk.symbol, 0) + len(frame)
            if progress is not None:
                progress(report.done, len(chunks), chunk, len(frame))
        self._report_gaps(report, symbols, start, end, now)
        return report

    def _report_gaps(
        self,
        report: DownloadReport,
        symbols: list[str],
        start: DateLike | None,
        end: DateLike | None,
        now: pd.Timestamp,
    ) -> None:
        sessions = self._sessions(start, end, now)
        for raw in symbols:
            symbol = normalize_symbol(raw)
            missing = missing_mask(sessions, self.stored_stamps(symbol, report.interval))
            report.gaps[symbol] = [s.day for s, gone in zip(sessions, missing, strict=True) if gone]
            if report.gaps[symbol] and report.complete:
                log.warning(
                    "%s: IB had no %s bars for %d session(s): %s",
                    symbol,
                    report.interval,
                    len(report.gaps[symbol]),
                    ", ".join(report.gaps[symbol][:10]),
                )

    def _contract(self, symbol: str) -> Contract:
        contract = self._contracts.get(symbol)
        if contract is not None:
            return contract
        try:
            found = self._conn.run(
                self._conn.ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD")),
                timeout=self.request_timeout,
            )
        except RequestError as exc:
            if exc.code == _NO_SECURITY:
                raise UnknownSymbolError(
                    f"IB knows no US stock {symbol!r}; check the ticker symbol"
                ) from None
            raise DataError(f"could not look up {symbol}: IB error {exc.code} {exc.message}") from None
        if not found or not isinstance(found[0], Contract):
            raise UnknownSymbolError(f"IB knows no US stock {symbol!r}; check the ticker symbol")
        self._contracts[symbol] = found[0]
        return found[0]

    def _fetch(self, chunk: Chunk, what: str, report: DownloadReport) -> pd.DataFrame:
        """The bars of ``chunk`` (empty when IB has none), retried after pacing errors and timeouts."""
        contract = self._contract(chunk.symbol)
        end: datetime | str = "" if what == "ADJUSTED_LAST" else chunk.end.to_pydatetime()
        identity = (contract.conId, str(end), chunk.duration, chunk.bar_size, what)
        for attempt in range(self.retries + 1):
            wait = self.pacer.reserve((contract.conId, what), identity)
            if wait > 0:
                log.debug("pacing: waiting %.1fs before %s", wait, chunk.describe())
                self._sleep(wait)
                report.waited += wait
            outcome = self._request(contract, chunk, what, end)
            if isinstance(outcome, pd.DataFrame):
                return outcome
            if attempt == self.retries:
                break
            pause = min(self.backoff * 2**attempt, 600.0)
            log.warning("%s: %s; retrying in %.0fs", chunk.describe(), outcome, pause)
            report.retries += 1
            self._sleep(pause)
            report.waited += pause
        raise DataUnavailableError(
            f"IB kept failing the request for {chunk.describe()} ({self.retries} retries); everything before "
            "it is stored — run the same download again later to resume"
        )

    def _request(
        self, contract: Contract, chunk: Chunk, what: str, end: datetime | str
    ) -> pd.DataFrame | str:
        """The chunk's bars, or why the request should be retried (a pacing violation, a timeout)."""
        ib = self._conn.ib
        started = time.monotonic()
        try:
            bars = self._conn.run(
                ib.reqHistoricalDataAsync(
                    contract,
                    end,
                    chunk.duration,
                    chunk.bar_size,
                    what,
                    useRTH=True,
                    formatDate=2,
                    timeout=self.request_timeout,
                ),
                timeout=self.request_timeout + 10,
            )
        except TimeoutError:
            return f"no answer within {self.request_timeout:.0f}s"
        except ConnectionError as exc:
            raise DataUnavailableError(
                f"lost the connection to IB during {chunk.describe()} ({exc}); everything before it is "
                "stored — run the same download again to resume"
            ) from None
        except RequestError as exc:
            text = exc.message.lower()
            if exc.code == _HMDS and "pacing" in text:
                return f"IB pacing violation ({exc.message})"
            if exc.code == _HMDS and "no data" in text:
                log.info("%s: IB has no data (%s)", chunk.describe(), exc.message)
                return bars_to_frame([], chunk.interval)
            raise DataError(f"IB refused {chunk.describe()}: error {exc.code} {exc.message}") from None
        if not bars and time.monotonic() - started >= self.request_timeout * 0.95:
            return f"no answer within {self.request_timeout:.0f}s"
        frame = bars_to_frame(bars, chunk.interval)
        # Keep the chunk's own sessions: an adjusted request ending now may bring later bars too.
        return frame[(frame.index > chunk.start) & (frame.index <= chunk.end)]
