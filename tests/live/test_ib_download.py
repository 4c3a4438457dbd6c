"""`Downloader` against the simulated gateway with IB's historical pacing on: the store gets the gateway's
own bars, an interrupted download resumes with only the missing sessions, the limiter never lets the gateway
answer 162, and a 162 that does come is retried, never lost.

Long pacing waits run on a fake clock shared by the downloader and the gateway's pacer (hours of pacing in
a second); one test keeps the gateway's real clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from copilot_quant.brokers.config import ConnectionSettings
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_download import AdjustedRangeError, Downloader
from copilot_quant.brokers.pacing import HistoricalPacer, PacingRules
from copilot_quant.data.ib_chunks import trading_sessions
from copilot_quant.data.store import ParquetStore
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import DataError
from copilot_quant.gateway import pacing as gateway_pacing
from copilot_quant.gateway.server import GatewayServer
from ib_async import Stock

START, END = "2024-02-05", "2024-02-09"  # five sessions, before the gateway's replay start (2024-03-01)


class FakeClock:
    """Monotonic seconds that move only when someone sleeps (thread-safe enough for a float)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


@contextmanager
def connected(server: GatewayServer, client_id: int = 7) -> Iterator[IBConnection]:
    settings = ConnectionSettings("127.0.0.1", server.port, client_id, paper_trading=True, use_gateway=True)
    conn = IBConnection(settings, auto_reconnect=False, name="copilot-quant-download-test")
    assert conn.connect(10)
    try:
        yield conn
    finally:
        conn.disconnect()


def fake_paced(server: GatewayServer, clock: FakeClock) -> gateway_pacing.HistoricalPacer:
    """Put the gateway's pacing rules on ``clock``."""
    pacer = gateway_pacing.HistoricalPacer(enabled=True, clock=clock)
    server.core.pacer = pacer
    return pacer


def expected_bars(feed: SyntheticDataProvider, symbol: str, start: str, end: str) -> pd.DataFrame:
    frame = feed.get_historical_data(symbol, start, end, "1m")
    return frame.round(6)


@pytest.fixture
def store(tmp_path: Path) -> ParquetStore:
    return ParquetStore(tmp_path / "store")


def test_minute_download_fills_the_store_with_the_gateways_bars(
    gateway_factory: Callable[..., GatewayServer], feed: SyntheticDataProvider, store: ParquetStore
) -> None:
    server = gateway_factory(pacing=True)  # the gateway's real pacing clock
    first = "2024-02-01"  # seven sessions a symbol: more than 5 requests per contract in 2 s, so it waits
    with connected(server) as conn:
        report = Downloader(conn, store).run(["AAPL", "MSFT"], "1m", first, END)
    assert server.core.pacer.violations == 0
    assert report.waited > 0
    assert report.planned == report.done == 14
    assert report.complete
    assert report.gaps == {"AAPL": [], "MSFT": []}
    for symbol in ("AAPL", "MSFT"):
        stored = store.bars(symbol, "1m")
        want = expected_bars(feed, symbol, first, END)
        assert stored.index.equals(want.index)
        np.testing.assert_allclose(
            stored[["Open", "High", "Low", "Close"]], want[["Open", "High", "Low", "Close"]]
        )
        assert stored.index.tz is not None
        assert str(stored.index.tz) == "UTC"


def test_interrupted_download_resumes_with_only_the_missing_sessions(
    gateway_factory: Callable[..., GatewayServer], feed: SyntheticDataProvider, store: ParquetStore
) -> None:
    server = gateway_factory(pacing=True)
    clock = FakeClock()
    fake_paced(server, clock)
    with connected(server) as conn:
        first = Downloader(conn, store, clock=clock, sleep=clock.sleep).run(
            ["AAPL"], "1m", START, END, max_chunks=2
        )
        assert not first.complete
        assert first.done == 2
        assert len(first.gaps["AAPL"]) == 3  # still missing, to be resumed
        downloader = Downloader(conn, store, clock=clock, sleep=clock.sleep)
        planned = [c.sessions[0].day for c in downloader.plan(["AAPL"], "1m", START, END)]
        assert planned == ["2024-02-07", "2024-02-08", "2024-02-09"]  # the first run took the oldest two
        second = downloader.run(["AAPL"], "1m", START, END)
    asked_first = {c.sessions[0].day for c in first.requests}
    asked_second = {c.sessions[0].day for c in second.requests}
    assert asked_first.isdisjoint(asked_second)
    week = trading_sessions(pd.Timestamp(START, tz="UTC"), pd.Timestamp("2024-02-09 23:00", tz="UTC"))
    assert asked_first | asked_second == {s.day for s in week}
    assert second.complete
    assert second.gaps == {"AAPL": []}
    assert store.bars("AAPL", "1m").index.equals(expected_bars(feed, "AAPL", START, END).index)
    assert server.core.pacer.violations == 0


def test_pacing_limiter_keeps_a_long_download_under_ibs_limits(
    gateway_factory: Callable[..., GatewayServer], store: ParquetStore
) -> None:
    """71 one-minute requests: more than the 60 IB allows in 10 minutes, all within 2 s bursts of 5."""
    server = gateway_factory(pacing=True, symbols=["AAPL"])
    clock = FakeClock()
    gateway = fake_paced(server, clock)
    started = clock.now
    with connected(server) as conn:
        report = Downloader(conn, store, clock=clock, sleep=clock.sleep).run(
            ["AAPL"], "1m", "2023-11-01", "2024-02-13"
        )
    assert report.done == report.planned == 71
    assert report.retries == 0
    assert gateway.violations == 0
    assert clock.now - started >= 600  # the 61st request waited for the 10-minute window
    assert report.gaps == {"AAPL": []}


