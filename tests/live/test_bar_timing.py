"""When is a streamed bar complete? Decided from IB's own trade times, without a clock round trip per bar.

The engine hands a bar to ``on_data`` only once the broker's clock has reached the bar's close: proven by a
trade at or after that close (tick 45, the last trade's time) or by ``reqCurrentTime``. These tests pin the
two halves: no forming bar is ever delivered early (no look-ahead), and a steady stream of completed bars
costs no ``reqCurrentTime`` at all.
"""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]


class Watcher(Strategy):
    """Records each call with the gateway's clock at that moment (what the market had reached)."""

    def __init__(self, server) -> None:
        super().__init__()
        self.server = server
        self.calls: list[tuple[pd.Timestamp, pd.DataFrame, pd.Timestamp]] = []

    def on_data(self, timestamp, data):
        self.calls.append((timestamp, data, self.server.clock.now))


def _count_clock_requests(engine: LiveStrategyEngine) -> list[int]:
    asked = [0]
    original = engine.data_feed.server_time

    def server_time():
        asked[0] += 1
        return original()

    engine.data_feed.server_time = server_time  # type: ignore[method-assign]
    return asked


def test_completed_daily_bars_need_no_clock_round_trip(gateway):
    engine = LiveStrategyEngine(port=gateway.port, client_id=81, update_interval=3600)
    strategy = Watcher(gateway)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        asked = _count_clock_requests(engine)
        for n in range(1, 6):
            gateway.clock.step(1)
            assert wait_until(lambda n=n: len(strategy.calls) == n)
        # Each bar was complete when delivered, and the trade times proved it: no reqCurrentTime.
        assert all(stamp <= now for stamp, _, now in strategy.calls)
        assert [stamp for stamp, _, _ in strategy.calls] == sorted({s for s, _, _ in strategy.calls})
        assert asked[0] == 0
    finally:
        engine.disconnect()


def test_a_forming_daily_bar_waits_for_the_close(gateway_factory):
    """Hourly market, daily strategy: the day's bar forms for six steps and is delivered at the close."""
    server = gateway_factory(bar_interval="1h", start="2024-03-04 09:30")
    engine = LiveStrategyEngine(port=server.port, client_id=82, update_interval=3600)
    strategy = Watcher(server)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        asked = _count_clock_requests(engine)
        day: list = []
        for _ in range(6):  # 09:30 … 15:30 New York: the day's bar keeps forming
            day += server.clock.step(1)
            assert wait_until(lambda: engine.data_feed.last_bar_time("AAPL") is not None)
        assert not wait_until(lambda: len(strategy.calls) > 0, timeout=0.5)  # nothing closed yet
        day += server.clock.step(1)  # 15:30-16:00, the session's last bar: the day closes
        assert wait_until(lambda: len(strategy.calls) == 1)
        stamp, data, now = strategy.calls[0]
        close = pd.Timestamp("2024-03-04 16:00", tz="America/New_York").tz_convert("UTC")
        assert stamp == close == data.index[-1]
        assert now >= close
        aapl = [bar for bar in day if bar.symbol == "AAPL"]
        last = data.iloc[-1]
        # The complete day, not a snapshot of it: open of the first hour, close of the last, full range.
        assert last["Open"] == pytest.approx(aapl[0].open)
        assert last["Close"] == pytest.approx(aapl[-1].close)
        assert last["High"] == pytest.approx(max(b.high for b in aapl))
        assert last["Low"] == pytest.approx(min(b.low for b in aapl))
        # One clock question for the newly seen forming bar; its updates and its completion cost none.
        assert asked[0] <= 1
    finally:
        engine.disconnect()


def test_the_feed_reports_the_last_trade_time_from_tick_45(gateway):
    adapter = LiveDataFeedAdapter(port=gateway.port, client_id=83)
    try:
        assert adapter.connect(timeout=5)
        adapter.subscribe(["AAPL"])
        gateway.clock.step(1)
        assert wait_until(lambda: adapter.last_trade_time() == gateway.clock.now)
        assert adapter.last_trade_ns() == gateway.clock.now.value
        gateway.clock.step(1)
        assert wait_until(lambda: adapter.last_trade_time() == gateway.clock.now)
    finally:
        adapter.disconnect()


