"""The wall-clock paper market: live prices, 5-second bars, interval bars completing in real time.

The market logic is driven with explicit instants (``catch_up``), so these tests never wait for the clock;
the last test runs a bare ``copilot-quant gateway`` and trades against it with ib_async.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pandas as pd
import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.history import HistoryService, parse_bar_size
from copilot_quant.gateway.market import Bar, MarketReplay, PricePoint, Quote
from copilot_quant.gateway.testing import connected_ib, running_gateway
from copilot_quant.gateway.wallclock import WallClockMarket, live_bar_end
from ib_async import IB, MarketOrder, Stock

from .conftest import wait_until

UTC = "UTC"
SATURDAY = pd.Timestamp("2026-12-05 15:00:07", tz=UTC)  # NYSE closed
MONDAY_BEFORE_OPEN = pd.Timestamp("2026-12-07 14:29:50", tz=UTC)  # 09:29:50 New York


class Recorder:
    """Everything the market tells its listeners, in order."""

    def __init__(self, market: MarketReplay) -> None:
        self.events: list[tuple[str, object]] = []
        market.tick_listeners.append(self.on_tick)
        market.bar_listeners.append(lambda bar: self.events.append(("bar", bar)))
        market.step_listeners.append(lambda end, closed: self.events.append(("step", (end, closed))))

    def on_tick(self, point: PricePoint, quote: Quote) -> None:
        self.events.append(("tick", point))

    def of(self, kind: str) -> list:
        return [item for name, item in self.events if name == kind]


def live_market(start: pd.Timestamp, *, hours: str = "always", seed: int = 0, interval: str = "1m"):
    feed = SyntheticDataProvider(["AAPL"], seed=3, start="2024-01-02", periods=400, interval="1m")
    market = MarketReplay(feed, interval, start, seed=seed)
    market.track_all(["AAPL"])
    recorder = Recorder(market)
    wall = WallClockMarket(market, hours=hours, seed=seed)
    wall.catch_up(start)
    return market, wall, recorder


def test_an_always_open_market_trades_every_second_on_the_cent_grid_in_whole_shares_on_a_saturday():
    _, wall, seen = live_market(SATURDAY)
    wall.catch_up(SATURDAY + pd.Timedelta(minutes=2))
    ticks = seen.of("tick")
    assert len(ticks) == 121  # the start instant and every second after it
    assert [t.time for t in ticks] == list(pd.date_range(SATURDAY, periods=121, freq="s"))
    assert all(abs(t.price * 100 - round(t.price * 100)) < 1e-6 for t in ticks)
    assert all(t.size >= 1 and float(t.size).is_integer() for t in ticks)
    assert len({t.price for t in ticks}) > 3  # it moves
    assert wall.now == SATURDAY + pd.Timedelta(minutes=2)


def test_each_five_second_bar_aggregates_its_trades_and_goes_out_before_the_next_trade():
    _, wall, seen = live_market(SATURDAY)
    wall.catch_up(SATURDAY + pd.Timedelta(seconds=30))
    bars = seen.of("bar")
    assert [b.end for b in bars] == list(pd.date_range("2026-12-05 15:00:10", periods=6, freq="5s", tz=UTC))
    ticks = seen.of("tick")
    for bar in bars:
        inside = [t for t in ticks if bar.start <= t.time < bar.end]
        prices = [t.price for t in inside]
        assert (bar.open, bar.high, bar.low, bar.close) == (prices[0], max(prices), min(prices), prices[-1])
        assert bar.volume == sum(t.size for t in inside)
        # a client that sees a trade stamped at the bar's end knows the bar is complete
        order = [
            kind for kind, item in seen.events if item is bar or (kind == "tick" and item.time == bar.end)
        ]
        assert order == ["bar", "tick"]
    # the first window started before the market did: stamped at its 5 s boundary, it holds 3 trades
    assert bars[0].start == pd.Timestamp("2026-12-05 15:00:05", tz=UTC)
    assert len([t for t in ticks if t.time < bars[0].end]) == 3


def test_interval_bars_join_the_history_when_they_end_and_not_before():
    market, wall, seen = live_market(SATURDAY)
    wall.catch_up(pd.Timestamp("2026-12-05 15:00:59", tz=UTC))
    assert market.now == SATURDAY  # the first minute is still forming
    assert seen.of("step") == []
    wall.catch_up(pd.Timestamp("2026-12-05 15:01:30", tz=UTC))
    end = pd.Timestamp("2026-12-05 15:01", tz=UTC)
    assert market.now == end
    assert seen.of("step") == [(end, False)]
    history = market.replayed_frame("AAPL")
    assert history.index[-1] == end
    prices = [t.price for t in seen.of("tick") if t.time < end]
    assert history.iloc[-1][["Open", "High", "Low", "Close"]].tolist() == [
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
    ]


def test_an_always_open_session_ends_at_new_york_midnight():
    before_midnight = pd.Timestamp("2026-12-05 04:59:50", tz=UTC)  # 23:59:50 New York
    _, wall, seen = live_market(before_midnight)
    wall.catch_up(before_midnight + pd.Timedelta(seconds=20))
    assert (pd.Timestamp("2026-12-05 05:00", tz=UTC), True) in seen.of("step")


def test_on_exchange_hours_nothing_trades_while_closed_and_trading_starts_at_the_bell():
    _, wall, seen = live_market(SATURDAY, hours="exchange")
    wall.catch_up(SATURDAY + pd.Timedelta(minutes=3))
    assert seen.of("tick") == []
    assert seen.of("bar") == []
    _, wall, seen = live_market(MONDAY_BEFORE_OPEN, hours="exchange")
    wall.catch_up(MONDAY_BEFORE_OPEN + pd.Timedelta(seconds=20))
    assert seen.of("tick")[0].time == pd.Timestamp("2026-12-07 14:30", tz=UTC)


def test_the_same_seed_trades_the_same_prices_and_another_seed_does_not():
    def prices(seed: int) -> list[float]:
        _, wall, seen = live_market(SATURDAY, seed=seed)
        wall.catch_up(SATURDAY + pd.Timedelta(seconds=20))
        return [t.price for t in seen.of("tick")]

    assert prices(1) == prices(1)
    assert prices(1) != prices(2)


def test_after_a_long_stall_the_market_jumps_to_the_present_instead_of_replaying_it():
    _, wall, seen = live_market(SATURDAY)
    later = SATURDAY + pd.Timedelta(hours=2, milliseconds=300)
    assert wall.catch_up(later) == 1
    assert wall.now == later.floor("s")
    assert len(seen.of("tick")) == 2  # the start and the present, nothing in between


@pytest.mark.parametrize(
    ("instant", "interval", "hours", "end"),
    [
        ("2026-12-05 15:00:07", "1m", "always", "2026-12-05 15:01"),
        ("2026-12-05 15:00:00", "5m", "always", "2026-12-05 15:05"),
        ("2026-12-05 15:00:07", "1d", "always", "2026-12-06 05:00"),  # New York midnight
        ("2026-12-05 15:00:07", "1m", "exchange", "2026-12-07 14:31"),  # Saturday: Monday's first bar
        ("2026-12-07 20:59:30", "1m", "exchange", "2026-12-07 21:00"),
        ("2026-12-07 20:30:00", "1h", "exchange", "2026-12-07 21:00"),  # the last bar ends at the close
        ("2026-12-07 15:00:00", "1d", "exchange", "2026-12-07 21:00"),
    ],
)
def test_live_bar_ends(instant, interval, hours, end):
    assert live_bar_end(pd.Timestamp(instant, tz=UTC), interval, hours) == pd.Timestamp(end, tz=UTC)


# -- a bare `copilot-quant gateway` ----------------------------------------------------------------------
@pytest.fixture
def bare_gateway() -> Iterator[int]:
    """``copilot-quant gateway --port 0`` (every other option at its default) in a subprocess; its port."""
    code = "import sys; from copilot_quant.cli import main; sys.argv[0] = 'copilot-quant'; main()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "gateway", "--port", "0", "--run-for", "90"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", first)
        assert match, first + process.stdout.read()
        yield int(match.group(1))
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.network
@pytest.mark.timeout(60)
def test_a_bare_gateway_fills_a_market_order_at_any_hour_and_streams_new_5s_bars(bare_gateway):
    ib = IB()
    ib.connect("127.0.0.1", bare_gateway, clientId=1, timeout=10)
    try:
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        assert wait_until(ib, lambda: trade.orderStatus.status == "Filled", timeout=15)
        fill = trade.fills[0].execution
        assert abs(fill.price * 100 - round(fill.price * 100)) < 1e-6  # a price the market printed
        bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        assert wait_until(ib, lambda: any(bar.time > fill.time for bar in bars), timeout=20)
        bar = bars[-1]
        assert bar.time.second % 5 == 0
        assert bar.low <= bar.open_ <= bar.high
        assert bar.low <= bar.close <= bar.high
        assert bar.volume > 0
        # the market's clock is the wall clock: current time is never behind the trades it printed
        assert ib.reqCurrentTime() >= bar.time
    finally:
        ib.disconnect()


@pytest.mark.parametrize(
    ("start", "label"),
    [
        ("2026-12-07 10:49:35", "20261207 05:49:00 US/Eastern"),  # a trading day, before the bell
        ("2026-12-07 14:31:05", "20261207 09:31:00 US/Eastern"),  # in the session
        ("2026-12-05 15:00:05", "20261205 10:00:00 US/Eastern"),  # a Saturday
    ],
)
def test_keep_up_to_date_buckets_of_an_always_open_market_follow_the_clock_outside_sessions(start, label):
    market, _, _ = live_market(SATURDAY)
    bar = Bar(
        "AAPL",
        pd.Timestamp(start, tz=UTC),
        pd.Timestamp(start, tz=UTC) + pd.Timedelta(seconds=5),
        1,
        1,
        1,
        1,
        1,
    )
    service = HistoryService(market.feed, market)
    assert service.bucket_label(bar, parse_bar_size("1 min"), 1) == label


@pytest.mark.network
@pytest.mark.timeout(60)
def test_keep_up_to_date_bars_follow_the_wall_clock_market_every_five_seconds():
    with running_gateway(data="synthetic", clock="wall", bar_interval="1m") as gw, connected_ib(gw) as ib:
        [aapl] = ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        bars = ib.reqHistoricalData(aapl, "", "5 D", "1 min", "TRADES", False, keepUpToDate=True)
        assert bars
        history_end = bars[-1].date
        updates: list[object] = []
        bars.updateEvent += lambda bar_list, has_new_bar: updates.append(bar_list[-1])
        assert wait_until(ib, lambda: len(updates) >= 2, timeout=20)
        latest = bars[-1]
        assert latest.date > history_end  # the forming minute of the live market, not the data's last bar
        assert latest.date <= ib.reqCurrentTime()
        assert latest.low <= latest.close <= latest.high
