"""Pure logic of the gateway: contracts, bar sizes and durations, market replay, clock, pacing."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import ConfigError, GatewayError
from copilot_quant.gateway.clock import SimClock
from copilot_quant.gateway.contracts import ContractRegistry, ContractRequest, con_id_for
from copilot_quant.gateway.history import (
    HistoryError,
    HistoryService,
    format_bar_date,
    parse_bar_size,
    parse_duration,
    parse_end_time,
)
from copilot_quant.gateway.market import MarketReplay, price_path
from copilot_quant.gateway.pacing import HistoricalPacer
from hypothesis import given
from hypothesis import strategies as st

NOW = pd.Timestamp("2024-01-10 21:00", tz="UTC")


# -- contracts ---------------------------------------------------------------------------------------
def test_well_known_symbols_have_ibs_conids_and_others_a_stable_hash():
    assert (con_id_for("AAPL"), con_id_for("MSFT"), con_id_for("IBM"), con_id_for("GOOG")) == (
        265598,
        272093,
        8314,
        208813720,
    )
    assert con_id_for("XYZ") == con_id_for("xyz") != con_id_for("XYZW")


def test_registry_resolves_by_symbol_or_conid_and_refuses_what_tws_would():
    registry = ContractRegistry(["AAPL", "IBM"])
    assert registry.resolve(ContractRequest(symbol="AAPL", sec_type="STK", exchange="SMART")).con_id == 265598
    assert registry.resolve(ContractRequest(con_id=8314)).symbol == "IBM"
    assert registry.resolve(ContractRequest(symbol="AAPL", currency="EUR")) is None
    assert registry.resolve(ContractRequest(symbol="AAPL", sec_type="OPT")) is None
    assert registry.resolve(ContractRequest(symbol="MSFT")) is None
    assert registry.resolve(ContractRequest(con_id=265598, symbol="IBM")) is None


def test_any_symbol_registry_defines_new_tickers_on_request():
    registry = ContractRegistry(any_symbol=True)
    assert registry.by_symbol("zzz").con_id == con_id_for("ZZZ")
    assert registry.by_symbol("not a ticker!") is None


# -- history parsing ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "source"),
    [("1 min", "intraday", "1m"), ("5 mins", "intraday", "5m"), ("20 mins", "intraday", "5m"),
     ("1 hour", "intraday", "1h"), ("4 hours", "intraday", "1h"), ("1 day", "1d", "1d"),
     ("1 week", "1wk", "1wk"), ("1 month", "1mo", "1mo"), ("30 secs", "secs", None)],
)  # fmt: skip
def test_bar_sizes(text, kind, source):
    size = parse_bar_size(text)
    assert (size.kind, size.source) == (kind, source)


@pytest.mark.parametrize("text", ["7 mins", "2 days", "1 fortnight", "", "mins"])
def test_invalid_bar_sizes_are_321(text):
    with pytest.raises(HistoryError) as info:
        parse_bar_size(text)
    assert info.value.code == 321


def test_durations():
    assert parse_duration("5 D") == (5, "D")
    assert parse_duration("3600 S") == (3600, "S")
    for bad in ("5", "0 D", "5 X", "D 5"):
        with pytest.raises(HistoryError):
            parse_duration(bad)


def test_end_time_formats_and_never_after_now():
    assert parse_end_time("", NOW) == NOW
    assert parse_end_time("20240105 21:00:00 UTC", NOW) == pd.Timestamp("2024-01-05 21:00", tz="UTC")
    assert parse_end_time("20240105-21:00:00", NOW) == pd.Timestamp("2024-01-05 21:00", tz="UTC")
    assert parse_end_time("20240105 16:00:00 US/Eastern", NOW) == pd.Timestamp("2024-01-05 21:00", tz="UTC")
    assert parse_end_time("20250105 16:00:00 UTC", NOW) == NOW
    with pytest.raises(HistoryError):
        parse_end_time("yesterday at noon", NOW)


def test_bar_dates_follow_tws_formats():
    start, end = pd.Timestamp("2024-01-05 14:30", tz="UTC"), pd.Timestamp("2024-01-05 21:00", tz="UTC")
    assert format_bar_date(start, end, "1d", 1) == "20240105"
    assert format_bar_date(start, end, "intraday", 1) == "20240105 09:30:00 US/Eastern"
    assert format_bar_date(start, end, "intraday", 2) == str(int(start.timestamp()))


# -- market replay and clock ------------------------------------------------------------------------
def test_price_path_follows_the_shared_intrabar_rule():
    assert price_path(10, 12, 9, 11) == (10, 9, 12, 11)
    assert price_path(10, 12, 9, 9.5) == (10, 12, 9, 9.5)


def _minute_market(periods: int = 400) -> MarketReplay:
    feed = SyntheticDataProvider(["AAPL"], seed=1, start="2024-01-02", periods=periods, interval="1m")
    market = MarketReplay(feed, "1m")
    market.track_all(["AAPL"])
    return market


def test_default_start_is_the_last_bar_and_history_never_includes_the_future():
    market = _minute_market()
    frame = market.replayed_frame("AAPL")
    assert frame.index[-1] == market.now
    history = HistoryService(market.feed, market)
    answer = history.query("AAPL", end="", duration="1 D", bar_size="1 min", what="TRADES", format_date=2)
    assert int(answer.bars[-1].date) + 60 <= int(market.now.timestamp())


def test_replay_from_a_start_date_replays_the_data_then_walks_deterministically():
    feed = SyntheticDataProvider(["AAPL"], seed=1, start="2024-01-02", periods=20, interval="1d")
    data = feed.get_historical_data("AAPL")
    market = MarketReplay(feed, "1d", start=data.index[15])
    market.track_all(["AAPL"])
    replayed = [market.advance()[0] for _ in range(4)]
    assert [b.close for b in replayed] == pytest.approx(list(data["Close"].iloc[16:20]))
    walked = [market.advance()[0] for _ in range(3)]
    assert walked[0].open == pytest.approx(replayed[-1].close)
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in walked)
    again = MarketReplay(feed, "1d", start=data.index[15])
    again.track_all(["AAPL"])
    assert [again.advance()[0] for _ in range(7)][4:] == walked


def test_clock_steps_deliver_every_path_price_in_order():
    market = _minute_market()
    prices: list[float] = []
    market.tick_listeners.append(lambda point, quote: prices.append(point.price))
    clock = SimClock(market)
    before = clock.now
    bars = clock.step(2)
    assert len(bars) == 2
    assert clock.now > before
    assert prices == [p for b in bars for p in price_path(b.open, b.high, b.low, b.close)]
    with pytest.raises(GatewayError):
        clock.step(-1)


def test_bad_replay_settings_are_config_errors():
    feed = SyntheticDataProvider(["AAPL"], periods=10)
    with pytest.raises(ConfigError):
        MarketReplay(feed, "1wk")
    with pytest.raises(ConfigError):
        MarketReplay(feed, "1d", spread=-1)


@given(st.integers(min_value=1, max_value=30))
def test_stepping_never_makes_future_bars_visible(steps):
    market = _minute_market(200)
    for _ in range(steps):
        market.advance()
    frame = market.replayed_frame("AAPL")
    assert frame.index[-1] <= market.now
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique


# -- pacing ---------------------------------------------------------------------------------------------
def test_pacing_rules():
    now = [0.0]
    pacer = HistoricalPacer(enabled=True, clock=lambda: now[0])
    assert pacer.check("a", "X") is None
    assert "identical" in (pacer.check("a", "X") or "")
    now[0] = 16.0
    assert pacer.check("a", "X") is None
    for i in range(4):
        assert pacer.check(f"b{i}", "X") is None
    assert "same contract" in (pacer.check("b9", "X") or "")
    off = HistoricalPacer(enabled=False)
    assert all(off.check("same", "X") is None for _ in range(100))


def test_pacing_caps_requests_per_ten_minutes():
    now = [0.0]
    pacer = HistoricalPacer(enabled=True, clock=lambda: now[0])
    for i in range(60):
        now[0] += 3.0
        assert pacer.check(i, i) is None
    assert "60 requests" in (pacer.check("one more", "new") or "")
