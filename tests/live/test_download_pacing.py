"""The downloader's pacing schedule, judged by the simulated gateway's own pacing rules (error 162): for any
mix of symbols and request counts, no request of the schedule is a violation, and the schedule wastes no
time where the rules allow a request at once."""

from __future__ import annotations

import pandas as pd
from copilot_quant.brokers.ib_download import pacing_schedule
from copilot_quant.data.ib_chunks import Chunk, Session
from copilot_quant.gateway.pacing import HistoricalPacer as GatewayPacer
from hypothesis import given, settings
from hypothesis import strategies as st

DAY = pd.Timestamp("2024-01-02 14:30", tz="UTC")


def _chunk(symbol: str, n: int) -> Chunk:
    open_ = DAY + pd.Timedelta(days=n)
    return Chunk(symbol, "1m", (Session(open_, open_ + pd.Timedelta(hours=6, minutes=30)),))


@settings(max_examples=40, deadline=None)
@given(symbols=st.lists(st.sampled_from(["AAPL", "MSFT", "IBM"]), min_size=1, max_size=150))
def test_the_schedule_never_breaks_the_gateways_pacing_rules(symbols: list[str]) -> None:
    chunks = [_chunk(symbol, i) for i, symbol in enumerate(symbols)]
    times = pacing_schedule(chunks)
    assert times == sorted(times)
    now = [0.0]
    gateway = GatewayPacer(enabled=True, clock=lambda: now[0])
    for chunk, at in zip(chunks, times, strict=True):
        now[0] = at
        assert gateway.check((chunk.symbol, chunk.end, chunk.duration), (chunk.symbol, "TRADES")) is None
    assert gateway.violations == 0


def test_the_first_sixty_requests_of_different_contracts_go_at_once_then_wait_ten_minutes() -> None:
    chunks = [_chunk(["AAPL", "MSFT", "IBM", "SPY", "QQQ"][i % 5], i) for i in range(61)]
    times = pacing_schedule(chunks)
    assert times[59] == 5.0  # 12 per contract, at most 5 per contract in 2.5 s: bursts at 0, 2.5 and 5 s
    assert 600.0 <= times[60] <= 610.0
