"""SampleDataProvider: real bundled prices, adjusted by default, stamped at the session close."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS, IDataFeed
from copilot_quant.data.providers import SampleDataProvider
from copilot_quant.data.validation import validate_bars
from copilot_quant.errors import DataError, UnknownSymbolError
from hypothesis import given
from hypothesis import strategies as st

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def sample() -> SampleDataProvider:
    return SampleDataProvider()


@pytest.fixture(scope="module")
def raw() -> SampleDataProvider:
    return SampleDataProvider(adjust=False)


def test_it_is_a_data_feed_listing_the_bundled_symbols(sample):
    assert isinstance(sample, IDataFeed)
    assert sample.symbols() == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]


def test_bars_follow_the_convention(sample):
    bars = sample.get_historical_data("AAPL")
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing
    assert bars.index.is_unique
    assert len(bars) == 3270
    assert bars.index[0] == pd.Timestamp("2000-03-01 21:00", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2013-03-01 21:00", tz="UTC")


def test_raw_prices_are_the_file_values(raw):
    bar = raw.get_historical_data("AAPL", "2005-02-24", "2005-02-24").iloc[0]
    assert (bar["Open"], bar["High"], bar["Low"], bar["Close"], bar["Volume"]) == (
        88.48,
        89.31,
        87.73,
        88.93,
        27125500.0,
    )


def test_the_2005_split_is_a_crash_in_raw_prices_but_not_when_adjusted(sample, raw):
    before, after = "2005-02-25", "2005-02-28"  # AAPL split 2:1 effective 2005-02-28
    raw_close = raw.get_historical_data("AAPL", before, after)["Close"]
    adj_close = sample.get_historical_data("AAPL", before, after)["Close"]
    assert raw_close.iloc[1] / raw_close.iloc[0] == pytest.approx(0.5, abs=0.02)
    assert adj_close.iloc[1] / adj_close.iloc[0] == pytest.approx(1.0, abs=0.03)


def test_adjustment_scales_prices_and_volume_inversely(sample, raw):
    a = sample.get_historical_data("MSFT", "2010-06-01", "2010-06-30")
    r = raw.get_historical_data("MSFT", "2010-06-01", "2010-06-30")
    factor = a["Close"] / r["Close"]
    for column in ("Open", "High", "Low"):
        pd.testing.assert_series_equal(a[column] / r[column], factor, check_names=False)
    pd.testing.assert_series_equal(a["Volume"] * factor, r["Volume"], check_names=False)


def test_daily_bars_are_stamped_at_the_session_close_including_dst_and_early_closes(sample):
    bars = sample.get_historical_data("IBM", "2012-11-20", "2012-11-26")
    stamps = [ts.tz_convert(NY).strftime("%m-%d %H:%M") for ts in bars.index]
    # Thanksgiving (22nd) is a holiday; the 23rd closed early at 13:00.
    assert stamps == ["11-20 16:00", "11-21 16:00", "11-23 13:00", "11-26 16:00"]
    summer = sample.get_historical_data("IBM", "2012-07-02", "2012-07-02")
    assert summer.index[0] == pd.Timestamp("2012-07-02 20:00", tz="UTC")


def test_end_date_includes_its_whole_day(sample):
    bars = sample.get_historical_data("AAPL", "2010-01-04", "2010-01-08")
    assert bars.index[-1] == pd.Timestamp("2010-01-08 21:00", tz="UTC")
    assert len(bars) == 5
    with_date_objects = sample.get_historical_data("AAPL", date(2010, 1, 4), date(2010, 1, 8))
    pd.testing.assert_frame_equal(bars, with_date_objects)


def test_naive_dates_mean_new_york_time_and_equal_aware_ones(sample):
    naive = sample.get_historical_data("AAPL", datetime(2010, 1, 4), datetime(2010, 1, 8))
    aware = sample.get_historical_data(
        "AAPL", datetime(2010, 1, 4, tzinfo=NY), datetime(2010, 1, 8, tzinfo=NY)
    )
    pd.testing.assert_frame_equal(naive, aware)
    # an aware end before that day's close excludes the bar of that day
    before_close = sample.get_historical_data("AAPL", "2010-01-04", datetime(2010, 1, 8, 20, 59, tzinfo=UTC))
    assert before_close.index[-1] == pd.Timestamp("2010-01-07 21:00", tz="UTC")


def test_lower_case_symbols_work_and_unknown_ones_are_named(sample):
    assert len(sample.get_historical_data("msft", "2010-01-04", "2010-01-05")) == 2
    with pytest.raises(UnknownSymbolError, match=r"'TSLA'.*AAPL"):
        sample.get_historical_data("TSLA")


def test_start_after_end_is_an_error(sample):
    with pytest.raises(DataError, match="Empty date range"):
        sample.get_historical_data("AAPL", "2010-02-01", "2010-01-01")


def test_intraday_intervals_are_refused_and_weekly_is_aggregated(sample):
    with pytest.raises(DataError, match="1m"):
        sample.get_historical_data("AAPL", interval="1m")
    with pytest.raises(DataError, match="Unsupported interval"):
        sample.get_historical_data("AAPL", interval="daily")
    daily = sample.get_historical_data("AAPL", "2010-01-04", "2010-01-15")
    weekly = sample.get_historical_data("AAPL", "2010-01-04", "2010-01-15", interval="1wk")
    assert list(weekly.index) == [daily.index[4], daily.index[-1]]  # each week stamped at its last close
    assert weekly["High"].iloc[0] == daily["High"].iloc[:5].max()
    assert weekly["Open"].iloc[1] == daily["Open"].iloc[5]
    assert weekly["Volume"].iloc[1] == pytest.approx(daily["Volume"].iloc[5:].sum())


def test_multiple_symbols_have_metric_symbol_columns_and_nan_where_absent(sample):
    frame = sample.get_multiple_symbols(["AAPL", "FB"], "2012-05-16", "2012-05-21")
    assert frame[("Close", "AAPL")].notna().all()
    fb = frame[("Close", "FB")]
    assert fb.isna().sum() == 2  # FB listed on 2012-05-18: no bars before, no forward fill
    assert fb.notna().sum() == 2


def test_ticker_info_describes_the_data(sample):
    info = sample.get_ticker_info("goog")
    assert info["symbol"] == "GOOG"
    assert info["adjusted"] is True
    assert info["first"] == pd.Timestamp("2004-08-19 20:00", tz="UTC")
    assert info["bars"] == 2148


@given(
    start=st.dates(min_value=date(1999, 1, 1), max_value=date(2014, 1, 1)),
    days=st.integers(min_value=0, max_value=400),
)
def test_any_range_returns_exactly_the_bars_closing_inside_it(start, days):
    sample = SampleDataProvider()
    full = sample.get_historical_data("IBM")
    end = start + pd.Timedelta(days=days)
    got = sample.get_historical_data("IBM", start, end)
    lo = pd.Timestamp(start).tz_localize(NY)
    hi = (pd.Timestamp(end) + pd.Timedelta(days=1)).tz_localize(NY)
    expected = full[(full.index >= lo) & (full.index < hi)]
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("adjust", [True, False])
def test_every_bundled_series_is_clean_enough_for_strict_validation(adjust):
    provider = SampleDataProvider(adjust=adjust)
    for symbol in provider.symbols():
        bars = provider.get_historical_data(symbol)
        assert validate_bars(bars, symbol, "sample", strict=True).equals(bars)
        assert (bars.index.tz_convert(NY).hour.isin([13, 16])).all()  # closes only, early closes at 13:00
