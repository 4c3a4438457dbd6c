"""provider_from_spec, and the IDataFeed data contract checked against every provider."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS, IDataFeed
from copilot_quant.data.providers import (
    PROVIDER_SPECS,
    CSVDataProvider,
    ParquetStore,
    SampleDataProvider,
    SyntheticDataProvider,
    YFinanceProvider,
    provider_from_spec,
)
from copilot_quant.errors import ConfigError, DataError, UnknownSymbolError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NY = ZoneInfo("America/New_York")
YEAR = ("2011-01-01", "2011-12-31")


def _write_csv(folder: Path, symbol: str, bars: pd.DataFrame) -> None:
    table = bars.copy()
    table.index = table.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
    table.index.name = "Date"
    table.to_csv(folder / f"{symbol}.csv")


def _sample(_: Path) -> IDataFeed:
    return SampleDataProvider()


def _synthetic(_: Path) -> IDataFeed:
    return SyntheticDataProvider(["AAPL", "MSFT"], seed=3, start="2010-01-04")


def _store(tmp: Path) -> IDataFeed:
    store = ParquetStore(tmp / "store")
    for symbol in ("AAPL", "MSFT"):
        store.write(symbol, SampleDataProvider().get_historical_data(symbol, *YEAR))
    return store


def _csv(tmp: Path) -> IDataFeed:
    folder = tmp / "csv"
    folder.mkdir()
    for symbol in ("AAPL", "MSFT"):
        _write_csv(folder, symbol, SampleDataProvider().get_historical_data(symbol, *YEAR))
    return CSVDataProvider(folder)


def _yfinance(tmp: Path) -> IDataFeed:
    provider = YFinanceProvider(cache_dir=tmp / "yf", offline=True)
    for symbol in ("AAPL", "MSFT"):
        provider.prime(symbol, SampleDataProvider().get_historical_data(symbol, *YEAR))
    return provider


FACTORIES: dict[str, Callable[[Path], IDataFeed]] = {
    "sample": _sample,
    "synthetic": _synthetic,
    "store": _store,
    "csv": _csv,
    "yfinance": _yfinance,
}


@pytest.fixture(params=list(FACTORIES))
def feed(request, tmp_path) -> IDataFeed:
    return FACTORIES[request.param](tmp_path)


def test_bars_follow_the_project_convention(feed):
    bars = feed.get_historical_data("AAPL", *YEAR)
    assert len(bars) == 252
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert (bars.dtypes == "float64").all()
    assert str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing
    assert bars.index.is_unique
    # Daily bars at the session close: 16:00 New York, and 13:00 on the day after Thanksgiving.
    assert bars.index[0] == pd.Timestamp("2011-01-03 21:00", tz="UTC")
    assert pd.Timestamp("2011-11-25 18:00", tz="UTC") in bars.index


def test_end_dates_are_inclusive_and_naive_equals_new_york_aware(feed):
    naive = feed.get_historical_data("MSFT", datetime(2011, 3, 1), datetime(2011, 3, 31))
    aware = feed.get_historical_data(
        "MSFT", datetime(2011, 3, 1, tzinfo=NY), datetime(2011, 3, 31, tzinfo=NY)
    )
    pd.testing.assert_frame_equal(naive, aware)
    assert naive.index[-1] == pd.Timestamp("2011-03-31 20:00", tz="UTC")
    assert len(naive) == 23


def test_an_end_just_before_the_close_excludes_that_days_bar(feed):
    bars = feed.get_historical_data("AAPL", "2011-03-01", datetime(2011, 3, 31, 19, 59, tzinfo=UTC))
    assert bars.index[-1] == pd.Timestamp("2011-03-30 20:00", tz="UTC")


def test_several_symbols_come_with_metric_symbol_columns(feed):
    both = feed.get_multiple_symbols(["AAPL", "MSFT"], "2011-06-01", "2011-06-30")
    assert list(both.columns.names) == ["Metric", "Symbol"]
    single = feed.get_historical_data("MSFT", "2011-06-01", "2011-06-30")
    pd.testing.assert_series_equal(both[("Close", "MSFT")], single["Close"], check_names=False)


def test_errors_are_named(feed):
    with pytest.raises(DataError, match="Unsupported interval"):
        feed.get_historical_data("AAPL", *YEAR, interval="7m")
    with pytest.raises(DataError, match="after end"):
        feed.get_historical_data("AAPL", "2011-12-31", "2011-01-01")
    if not isinstance(feed, YFinanceProvider):  # any ticker might exist on Yahoo; offline it is unavailable
        with pytest.raises(UnknownSymbolError):
            feed.get_historical_data("NOSUCH", *YEAR)
    assert feed.get_ticker_info("aapl")["symbol"] == "AAPL"


def test_a_range_without_sessions_is_an_empty_frame_with_the_right_columns(feed):
    bars = feed.get_historical_data("AAPL", "2011-12-24", "2011-12-26")  # Christmas weekend
    assert bars.empty
    assert list(bars.columns) == list(BAR_COLUMNS)


def test_returned_frames_are_copies_the_caller_may_change(feed):
    first = feed.get_historical_data("AAPL", *YEAR)
    first["Close"] = 0.0
    assert (feed.get_historical_data("AAPL", *YEAR)["Close"] > 0).all()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    a=st.dates(min_value=datetime(2010, 6, 1).date(), max_value=datetime(2012, 6, 1).date()),
    b=st.dates(min_value=datetime(2010, 6, 1).date(), max_value=datetime(2012, 6, 1).date()),
)
def test_date_filtering_matches_a_plain_mask_for_any_dates(a, b):
    feed = _SAMPLE
    start, end = min(a, b), max(a, b)
    bars = feed.get_historical_data("IBM", start, end)
    full = feed.get_historical_data("IBM")
    local_days = full.index.tz_convert("America/New_York").date
    expected = full[(local_days >= start) & (local_days <= end)]
    pd.testing.assert_frame_equal(bars, expected)


_SAMPLE = SampleDataProvider()


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("sample", SampleDataProvider),
        ("synthetic", SyntheticDataProvider),
        ("synthetic:7", SyntheticDataProvider),
        ("yfinance", YFinanceProvider),
        ("store", ParquetStore),
    ],
)
def test_specs_build_the_named_provider(spec, kind):
    assert isinstance(provider_from_spec(spec), kind)


def test_spec_arguments_reach_the_provider(tmp_path):
    synthetic = provider_from_spec(" Synthetic:7 ")
    assert isinstance(synthetic, SyntheticDataProvider)
    assert synthetic.seed == 7
    store = provider_from_spec(f"store:{tmp_path}")
    assert isinstance(store, ParquetStore)
    assert store.root == tmp_path
    folder = tmp_path / "csv"
    folder.mkdir()
    _write_csv(folder, "IBM", SampleDataProvider().get_historical_data("IBM", *YEAR))
    csv = provider_from_spec(f"csv:{folder}")
    assert isinstance(csv, CSVDataProvider)
    assert csv.symbols() == ["IBM"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bloomberg", "Unknown data source 'bloomberg'"),
        ("", "Unknown data source"),
        ("synthetic:seven", "integer"),
        ("csv:", "CSV"),
        ("sample:extra", "Unknown data source"),
    ],
)
def test_bad_specs_raise_config_errors_listing_the_choices(spec, message):
    with pytest.raises(ConfigError, match=message):
        provider_from_spec(spec)


def test_every_spec_is_documented():
    assert {key.split("[")[0].split(":")[0] for key in PROVIDER_SPECS} == {
        "sample",
        "synthetic",
        "csv",
        "store",
        "yfinance",
    }
