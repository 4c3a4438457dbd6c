"""How many requests, and how much wall time, an IB minute-bar download needs — against what the rules need.

* **Plan** (no IB): three years of 1-minute bars of two symbols, empty store, then the same with every other
  month already stored. Prints the requests planned vs the minimum IB's duration table allows (one request
  covers at most one session of 1-minute bars, and only consecutive sessions), and the least wall time IB's
  pacing rules allow (60 requests per 10 minutes, 5 per contract in 2 s, none identical within 15 s).
* **Run**: one year of one symbol downloaded from the simulated gateway with its pacing on. Its pacing clock
  and the downloader's are one fake clock, so the hours of waiting IB would impose pass in seconds; the
  gateway counts the requests it received and the pacing violations (error 162) it answered.

Run: ``python benchmarks/bench_download.py``. Nothing is asserted; the printed numbers are the claim.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Hashable

import pandas as pd
from copilot_quant.brokers.config import ConnectionSettings
from copilot_quant.brokers.connection import IBConnection
from copilot_quant.brokers.ib_download import Downloader, pacing_schedule
from copilot_quant.data.ib_chunks import (
    MAX_SESSIONS,
    minimum_requests,
    plan_chunks,
    trading_sessions,
)
from copilot_quant.data.store import ParquetStore
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.gateway import pacing as gateway_pacing
from copilot_quant.gateway.testing import running_gateway

SYMBOLS = ("AAPL", "MSFT")
PLAN_START, PLAN_END = "2021-01-04", "2023-12-29"
RUN_START, RUN_END = "2023-01-03", "2023-12-29"


def _utc(text: str, hour: int = 0) -> pd.Timestamp:
    return (pd.Timestamp(text, tz="America/New_York") + pd.Timedelta(hours=hour)).tz_convert("UTC")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def plan_report(title: str, missing_of: dict[str, list[bool]], sessions: list) -> None:
    chunks = [c for s in SYMBOLS for c in plan_chunks(s, "1m", sessions, missing_of[s])]
    need = sum(minimum_requests(missing_of[s], MAX_SESSIONS["1m"]) for s in SYMBOLS)
    wall = pacing_schedule(chunks)[-1] if chunks else 0.0
    floor = max(0, (need - 1) // 60) * 600.0  # the 60-per-10-minutes rule alone
    print(
        f"{title}: {len(chunks)} requests planned, minimum {need}; "
        f"planned wall time {_hours(wall)}, the 60/10 min rule alone needs {_hours(floor)}"
    )


class CountingPacer(gateway_pacing.HistoricalPacer):
    """The gateway's pacing rules, counting every historical request they judged."""

    received = 0

    def check(self, identity: Hashable, contract_key: Hashable) -> str | None:
        self.received += 1
        return super().check(identity, contract_key)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def run_against_gateway() -> None:
    clock = FakeClock()
    feed = SyntheticDataProvider(seed=7)
    with running_gateway(data=feed, symbols=["AAPL"], start="2024-01-02", pacing=True) as server:
        pacer = CountingPacer(enabled=True, clock=clock)
        server.core.pacer = pacer
        settings = ConnectionSettings("127.0.0.1", server.port, 11, paper_trading=True, use_gateway=True)
        conn = IBConnection(settings, auto_reconnect=False, name="copilot-quant-bench-download")
        conn.connect(10)
        try:
            with tempfile.TemporaryDirectory() as root:
                downloader = Downloader(conn, ParquetStore(root), clock=clock, sleep=clock.sleep)
                started = time.perf_counter()
                report = downloader.run(["AAPL"], "1m", RUN_START, RUN_END)
                took = time.perf_counter() - started
        finally:
            conn.disconnect()
    sessions = len(trading_sessions(_utc(RUN_START), _utc(RUN_END, 23)))
    print(
        f"run, 1 year of AAPL 1m from the simulated gateway: {report.done} requests sent, the gateway got "
        f"{pacer.received} (minimum {sessions}), {pacer.violations} pacing violation(s), {report.retries} "
        f"retries; paced time {_hours(clock.now)} on the fake clock, {took:.1f} s real; "
        f"{sum(report.bars.values()):,} bars"
    )


def main() -> None:
    sessions = trading_sessions(_utc(PLAN_START), _utc(PLAN_END, 23))
    print(f"{PLAN_START}..{PLAN_END}: {len(sessions)} sessions x {len(SYMBOLS)} symbols, 1-minute bars")
    plan_report("plan, empty store", {s: [True] * len(sessions) for s in SYMBOLS}, sessions)
    months = [s.close.tz_convert("America/New_York").month for s in sessions]
    half = [m % 2 == 0 for m in months]  # odd months already stored
    plan_report("plan, every other month stored", dict.fromkeys(SYMBOLS, half), sessions)
    run_against_gateway()


if __name__ == "__main__":
    main()