def test_a_pacing_violation_is_retried_and_no_chunk_is_lost(
    gateway_factory: Callable[..., GatewayServer], store: ParquetStore
) -> None:
    server = gateway_factory(pacing=True, symbols=["AAPL"])
    clock = FakeClock()
    gateway = fake_paced(server, clock)
    reckless = HistoricalPacer(
        rules=PacingRules(identical_window=0, per_contract_max=1000, global_max=10_000), clock=clock
    )
    with connected(server) as conn:
        report = Downloader(conn, store, pacer=reckless, sleep=clock.sleep, backoff=3.0).run(
            ["AAPL"], "1m", "2024-01-02", "2024-01-12"
        )
    assert gateway.violations > 0
    assert report.retries == gateway.violations
    assert report.done == 9
    assert report.gaps == {"AAPL": []}


def test_adjusted_download_is_one_request_ending_now_or_refused(
    gateway_factory: Callable[..., GatewayServer], feed: SyntheticDataProvider, store: ParquetStore
) -> None:
    server = gateway_factory(pacing=True, symbols=["AAPL"])
    with connected(server) as conn:
        downloader = Downloader(conn, store)
        with pytest.raises(AdjustedRangeError, match=r"start at 2024-02-29 or later.*--unadjusted"):
            downloader.run(["AAPL"], "1m", START, adjusted=True)
        report = downloader.run(["AAPL"], "5m", "2024-02-23", adjusted=True)
    assert report.what_to_show == "ADJUSTED_LAST"
    assert report.done == 1
    assert report.requests[0].duration == "5 D"
    stored = store.bars("AAPL", "5m")
    assert stored.index[0].tz_convert("America/New_York").day == 23
    assert len(stored) == 5 * 78  # five full sessions of 5-minute bars
    with connected(server, client_id=8) as conn:
        other = ParquetStore(store.root.parent / "until")
        again = Downloader(conn, other).run(["AAPL"], "5m", "2024-02-26", "2024-02-27", adjusted=True)
    assert again.requests[0].duration == "4 D"  # up to now (26th to 29th) ...
    assert len(other.bars("AAPL", "5m")) == 2 * 78  # ... but only what --end asked for is stored
    assert server.core.pacer.violations == 0


class _MissingDay(SyntheticDataProvider):
    """Synthetic bars without 2024-02-07 (as if the data had a hole there)."""

    def get_historical_data(self, *args: object, **kwargs: object) -> pd.DataFrame:
        frame = super().get_historical_data(*args, **kwargs)
        days = frame.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
        return frame[days != "2024-02-07"]


def test_sessions_without_bars_are_reported_as_gaps(
    gateway_factory: Callable[..., GatewayServer], store: ParquetStore
) -> None:
    server = gateway_factory(pacing=True, data=_MissingDay(seed=42))
    with connected(server) as conn:
        report = Downloader(conn, store).run(["AAPL"], "1m", START, END)
    assert report.complete
    assert report.done == 5
    assert report.gaps == {"AAPL": ["2024-02-07"]}


def test_unknown_symbols_and_bad_intervals_are_named(
    gateway_factory: Callable[..., GatewayServer], store: ParquetStore
) -> None:
    server = gateway_factory()
    with connected(server) as conn:
        downloader = Downloader(conn, store)
        with pytest.raises(DataError, match="1wk"):
            downloader.run(["AAPL"], "1wk", START, END)
        with pytest.raises(DataError, match="start date"):
            downloader.run(["AAPL"], "1m", None, END)


def test_gateway_refuses_adjusted_last_with_an_end_date_as_ib_does(
    gateway_factory: Callable[..., GatewayServer],
) -> None:
    server = gateway_factory(symbols=["AAPL"])
    with connected(server) as conn:
        ib = conn.ib
        contract = conn.run(ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD")))[0]

        async def ask(end: str) -> list[object]:
            return await ib.reqHistoricalDataAsync(contract, end, "1 D", "5 mins", "ADJUSTED_LAST", True, 2)

        errors: list[tuple[int, str]] = []
        conn.ib_error += lambda req_id, code, message, *rest: errors.append((code, message))
        assert len(conn.run(ask("20240223 16:00:00 US/Eastern"))) == 0
        assert any(code == 321 and "adjusted last" in message for code, message in errors)
        assert len(conn.run(ask(""))) == 78  # ending now: served


def test_a_request_that_times_out_is_retried(
    gateway_factory: Callable[..., GatewayServer], store: ParquetStore
) -> None:
    server = gateway_factory(pacing=True, symbols=["AAPL"])
    clock = FakeClock()
    fake_paced(server, clock)
    history = server.core.history
    real_query = history.query
    calls: list[str] = []

    def slow_first(symbol: str, **kwargs: object) -> object:
        calls.append(symbol)
        if len(calls) == 1:
            time.sleep(1.5)  # HMDS busy: the answer comes after the client gave up
        return real_query(symbol, **kwargs)  # type: ignore[arg-type]

    history.query = slow_first  # type: ignore[method-assign]
    with connected(server) as conn:
        report = Downloader(
            conn, store, clock=clock, sleep=clock.sleep, request_timeout=1.0, backoff=1.0
        ).run(["AAPL"], "1m", START, "2024-02-06")
    assert report.retries == 1
    assert report.gaps == {"AAPL": []}
    assert len(store.bars("AAPL", "1m")) == 2 * 390
