"""ParquetStore: real parquet files in tmp_path, merges, info, CSV import, bad data refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS
from copilot_quant.data.store import ParquetStore, default_store_root
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.errors import DataError, UnknownSymbolError


@pytest.fixture
def daily() -> pd.DataFrame:
    return SyntheticDataProvider(seed=11).get_historical_data("AAA", "2023-01-01", "2023-12-31")


def test_written_bars_read_back_identically_from_a_real_parquet_file(tmp_path, daily):
    store = ParquetStore(tmp_path)
    path = store.write("aaa", daily)
    assert path == tmp_path / "1d" / "AAA.parquet"
    assert path.is_file()
    again = ParquetStore(tmp_path).get_historical_data("AAA")
    pd.testing.assert_frame_equal(again, daily, check_freq=False)
    assert list(again.columns) == list(BAR_COLUMNS)


def test_writing_merges_with_stored_bars_and_new_rows_win(tmp_path, daily):
    store = ParquetStore(tmp_path)
    store.write("AAA", daily.iloc[:100])
    changed = daily.iloc[90:].copy()
    changed.loc[changed.index[0], "Close"] = changed["Close"].iloc[0] * 1.01
    changed.loc[changed.index[0], "High"] = max(changed["High"].iloc[0], changed["Close"].iloc[0])
    store.write("AAA", changed)
    merged = store.get_historical_data("AAA")
    assert len(merged) == len(daily)
    assert merged["Close"].iloc[90] == changed["Close"].iloc[0]
    store.write("AAA", daily.iloc[:10], merge=False)
    assert len(store.get_historical_data("AAA")) == 10


def test_date_filters_apply_to_stored_bars(tmp_path, daily):
    store = ParquetStore(tmp_path)
    store.write("AAA", daily)
    june = store.get_historical_data("AAA", "2023-06-01", "2023-06-30")
    assert june.index[0] == pd.Timestamp("2023-06-01 20:00", tz="UTC")
    assert june.index[-1] == pd.Timestamp("2023-06-30 20:00", tz="UTC")


def test_symbols_info_and_delete_describe_what_is_stored(tmp_path, daily):
    store = ParquetStore(tmp_path)
    assert store.symbols() == []
    store.write("AAA", daily)
    minutes = SyntheticDataProvider(seed=1).get_historical_data(
        "BBB", "2023-01-03", "2023-01-04", interval="5m"
    )
    store.write("BBB", minutes, interval="5m")
    assert store.symbols() == ["AAA", "BBB"]
    assert store.symbols(interval="5m") == ["BBB"]
    info = store.info("AAA")
    assert info["intervals"]["1d"]["bars"] == len(daily)
    assert info["intervals"]["1d"]["first"] == daily.index[0]
    assert info["intervals"]["1d"]["bytes"] > 0
    assert store.get_ticker_info("BBB")["intervals"] == ["5m"]
    assert store.delete("BBB") == 1
    assert store.symbols() == ["AAA"]


def test_weekly_bars_are_derived_from_stored_daily_bars(tmp_path, daily):
    store = ParquetStore(tmp_path)
    store.write("AAA", daily)
    weekly = store.get_historical_data("AAA", interval="1wk")
    assert weekly["High"].max() == daily["High"].max()
    assert weekly.index[-1] == daily.index[-1]


def test_unknown_symbols_and_missing_intervals_raise_named_errors(tmp_path, daily):
    store = ParquetStore(tmp_path)
    store.write("AAA", daily)
    with pytest.raises(UnknownSymbolError, match=r"'ZZZ'.*AAA"):
        store.get_historical_data("ZZZ")
    with pytest.raises(DataError, match=r"no '5m' bars for AAA; available: 1d, 1wk, 1mo"):
        store.get_historical_data("AAA", interval="5m")


def test_invalid_bars_are_refused_and_nothing_is_written(tmp_path, daily):
    store = ParquetStore(tmp_path)
    broken = daily.copy()
    broken.loc[broken.index[5], "Low"] = broken["High"].iloc[5] * 2
    with pytest.raises(DataError, match="High < Low"):
        store.write("AAA", broken)
    assert store.symbols() == []
    with pytest.raises(DataError, match="Close"):
        store.write("AAA", daily.drop(columns=["Close"]))


def test_a_corrupt_file_gives_a_data_error_that_says_what_to_do(tmp_path, daily):
    store = ParquetStore(tmp_path)
    store.write("AAA", daily)
    (tmp_path / "1d" / "AAA.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="delete it and import"):
        ParquetStore(tmp_path).get_historical_data("AAA")


def test_symbols_with_path_separators_are_refused(tmp_path, daily):
    with pytest.raises(DataError):
        ParquetStore(tmp_path).write("../evil", daily)


def test_the_root_comes_from_the_environment_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_QUANT_STORE", str(tmp_path / "elsewhere"))
    assert default_store_root() == tmp_path / "elsewhere"
    assert ParquetStore().root == tmp_path / "elsewhere"
    monkeypatch.delenv("COPILOT_QUANT_STORE")
    assert default_store_root() == Path.home() / ".copilot_quant" / "store"


def test_import_csv_stores_every_file_of_a_directory(tmp_path, daily):
    folder = tmp_path / "csv"
    folder.mkdir()
    for name in ("AAA", "BBB"):
        table = daily.copy()
        table.index = table.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
        table.index.name = "Date"
        table.to_csv(folder / f"{name}.csv")
    store = ParquetStore(tmp_path / "store")
    assert store.import_csv(folder) == ["AAA", "BBB"]
    stored = store.get_historical_data("BBB")
    np.testing.assert_allclose(stored["Close"].to_numpy(), daily["Close"].to_numpy())
    pd.testing.assert_index_equal(stored.index, daily.index, check_names=False)
