"""CSVDataProvider on real files: how dates and times are read, adjustment, and every kind of bad file."""

from __future__ import annotations

import gzip
import logging
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS, IDataFeed
from copilot_quant.data.providers import CSVDataProvider
from copilot_quant.errors import BarGridError, DataError, UnknownSymbolError
from hypothesis import given, settings
from hypothesis import strategies as st

DAILY = """Date,Open,High,Low,Close,Volume,Adj Close
2024-01-02,100,110,90,104,1000,52
2024-01-03,104,108,100,106,2000,53
2024-07-03,106,107,101,102,1500,51
"""

INTRADAY = """Datetime,Open,High,Low,Close,Volume
2024-03-08 09:30:00,10,11,9,10.5,100
2024-03-08 09:35:00,10.5,11,10,10.8,120
2024-03-08 09:40:00,10.8,11.2,10.6,11,90
2024-03-11 09:30:00,11,11.5,10.9,11.2,80
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "AAPL.csv", DAILY)
    with gzip.open(tmp_path / "msft.csv.gz", "wt") as f:
        f.write(DAILY.lower())
    write(tmp_path / "notes.txt", "not data")
    return tmp_path


def test_a_directory_serves_one_symbol_per_file(folder):
    provider = CSVDataProvider(folder)
    assert isinstance(provider, IDataFeed)
    assert provider.symbols() == ["AAPL", "MSFT"]
    aapl = provider.get_historical_data("AAPL")
    msft = provider.get_historical_data("msft")
    assert list(aapl.columns) == list(BAR_COLUMNS)
    pd.testing.assert_frame_equal(aapl, msft)  # gzip and lower-case headers read the same


def test_dates_only_are_stamped_at_the_session_close(folder):
    bars = CSVDataProvider(folder).get_historical_data("AAPL")
    assert list(bars.index) == [
        pd.Timestamp("2024-01-02 21:00", tz="UTC"),
        pd.Timestamp("2024-01-03 21:00", tz="UTC"),
        pd.Timestamp("2024-07-03 17:00", tz="UTC"),  # early close, 13:00 New York (EDT)
    ]
    assert CSVDataProvider(folder).interval_of("AAPL") == "1d"


def test_adj_close_adjusts_by_default_and_raw_on_request(folder):
    adjusted = CSVDataProvider(folder).get_historical_data("AAPL")
    raw = CSVDataProvider(folder, adjust=False).get_historical_data("AAPL")
    assert adjusted["Close"].tolist() == [52, 53, 51]
    assert adjusted["Open"].iloc[0] == 50  # 100 * 52/104
    assert adjusted["Volume"].iloc[0] == 2000  # volume scaled inversely
    assert raw["Close"].tolist() == [104, 106, 102]
    assert raw["Volume"].tolist() == [1000, 2000, 1500]


def test_a_single_file_is_named_by_the_symbol_argument_or_its_file_name(tmp_path):
    file = write(tmp_path / "prices.csv", DAILY)
    assert CSVDataProvider(file, symbol="ibm").symbols() == ["IBM"]
    assert CSVDataProvider(file).symbols() == ["PRICES"]
    with pytest.raises(UnknownSymbolError, match=r"'AAPL'.*IBM"):
        CSVDataProvider(file, symbol="IBM").get_historical_data("AAPL")


def test_intraday_times_are_bar_starts_in_new_york_by_default(tmp_path):
    provider = CSVDataProvider(write(tmp_path / "SPY.csv", INTRADAY))
    assert provider.interval_of("SPY") == "5m"  # inferred from the spacing within a day
    bars = provider.get_historical_data("SPY", interval="5m")
    # 09:30 EST bar start -> ends 09:35 EST = 14:35 UTC; the Monday after the DST change is EDT
    assert bars.index[0] == pd.Timestamp("2024-03-08 14:35", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2024-03-11 13:35", tz="UTC")


def test_bar_end_option_keeps_the_times_as_written(tmp_path):
    provider = CSVDataProvider(write(tmp_path / "SPY.csv", INTRADAY), bar_end=True)
    bars = provider.get_historical_data("SPY", interval="5m")
    assert bars.index[0] == pd.Timestamp("2024-03-08 14:30", tz="UTC")


def test_explicit_utc_offsets_are_honoured(tmp_path):
    text = "Date,Open,High,Low,Close,Volume\n2024-03-08T14:30:00Z,1,2,1,2,5\n2024-03-08T14:31:00Z,2,3,2,3,5\n"
    provider = CSVDataProvider(write(tmp_path / "X.csv", text), bar_end=True)
    assert provider.interval_of("X") == "1m"
    bars = provider.get_historical_data("X", interval="1m")
    assert bars.index[0] == pd.Timestamp("2024-03-08 14:30", tz="UTC")


def test_an_intraday_file_serves_coarser_intervals_but_refuses_finer_ones(tmp_path):
    provider = CSVDataProvider(write(tmp_path / "SPY.csv", INTRADAY))
    daily = provider.get_historical_data("SPY", interval="1d")
    assert daily["Open"].tolist() == [10, 11]  # one bar per session, aggregated from the 5m bars
    assert daily["High"].iloc[0] == 11.2
    assert daily["Volume"].iloc[0] == 310
    with pytest.raises(DataError, match="5m"):
        provider.get_historical_data("SPY", interval="1m")


def test_a_given_interval_that_contradicts_the_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="dates without times"):
        CSVDataProvider(write(tmp_path / "A.csv", DAILY), interval="5m").get_historical_data(
            "A", interval="5m"
        )


def test_irregular_spacing_cannot_be_inferred(tmp_path):
    text = "Date,Open,High,Low,Close,Volume\n2024-03-08 09:30,1,2,1,2,5\n2024-03-08 09:37,2,3,2,3,5\n"
    with pytest.raises(DataError, match="not a supported interval"):
        CSVDataProvider(write(tmp_path / "X.csv", text)).interval_of("X")


def test_a_date_without_a_session_is_kept_at_16h_and_logged(tmp_path, caplog):
    text = "Date,Open,High,Low,Close,Volume\n2024-01-05,1,2,1,2,5\n2024-01-06,1,2,1,2,5\n"
    with caplog.at_level(logging.WARNING):
        bars = CSVDataProvider(write(tmp_path / "X.csv", text)).get_historical_data("X")
    assert bars.index[-1] == pd.Timestamp("2024-01-06 21:00", tz="UTC")  # a Saturday
    assert "not XNYS sessions" in caplog.text


def test_a_file_whose_interval_is_inferred_is_read_once_so_its_warnings_appear_once(tmp_path, caplog):
    text = "Date,Open,High,Low,Close,Volume\n2024-01-05,1,2,1,2,5\n2024-01-06,1,2,1,2,5\n"
    provider = CSVDataProvider(write(tmp_path / "X.csv", text))
    with caplog.at_level(logging.WARNING):
        assert provider.interval_of("X") == "1d"  # reads the file to infer the interval ...
        bars = provider.bars("X", "1d")  # ... and serves the bars from that same read
    assert len(bars) == 2
    warnings = [r for r in caplog.records if "not XNYS sessions" in r.getMessage()]
    assert len(warnings) == 1
    provider.clear_cache()  # a changed file is read again after clear_cache
    write(tmp_path / "X.csv", text + "2024-01-08,1,2,1,2,5\n")
    assert len(provider.bars("X", "1d")) == 3


def test_the_range_filter_reads_naive_dates_in_new_york(folder):
    bars = CSVDataProvider(folder).get_historical_data("AAPL", "2024-01-03", "2024-01-03")
    assert len(bars) == 1
    assert bars.index[0] == pd.Timestamp("2024-01-03 21:00", tz="UTC")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Date,Open,High,Low,Close\n2024-01-02,1,2,1,2\n", r"missing column\(s\) Volume"),
        ("Date,Open,High,Low,Close,Volume\nyesterday,1,2,1,2,5\n", "cannot read the date column"),
        ("Date,Open,High,Low,Close,Volume\n", "no rows"),
        ("", "cannot be read as CSV"),
        ("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,3,2,5\n", "High < Low"),
        ("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,2,5\n2024-01-02,1,2,1,3,5\n", "appear twice"),
    ],
)
def test_bad_files_raise_a_data_error_naming_the_problem(tmp_path, text, message):
    provider = CSVDataProvider(write(tmp_path / "BAD.csv", text))
    with pytest.raises(DataError, match=message):
        provider.get_historical_data("BAD")


def test_paths_that_hold_no_csv_are_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        CSVDataProvider(tmp_path / "missing")
    with pytest.raises(DataError, match=r"No SYMBOL\.csv files"):
        CSVDataProvider(tmp_path)
    write(tmp_path / "A.csv", DAILY)
    with pytest.raises(DataError, match="only applies to a single CSV file"):
        CSVDataProvider(tmp_path, symbol="A")


def test_ticker_info_names_the_file(folder):
    info = CSVDataProvider(folder).get_ticker_info("AAPL")
    assert info["path"].endswith("AAPL.csv")
    assert info["bars"] == 3


def test_daily_bars_exported_with_utc_close_times_need_and_accept_interval_1d(tmp_path):
    text = "Date,Open,High,Low,Close,Volume\n2024-01-02 21:00:00+00:00,1,2,1,2,5\n2024-01-03 21:00:00+00:00,2,3,2,3,5\n"
    path = write(tmp_path / "X.csv", text)
    with pytest.raises(DataError, match="interval='1d'"):
        CSVDataProvider(path).interval_of("X")
    bars = CSVDataProvider(path, interval="1d").get_historical_data("X")
    assert list(bars.index) == [
        pd.Timestamp("2024-01-02 21:00", tz="UTC"),
        pd.Timestamp("2024-01-03 21:00", tz="UTC"),
    ]


def test_weekly_and_monthly_rows_are_stamped_when_their_period_closed_never_earlier(tmp_path):
    # Yahoo dates weekly bars by the Monday the week starts; the bar is known only at the week's last close.
    weekly = "Date,Open,High,Low,Close,Volume\n2024-03-18,1,2,1,2,5\n2024-03-25,2,3,2,3,5\n"
    provider = CSVDataProvider(write(tmp_path / "W.csv", weekly), interval="1wk")
    bars = provider.get_historical_data("W", interval="1wk")
    assert list(bars.index) == [
        pd.Timestamp("2024-03-22 20:00", tz="UTC"),
        pd.Timestamp("2024-03-28 20:00", tz="UTC"),  # Good Friday 2024-03-29 was a holiday
    ]
    with pytest.raises(DataError, match="1wk"):
        provider.get_historical_data("W", interval="1d")
    monthly = "Date,Open,High,Low,Close,Volume\n2024-11-01,1,2,1,2,5\n"
    bars = CSVDataProvider(write(tmp_path / "M.csv", monthly), interval="1mo").get_historical_data(
        "M", interval="1mo"
    )
    assert bars.index[0] == pd.Timestamp("2024-11-29 18:00", tz="UTC")  # early close after Thanksgiving


@settings(max_examples=25)
@given(
    day=st.dates(min_value=date(2000, 1, 3), max_value=date(2030, 12, 31)),
    starts=st.sets(st.integers(min_value=0, max_value=77), min_size=2, max_size=20),
    closes=st.lists(st.floats(min_value=1, max_value=1e4), min_size=20, max_size=20),
    bar_end=st.booleans(),
)
def test_intraday_files_round_trip_to_utc_bar_ends_on_any_day(tmp_path_factory, day, starts, closes, bar_end):
    """Naive New York times written by a vendor come back as the right UTC instants, whatever the DST."""
    offsets = sorted(starts)
    local = [pd.Timestamp(day) + pd.Timedelta(hours=9, minutes=30 + 5 * k) for k in offsets]
    lines = ["Date,Open,High,Low,Close,Volume"]
    lines += [f"{t:%Y-%m-%d %H:%M},{c},{c},{c},{c},1" for t, c in zip(local, closes, strict=False)]
    path = tmp_path_factory.mktemp("csv") / "X.csv"
    path.write_text("\n".join(lines) + "\n")
    bars = CSVDataProvider(path, interval="5m", bar_end=bar_end).get_historical_data("X", interval="5m")
    shift = pd.Timedelta(0) if bar_end else pd.Timedelta(minutes=5)
    expected = [(t.tz_localize("America/New_York") + shift).tz_convert("UTC") for t in local]
    assert list(bars.index) == expected
    assert bars["Close"].tolist() == closes[: len(local)]


def test_hourly_bars_dated_as_ib_dates_them_end_on_the_clock_hour(tmp_path):
    # IB's hourly bars start 09:30, 10:00, 11:00 ... 15:00 (data/bar_grid.py): the first ends at 10:00
    rows = [
        f"2024-03-08 {t},1,2,1,2,5" for t in ("09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00")
    ]
    path = write(tmp_path / "X.csv", "Date,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    bars = CSVDataProvider(path, interval="1h").get_historical_data("X", "2024-03-08", "2024-03-08", "1h")
    local = bars.index.tz_convert("America/New_York").strftime("%H:%M")
    assert list(local) == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]


@pytest.mark.parametrize("bar_end", [False, True])
def test_hourly_bars_on_the_half_hour_grid_are_refused_with_a_named_error(tmp_path, bar_end):
    # Yahoo's hourly grid (09:30-10:30 ...): mixing it with IB's clock hours would trade other bars live
    times = ("10:30", "11:30", "12:30") if bar_end else ("09:30", "10:30", "11:30")
    rows = [f"2024-03-08 {t},1,2,1,2,5" for t in times]
    path = write(tmp_path / "X.csv", "Date,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    with pytest.raises(BarGridError, match="IB's bar grid"):
        CSVDataProvider(path, interval="1h", bar_end=bar_end).get_historical_data("X", interval="1h")