def test_a_weekly_strategy_gets_each_week_once_when_its_last_session_closes(gateway):
    """Daily market, weekly bars: the week's bar reaches on_data once, complete, at Friday's close (as in a
    backtest on weekly bars), never as a partial week on Monday … Thursday."""
    engine = LiveStrategyEngine(port=gateway.port, client_id=84, update_interval=3600)
    strategy = Watcher(gateway)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=60, data_interval="1wk")
        delivered = []
        for _ in range(10):
            delivered += [bar for bar in gateway.clock.step(1) if bar.symbol == "AAPL"]
            stamp = delivered[-1].end
            assert wait_until(lambda s=stamp: engine.data_feed.last_bar_time("AAPL") == s)
        assert wait_until(lambda: len(strategy.calls) == 2), [(str(s), str(n)) for s, _, n in strategy.calls]
        assert not wait_until(lambda: len(strategy.calls) > 2, timeout=0.3)
        fridays = [bar for bar in delivered if bar.end.tz_convert("America/New_York").weekday() == 4]
        assert [stamp for stamp, _, _ in strategy.calls] == [bar.end for bar in fridays]
        assert all(now >= stamp and data.index[-1] == stamp for stamp, data, now in strategy.calls)
        # The second week was streamed whole: its bar is exactly that week's sessions aggregated.
        first_friday, second_friday = (bar.end for bar in fridays)
        week = [bar for bar in delivered if first_friday < bar.end <= second_friday]
        last = strategy.calls[1][1].iloc[-1]
        assert last["Open"] == pytest.approx(week[0].open)
        assert last["Close"] == pytest.approx(week[-1].close)
        assert last["High"] == pytest.approx(max(b.high for b in week))
        assert last["Low"] == pytest.approx(min(b.low for b in week))
        assert last["Volume"] == pytest.approx(sum(b.volume for b in week))
    finally:
        engine.disconnect()


def test_the_daily_loss_day_is_the_exchange_date_by_the_brokers_clock():
    """8 pm in New York is already tomorrow in UTC; the trading day (the daily-loss baseline) is not."""
    engine = LiveStrategyEngine(port=1, client_id=85)  # never connected: only the clock logic is used
    engine.clock.server_ns = pd.Timestamp("2024-03-05 01:30", tz="UTC").value  # 2024-03-04 20:30 New York
    assert str(engine.clock.trading_day()) == "2024-03-04"
    engine.clock.server_ns = pd.Timestamp("2024-03-05 14:30", tz="UTC").value  # next morning's open
    assert str(engine.clock.trading_day()) == "2024-03-05"


def test_a_bar_closed_only_by_the_clock_waits_until_it_has_settled(gateway_factory):
    """No trade ticks (illiquid symbol, delayed data): reqCurrentTime alone says when a bar closed, and IB's
    last rewrite of the bar can lag its close by ~5 s, so the bar waits until the clock is well past it."""
    server = gateway_factory(bar_interval="1h", start="2024-03-04 09:30")
    engine = LiveStrategyEngine(port=server.port, client_id=86, update_interval=0.2)
    strategy = Watcher(server)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        engine.data_feed.synced_trade_ns = lambda symbols: None  # type: ignore[method-assign]
        asked = _count_clock_requests(engine)
        day = [bar for bar in server.clock.step(7) if bar.symbol == "AAPL"]  # through the 16:00 close
        assert wait_until(lambda: asked[0] >= 3)  # the timer keeps asking the clock …
        assert strategy.calls == []  # … which says 16:00: closed, but not settled
        server.clock.step(1)  # next morning: the clock is far past the close
        assert wait_until(lambda: len(strategy.calls) == 1)
        stamp, data, now = strategy.calls[0]
        assert stamp == pd.Timestamp("2024-03-04 16:00", tz="America/New_York").tz_convert("UTC")
        assert now > stamp
        assert data.index[-1] == stamp  # the next day's forming bar is not in the window
        assert data.iloc[-1]["Close"] == pytest.approx(day[-1].close)
        assert data.iloc[-1]["Open"] == pytest.approx(day[0].open)
    finally:
        engine.disconnect()
