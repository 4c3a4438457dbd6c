"""LiveDataFeedAdapter against the simulated gateway with the real ib_async client."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.errors import DataError, DataUnavailableError, UnknownSymbolError

from .conftest import wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NY = ZoneInfo("America/New_York")


@pytest.fixture
def adapter(gateway):
    a = LiveDataFeedAdapter(paper_trading=True, port=gateway.port, client_id=20)
    yield a
    a.disconnect()


def test_it_is_an_idatafeed_and_the_constructor_does_not_connect(gateway):
    a = LiveDataFeedAdapter(port=gateway.port)
    assert isinstance(a, IDataFeed)
    assert not a.is_connected()
    assert not gateway.core.sessions


def test_connect_and_disconnect(adapter, gateway):
    assert adapter.connect(timeout=5)
    assert adapter.is_connected()
    assert list(gateway.core.sessions) == [21]  # standalone data adapter: client_id + 1
    adapter.disconnect()
    assert not adapter.is_connected()
    assert not adapter.is_fallback_mode()  # a deliberate disconnect is not a lost connection


def test_connect_returns_false_when_nothing_listens():
    a = LiveDataFeedAdapter(port=1, client_id=5)
    assert a.connect(timeout=1) is False
    a.disconnect()


def test_history_has_exactly_the_backtest_shape_and_values(adapter, feed):
    adapter.connect(timeout=5)
    start, end = datetime(2024, 1, 2), datetime(2024, 2, 15)
    got = adapter.get_historical_data("AAPL", start_date=start, end_date=end, interval="1d")
    expected = feed.get_historical_data("AAPL", start_date=start, end_date=end, interval="1d")
    assert list(got.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert str(got.index.tz) == "UTC"
    assert got.index.is_monotonic_increasing
    assert got.index.is_unique
    pd.testing.assert_index_equal(got.index, expected.index)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-6)


def test_naive_and_aware_dates_give_the_same_bars(adapter):
    adapter.connect(timeout=5)
    naive = adapter.get_historical_data("MSFT", datetime(2024, 1, 2), datetime(2024, 1, 31))
    aware = adapter.get_historical_data(
        "MSFT", datetime(2024, 1, 2, tzinfo=NY), datetime(2024, 1, 31, tzinfo=NY)
    )
    pd.testing.assert_frame_equal(naive, aware)
    assert naive.index[-1] == pd.Timestamp("2024-01-31 21:00", tz="UTC")  # the end date's bar is included


def test_data_is_requested_up_to_the_end_date(adapter):
    adapter.connect(timeout=5)
    old = adapter.get_historical_data("AAPL", datetime(2023, 1, 3), datetime(2023, 1, 31))
    assert not old.empty
    assert old.index[0] >= pd.Timestamp("2023-01-03", tz="UTC")
    assert old.index[-1] == pd.Timestamp("2023-01-31 21:00", tz="UTC")


def test_intraday_bars_are_stamped_at_bar_end(adapter):
    adapter.connect(timeout=5)
    bars = adapter.get_historical_data(
        "AAPL", datetime(2024, 2, 29, 9, 30), datetime(2024, 2, 29), interval="30m"
    )
    assert bars.index[0] == pd.Timestamp("2024-02-29 15:00", tz="UTC")  # 09:30-10:00 NY bar
    assert bars.index[-1] == pd.Timestamp("2024-02-29 21:00", tz="UTC")  # 15:30-16:00 NY bar
    assert len(bars) == 13


def test_unsupported_interval_and_unknown_symbol_raise(adapter):
    adapter.connect(timeout=5)
    with pytest.raises(DataError, match="unsupported interval"):
        adapter.get_historical_data("AAPL", interval="3d")
    with pytest.raises(UnknownSymbolError):
        adapter.get_historical_data("NOPE", datetime(2024, 1, 2))


def test_multiple_symbols_have_metric_symbol_columns(adapter):
    adapter.connect(timeout=5)
    data = adapter.get_multiple_symbols(["AAPL", "MSFT"], datetime(2024, 1, 2), datetime(2024, 1, 31))
    assert data.columns.names == ["Metric", "Symbol"]
    assert ("Close", "AAPL") in data.columns
    assert ("Close", "MSFT") in data.columns
    assert not data[("Close", "AAPL")].isna().any()


def test_latest_price_is_there_right_after_subscribe(adapter, gateway):
    adapter.connect(timeout=5)
    assert adapter.subscribe(["AAPL", "NOPE"]) == {"AAPL": True, "NOPE": False}
    price = adapter.get_latest_price("AAPL")
    assert price is not None
    assert price > 0
    bar = adapter.get_latest_bar("AAPL")
    assert bar is not None
    assert list(bar.index) == ["Open", "High", "Low", "Close", "Volume"]
    gateway.clock.step(1)
    new_close = gateway.core.market.track("AAPL").last
    assert wait_until(lambda: adapter.get_latest_price("AAPL") == pytest.approx(new_close))
    # named by the last trade's market time (IB's tick 45), not the wall clock: the replay is in the past
    stamp = adapter.get_latest_bar("AAPL").name
    assert abs(stamp - gateway.clock.now) <= pd.Timedelta(days=1)
    assert stamp < pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=30)
    assert adapter.unsubscribe(["AAPL"]) == {"AAPL": True}
    assert adapter.get_latest_price("AAPL") is None


def test_a_lost_connection_serves_the_cache_in_fallback_mode(adapter, gateway):
    adapter.connect(timeout=5)
    cached = adapter.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 2, 1))
    gateway.stop()
    assert wait_until(lambda: not adapter.is_connected())
    assert adapter.is_fallback_mode()
    again = adapter.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 1, 31))
    pd.testing.assert_frame_equal(again, cached.iloc[:-1])
    with pytest.raises(DataUnavailableError, match="nothing is cached"):
        adapter.get_historical_data("MSFT", datetime(2024, 1, 2), datetime(2024, 1, 31))
    gateway.start()
    assert adapter.reconnect()
    assert not adapter.is_fallback_mode()
    assert not adapter.get_historical_data("MSFT", datetime(2024, 1, 2), datetime(2024, 1, 31)).empty


def test_unreachable_without_cache_raises_instead_of_returning_empty():
    a = LiveDataFeedAdapter(port=1, client_id=30, request_timeout=1)
    with pytest.raises(DataUnavailableError, match="nothing is cached"):
        a.get_historical_data("AAPL")
    a.disconnect()


def test_first_use_connects_when_connect_was_not_called(gateway):
    a = LiveDataFeedAdapter(port=gateway.port, client_id=31)
    try:
        assert not a.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 1, 10)).empty
        assert a.is_connected()
    finally:
        a.disconnect()


def test_pacing_limits_are_respected_with_gateway_pacing_on(gateway_factory):
    server = gateway_factory(pacing=True)
    a = LiveDataFeedAdapter(port=server.port, client_id=40, request_timeout=20)
    try:
        assert a.connect(timeout=5)
        frames = [
            a.get_historical_data("AAPL", datetime(2024, 1, 2 + i), datetime(2024, 2, 1)) for i in range(7)
        ]
        assert all(not f.empty for f in frames)
        repeat = a.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 2, 1))
        pd.testing.assert_frame_equal(repeat, frames[0])  # identical request answered without a violation
    finally:
        a.disconnect()


def test_standalone_adapters_use_distinct_client_ids(gateway):
    data = LiveDataFeedAdapter(port=gateway.port, client_id=7)
    broker = LiveBrokerAdapter(port=gateway.port, client_id=7)
    try:
        assert data.connect(timeout=5)
        assert broker.connect(timeout=5)
        assert sorted(gateway.core.sessions) == [7, 8]
    finally:
        data.disconnect()
        broker.disconnect()


def test_a_fifty_symbol_lookback_does_not_trip_pacing(gateway_factory):
    symbols = [f"S{i:02d}" for i in range(50)]
    server = gateway_factory(pacing=True, symbols=symbols)
    a = LiveDataFeedAdapter(port=server.port, client_id=41)
    try:
        assert a.connect(timeout=5)
        data = a.get_multiple_symbols(symbols, datetime(2024, 1, 2), datetime(2024, 2, 1))
        assert sorted(set(data.columns.get_level_values("Symbol"))) == symbols
        assert not data.isna().all().any()
    finally:
        a.disconnect()


def test_a_pacing_violation_is_retried(gateway_factory, caplog):
    from copilot_quant.brokers.pacing import HistoricalPacer, PacingRules

    server = gateway_factory(pacing=True)
    lax = HistoricalPacer(
        rules=PacingRules(per_contract_max=100, identical_window=0.0), violation_backoff=0.5
    )
    a = LiveDataFeedAdapter(port=server.port, client_id=42, pacer=lax)
    try:
        assert a.connect(timeout=5)
        # Seven requests for one contract within 2 s: IB (the gateway) answers 162 to the sixth.
        frames = [
            a.get_historical_data("MSFT", datetime(2024, 1, 2 + i), datetime(2024, 2, 1)) for i in range(7)
        ]
        assert all(not f.empty for f in frames)
        assert "IB pacing violation for MSFT; retrying" in caplog.text  # a 162 really came back
    finally:
        a.disconnect()


FAR_FUTURE = pd.Timestamp("2100-01-01", tz="UTC")


def test_streamed_bars_arrive_in_the_backtest_shape_with_the_replayed_values(adapter, gateway, feed):
    adapter.connect(timeout=5)
    assert adapter.stream_bars(["AAPL"], "1d", lookback_days=10) == {"AAPL": True}
    before = adapter.last_bar_time("AAPL")
    assert before is not None
    for _ in range(3):
        adapter.bars_changed.clear()
        gateway.clock.step(1)
        assert adapter.bars_changed.wait(10)  # the bar-update handler wakes the reader at once
    assert wait_until(lambda: adapter.last_bar_time("AAPL") > before)
    bars = adapter.completed_bars("AAPL", FAR_FUTURE)
    assert list(bars.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert bars.index.is_monotonic_increasing
    assert bars.index.is_unique
    assert str(bars.index.tz) == "UTC"
    assert bars.index[-1] == adapter.last_bar_time("AAPL") == gateway.clock.now
    expected = feed.get_historical_data("AAPL", bars.index[0], bars.index[-1], "1d")
    pd.testing.assert_frame_equal(bars, expected, rtol=1e-6, check_names=False, check_freq=False)
    # Only bars closed by ``now`` are returned; the latest bar is the last streamed one.
    assert adapter.completed_bars("AAPL", bars.index[-2]).index[-1] == bars.index[-2]
    latest = adapter.get_latest_bar("AAPL")
    assert latest is not None
    assert latest.name == bars.index[-1]


def test_concurrent_readers_see_every_streamed_bar_exactly_once(adapter, gateway, feed):
    import threading

    from .conftest import Stepper

    adapter.connect(timeout=5)
    adapter.stream_bars(["AAPL"], "1d", lookback_days=10)
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            frame = adapter.completed_bars("AAPL", FAR_FUTURE)
            if not (frame.index.is_monotonic_increasing and frame.index.is_unique):
                errors.append(f"bad index {frame.index}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    with Stepper(gateway, interval=0.02) as stepper:
        assert wait_until(lambda: stepper.steps >= 15)
    stop.set()
    for r in readers:
        r.join(5)
    assert not errors
    assert wait_until(lambda: adapter.last_bar_time("AAPL") == gateway.clock.now, timeout=5)
    bars = adapter.completed_bars("AAPL", FAR_FUTURE)
    expected = feed.get_historical_data("AAPL", bars.index[0], bars.index[-1], "1d")
    pd.testing.assert_frame_equal(bars, expected, rtol=1e-6, check_names=False, check_freq=False)


def test_a_single_account_is_not_streamed_twice_and_account_values_still_work(gateway):
    broker = LiveBrokerAdapter(port=gateway.port, client_id=30)
    try:
        assert broker.connect(timeout=5)
        session = gateway.core.sessions[30]
        assert session.subs.account_updates  # reqAccountUpdates streams every value once ...
        assert not session.subs.account_updates_multi  # ... with no per-sub-account duplicate
        assert broker.get_cash_balance() == pytest.approx(gateway.config.cash)
        assert broker.get_account_value() == pytest.approx(gateway.config.cash)
        assert broker.get_positions() == {}
    finally:
        broker.disconnect()


def _no_bars_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.getMessage().startswith("no 1d bars for AAPL")
    ]


def test_a_range_after_the_sources_data_returns_no_bars_with_a_warning_saying_why(adapter, caplog):
    """The gateway's market clock is at 2024-03-01: IB answers with older bars, none in the range asked for."""
    adapter.connect(timeout=5)
    got = adapter.get_historical_data("AAPL", start_date=datetime(2025, 1, 1), interval="1d")
    assert got.empty  # still a frame, as the guide's code expects
    assert list(got.columns) == ["Open", "High", "Low", "Close", "Volume"]
    (warning,) = _no_bars_warnings(caplog)
    assert "from 2025-01-01 00:00 to now (New York time)" in warning
    assert "IB's data ends at 2024-02-29 16:00" in warning  # the last bar before the market clock
    assert "its market time" in warning
    assert "check the date range" in warning


def test_ibs_no_data_answer_is_quoted_in_the_warning(adapter, caplog):
    adapter.connect(timeout=5)
    got = adapter.get_historical_data(
        "AAPL", start_date=datetime(1990, 1, 1), end_date=datetime(1990, 2, 1), interval="1d"
    )
    assert got.empty
    (warning,) = _no_bars_warnings(caplog)
    assert "from 1990-01-01 00:00 to 1990-02-01 23:59" in warning
    assert "IB error 162" in warning
    assert "HMDS query returned no data" in warning


def test_a_range_between_sessions_says_what_ib_returned_around_it(adapter, caplog):
    adapter.connect(timeout=5)
    assert adapter.get_historical_data("AAPL", datetime(2024, 2, 3), datetime(2024, 2, 4)).empty  # a weekend
    (warning,) = _no_bars_warnings(caplog)
    assert "bars IB returned cover" in warning
    assert "to 2024-02-02 16:00, none in that range" in warning


def test_a_request_with_bars_logs_no_warning(adapter, caplog):
    adapter.connect(timeout=5)
    assert not adapter.get_historical_data("AAPL", datetime(2024, 1, 2), datetime(2024, 2, 1)).empty
    assert not _no_bars_warnings(caplog)
