"""Historical pacing limiter, the bar cache and the quote book (pure logic)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
from copilot_quant.brokers.bar_cache import BarCache, QuoteBook
from copilot_quant.brokers.pacing import HistoricalPacer, PacingRules
from hypothesis import given
from hypothesis import strategies as st


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_identical_requests_are_spaced_by_fifteen_seconds():
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock)
    assert pacer.reserve("AAPL", "q1") == 0
    assert pacer.reserve("AAPL", "q1") == 15.0
    clock.t += 20
    assert pacer.reserve("AAPL", "q2") == 0


def test_at_most_five_requests_per_contract_in_two_seconds():
    pacer = HistoricalPacer(clock=FakeClock())
    waits = [pacer.reserve("AAPL", f"q{i}") for i in range(7)]
    assert waits[:5] == [0] * 5
    assert waits[5] == 2.0
    assert waits[6] == 2.0


@given(st.integers(min_value=1, max_value=150))
def test_no_window_ever_holds_more_than_the_global_limit(n):
    rules = PacingRules(global_max=60, global_window=600.0)
    pacer = HistoricalPacer(rules=rules, clock=FakeClock())
    times = sorted(1000.0 + pacer.reserve(f"S{i % 40}", i) for i in range(n))
    for i, t in enumerate(times):
        inside = [u for u in times[i:] if u < t + rules.global_window]
        assert len(inside) <= rules.global_max


def _bars(days: list[str]) -> pd.DataFrame:
    idx = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in days])
    return pd.DataFrame({c: [1.0] * len(days) for c in ("Open", "High", "Low", "Close", "Volume")}, index=idx)


def test_bar_cache_keeps_the_last_n_bars_and_newer_rows_win():
    cache = BarCache(size=3)
    cache.merge("AAPL", "1d", _bars(["2024-01-01", "2024-01-02"]))
    newer = _bars(["2024-01-02", "2024-01-03", "2024-01-04"])
    newer["Close"] = 2.0
    out = cache.merge("AAPL", "1d", newer)
    assert list(out.index.strftime("%m-%d")) == ["01-02", "01-03", "01-04"]
    assert (out["Close"] == 2.0).all()
    assert cache.get("MSFT", "1d") is None


def test_quote_book_keeps_ticks_with_missing_sizes():
    book = QuoteBook()
    now = datetime.now(UTC)
    q = book.update(
        "AAPL",
        last=101.5,
        bid=math.nan,
        ask=math.nan,
        open_=100,
        high=102,
        low=99,
        close=100,
        volume=math.nan,
        time=now,
    )
    assert q is not None
    assert q.price == 101.5
    assert math.isnan(q.volume)
    q = book.update(
        "AAPL",
        last=math.nan,
        bid=math.nan,
        ask=math.nan,
        open_=math.nan,
        high=math.nan,
        low=math.nan,
        close=math.nan,
        volume=5,
        time=now,
    )
    assert q is not None
    assert q.price == 101.5
    assert q.volume == 5
    q = book.update(
        "MSFT",
        last=math.nan,
        bid=10.0,
        ask=10.2,
        open_=math.nan,
        high=math.nan,
        low=math.nan,
        close=math.nan,
        volume=math.nan,
        time=now,
    )
    assert q is not None
    assert math.isclose(q.price, 10.1)
    bar = book.as_bar("AAPL")
    assert bar is not None
    assert list(bar.index) == ["Open", "High", "Low", "Close", "Volume"]
    assert book.wait_for(["AAPL", "MSFT"], 0.01)
    assert not book.wait_for(["IBM"], 0.01)
