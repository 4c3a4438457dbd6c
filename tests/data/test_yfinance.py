"""YFinanceProvider without a network: the cache path, the offline path, and never hanging."""

from __future__ import annotations

import logging
import socket
from datetime import datetime

import pandas as pd
import pytest
from copilot_quant.data.providers import YFinanceProvider
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.data.yfinance_provider import default_cache_dir, from_yahoo
from copilot_quant.errors import BarGridError, DataError, DataUnavailableError


def _yahoo_resolves() -> bool:
    try:
        socket.getaddrinfo("query2.finance.yahoo.com", 443)
    except OSError:
        return False
    return True


@pytest.fixture
def bars_2023() -> pd.DataFrame:
    return SyntheticDataProvider(seed=2).get_historical_data("AAPL", "2023-01-01", "2023-12-31")


def test_a_primed_cache_serves_the_guides_request_without_touching_the_network(tmp_path, bars_2023, caplog):
    YFinanceProvider(cache_dir=tmp_path).prime("AAPL", bars_2023)
    caplog.set_level(logging.DEBUG)
    provider = YFinanceProvider(cache_dir=tmp_path)
    data = provider.get_historical_data(
        "AAPL", start_date=datetime(2023, 1, 1), end_date=datetime(2023, 12, 31)
    )
    pd.testing.assert_frame_equal(data, bars_2023, check_freq=False)
    assert not [r for r in caplog.records if r.name.startswith("yfinance")]
    assert provider.symbols() == ["AAPL"]
    assert provider.get_ticker_info("aapl")["cached"]["1d"]["bars"] == len(bars_2023)


def test_the_default_cache_follows_copilot_quant_cache(tmp_path, monkeypatch, bars_2023):
    monkeypatch.setenv("COPILOT_QUANT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "yfinance"
    YFinanceProvider().cache.write("AAPL", bars_2023)
    assert len(YFinanceProvider(offline=True).get_historical_data("AAPL", "2023-03-01", "2023-03-31")) == 23


def test_offline_with_nothing_cached_raises_a_clear_error(tmp_path):
    provider = YFinanceProvider(cache_dir=tmp_path, offline=True)
    with pytest.raises(DataUnavailableError, match=r"offline mode.*prime the cache.*--data sample"):
        provider.get_historical_data("MSFT", "2023-01-01", "2023-12-31")


def test_offline_env_variable_switches_the_network_off(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_QUANT_OFFLINE", "1")
    assert YFinanceProvider(cache_dir=tmp_path).offline


def test_offline_with_a_partial_cache_serves_it_and_warns(tmp_path, bars_2023, caplog):
    provider = YFinanceProvider(cache_dir=tmp_path, offline=True)
    provider.prime("AAPL", bars_2023)
    data = provider.get_historical_data("AAPL", "2022-06-01", "2023-06-30")
    assert data.index[0] == bars_2023.index[0]
    assert data.index[-1] == pd.Timestamp("2023-06-30 20:00", tz="UTC")
    assert "may not cover the whole range" in caplog.text


def test_adjusted_and_raw_prices_are_cached_apart(tmp_path, bars_2023):
    YFinanceProvider(cache_dir=tmp_path).prime("AAPL", bars_2023)
    assert YFinanceProvider(cache_dir=tmp_path, adjust=False).symbols() == []
    with pytest.raises(DataUnavailableError):
        YFinanceProvider(cache_dir=tmp_path, adjust=False, offline=True).get_historical_data("AAPL")


def test_weekly_bars_come_from_the_cached_daily_bars(tmp_path, bars_2023, caplog):
    provider = YFinanceProvider(cache_dir=tmp_path, offline=True)
    provider.prime("AAPL", bars_2023)
    weekly = provider.get_historical_data("AAPL", "2023-01-01", "2023-12-31", interval="1wk")
    assert len(weekly) == 52
    assert weekly["Volume"].sum() == bars_2023["Volume"].sum()
    assert "may not cover" not in caplog.text
    # A range starting mid-week still gets that whole week's bar.
    mid = provider.get_historical_data("AAPL", "2023-03-08", "2023-03-31", interval="1wk")
    march_6_week = bars_2023.loc["2023-03-06":"2023-03-10 23:00"]
    assert mid.index[0] == march_6_week.index[-1]
    assert mid["Open"].iloc[0] == march_6_week["Open"].iloc[0]


@pytest.mark.timeout(60)
@pytest.mark.skipif(_yahoo_resolves(), reason="needs a machine without internet access")
def test_without_network_a_download_fails_fast_with_data_unavailable(tmp_path, bars_2023):
    provider = YFinanceProvider(cache_dir=tmp_path, timeout=3)
    with pytest.raises(DataUnavailableError, match="Yahoo Finance"):
        provider.get_historical_data("MSFT", "2023-01-01", "2023-12-31")
    # A cached symbol is still served when a range beyond the cache cannot be downloaded.
    provider.prime("AAPL", bars_2023)
    assert len(provider.get_historical_data("AAPL", "2023-01-01", "2024-06-30")) == len(bars_2023)


def test_yahoo_stamps_become_session_closes_and_bar_ends():
    raw = pd.DataFrame(
        {"Open": [1.0, 2.0], "High": [2.0, 3.0], "Low": [0.5, 1.0], "Close": [1.5, 2.0], "Volume": [10, 20]},
        index=pd.DatetimeIndex(["2024-11-29", "2024-12-02"]).tz_localize("America/New_York"),
    )
    daily = from_yahoo(raw, "1d")
    assert list(daily.index) == [
        pd.Timestamp("2024-11-29 18:00", tz="UTC"),
        pd.Timestamp("2024-12-02 21:00", tz="UTC"),
    ]
    raw.index = pd.DatetimeIndex(["2024-11-29 12:30", "2024-12-02 15:30"]).tz_localize("America/New_York")
    halves = from_yahoo(raw, "30m")
    assert list(halves.index) == [
        pd.Timestamp("2024-11-29 18:00", tz="UTC"),  # 12:30-13:00, the early close
        pd.Timestamp("2024-12-02 21:00", tz="UTC"),
    ]


def test_yahoos_half_hour_aligned_hours_are_refused_not_mixed_with_ibs_clock_hours():
    # Yahoo's hourly bars start 09:30, 10:30 ...; IB's 09:30, 10:00, 11:00 ... (data/bar_grid.py)
    starts = pd.date_range("2024-12-02 09:30", periods=7, freq="1h", tz="America/New_York")
    raw = pd.DataFrame({"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Volume": 10}, index=starts)
    with pytest.raises(BarGridError, match="10:30") as caught:
        from_yahoo(raw, "1h")
    assert "30m" in str(caught.value)
    assert isinstance(caught.value, DataError)


def test_hourly_bars_are_built_on_ibs_grid_from_cached_half_hours(tmp_path):
    halves = SyntheticDataProvider(seed=4).get_historical_data("AAPL", "2024-12-02", "2024-12-03", "30m")
    provider = YFinanceProvider(cache_dir=tmp_path, offline=True)
    provider.prime("AAPL", halves, "30m")
    hourly = provider.get_historical_data("AAPL", "2024-12-02", "2024-12-03", "1h")
    local = hourly.index.tz_convert("America/New_York").strftime("%H:%M")
    assert list(local[:7]) == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    assert len(hourly) == 14
    assert hourly["Open"].iloc[0] == halves["Open"].iloc[0]
    assert hourly["Close"].iloc[0] == halves["Close"].iloc[0]  # the first hour is the half hour 09:30-10:00
    assert hourly["Volume"].iloc[1] == halves["Volume"].iloc[1:3].sum()
