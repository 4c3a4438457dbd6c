"""validate_bars: each kind of bad data is a named error or a logged repair, never a silent change."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS, SUPPORTED_INTERVALS
from copilot_quant.data.validation import (
    check_supported_interval,
    empty_bars,
    normalize_symbol,
    validate_bars,
)
from copilot_quant.errors import DataError
from hypothesis import given
from hypothesis import strategies as st


def bars(n: int = 4, tz: str | None = "UTC", **overrides: list[float]) -> pd.DataFrame:
    index = pd.date_range("2024-01-02 21:00", periods=n, freq="D", tz=tz)
    data = {
        "Open": [10.0 + i for i in range(n)],
        "High": [11.0 + i for i in range(n)],
        "Low": [9.0 + i for i in range(n)],
        "Close": [10.5 + i for i in range(n)],
        "Volume": [1000.0] * n,
    }
    data.update(overrides)
    return pd.DataFrame(data, index=index)


def test_clean_bars_pass_unchanged_in_the_bar_convention():
    frame = bars()
    frame["Adj Close"] = 1.0
    out = validate_bars(frame, "AAPL", "test")
    assert list(out.columns) == list(BAR_COLUMNS)
    assert (out.dtypes == "float64").all()
    assert str(out.index.tz) == "UTC"
    assert out.index.unit == "ns"
    np.testing.assert_array_equal(out.to_numpy(), frame[list(BAR_COLUMNS)].to_numpy())
    assert "Adj Close" in frame.columns  # the input is not modified


def test_column_names_in_any_case_are_accepted():
    frame = bars().rename(columns=str.lower)
    out = validate_bars(frame, symbol="X", source="test")
    assert list(out.columns) == list(BAR_COLUMNS)


def test_missing_column_names_what_is_missing_and_what_was_found():
    with pytest.raises(DataError, match=r"missing column\(s\) Volume.*found"):
        validate_bars(bars().drop(columns=["Volume"]), "AAPL", "test")


def test_naive_timestamps_are_refused_with_a_fix():
    with pytest.raises(DataError, match=r"naive.*tz_localize"):
        validate_bars(bars(tz=None), "AAPL", "test")


def test_non_datetime_index_is_refused():
    with pytest.raises(DataError, match="DatetimeIndex"):
        validate_bars(bars().reset_index(drop=True), "AAPL", "test")


def test_other_time_zones_are_converted_to_utc():
    frame = bars(tz="America/New_York")
    out = validate_bars(frame, "AAPL", "test")
    assert str(out.index.tz) == "UTC"
    assert (out.index == frame.index).all()  # same instants


def test_unsorted_bars_are_sorted_and_logged(caplog):
    frame = bars().iloc[[2, 0, 3, 1]]
    with caplog.at_level(logging.WARNING, logger="copilot_quant.data.validation"):
        out = validate_bars(frame, "AAPL", "test")
    assert out.index.is_monotonic_increasing
    assert "not in order" in caplog.text


def test_strict_mode_refuses_repairs():
    with pytest.raises(DataError, match="strict"):
        validate_bars(bars().iloc[[1, 0]], "AAPL", "test", strict=True)


def test_exact_duplicate_rows_are_dropped_and_logged(caplog):
    frame = bars()
    frame = pd.concat([frame, frame.iloc[[1]]])
    with caplog.at_level(logging.WARNING, logger="copilot_quant.data.validation"):
        out = validate_bars(frame, "AAPL", "test")
    assert len(out) == 4
    assert out.index.is_unique
    assert "duplicate" in caplog.text


def test_conflicting_duplicate_timestamps_are_an_error():
    frame = bars()
    twin = frame.iloc[[1]].copy()
    twin["Close"] = 99.0
    with pytest.raises(DataError, match="appear twice with different values"):
        validate_bars(pd.concat([frame, twin]), "AAPL", "test")


def test_rows_without_any_price_are_dropped_and_logged(caplog):
    frame = bars(
        Open=[10, np.nan, 12, 13],
        High=[11, np.nan, 13, 14],
        Low=[9, np.nan, 11, 12],
        Close=[10, np.nan, 12, 13],
    )
    with caplog.at_level(logging.WARNING, logger="copilot_quant.data.validation"):
        out = validate_bars(frame, "AAPL", "test")
    assert len(out) == 3
    assert "without any price" in caplog.text


def test_a_partly_missing_price_is_an_error():
    with pytest.raises(DataError, match="some but not all prices missing"):
        validate_bars(bars(Close=[10, np.nan, 12, 13]), "AAPL", "test")


def test_missing_volume_becomes_zero_and_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="copilot_quant.data.validation"):
        out = validate_bars(bars(Volume=[1, np.nan, 3, 4]), "AAPL", "test")
    assert out["Volume"].tolist() == [1, 0, 3, 4]
    assert "no volume" in caplog.text


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("Low", [9, 0, 11, 12], "zero or negative prices"),
        ("Open", [10, -1, 12, 13], "zero or negative prices"),
        ("Close", [10, np.inf, 12, 13], "infinite"),
        ("Volume", [1, -5, 1, 1], "negative volume"),
        ("Low", [9, 20, 11, 12], "High < Low"),
    ],
)
def test_impossible_values_are_errors(column, values, message):
    with pytest.raises(DataError, match=message):
        validate_bars(bars(**{column: values}), "AAPL", "test")


def test_non_numeric_columns_are_an_error():
    frame = bars()
    frame["Close"] = ["a", "b", "c", "d"]
    with pytest.raises(DataError, match="numeric"):
        validate_bars(frame, "AAPL", "test")


def test_open_or_close_outside_the_range_widens_high_and_low_with_a_log(caplog):
    frame = bars(Open=[10, 12.5, 12, 13], Close=[10.5, 8.0, 12.5, 13.5])
    with caplog.at_level(logging.WARNING, logger="copilot_quant.data.validation"):
        out = validate_bars(frame, "AAPL", "test")
    assert out["High"].iloc[1] == 12.5
    assert out["Low"].iloc[1] == 8.0
    assert "widened" in caplog.text


def test_error_messages_name_the_source_and_symbol():
    with pytest.raises(DataError, match="csv MSFT"):
        validate_bars(bars(Low=[9, 0, 11, 12]), "MSFT", "csv")


def test_unsupported_interval_lists_the_supported_ones():
    with pytest.raises(DataError) as info:
        check_supported_interval("3d")
    for interval in SUPPORTED_INTERVALS:
        assert interval in str(info.value)
    assert check_supported_interval("5m") == "5m"


@pytest.mark.parametrize(("raw", "clean"), [(" aapl ", "AAPL"), ("brk.b", "BRK.B"), ("^gspc", "^GSPC")])
def test_symbols_are_normalized(raw, clean):
    assert normalize_symbol(raw) == clean


@pytest.mark.parametrize("bad", ["", "   ", "../etc", "A/B", None])
def test_bad_symbols_are_refused(bad):
    with pytest.raises(DataError, match="Symbol"):
        normalize_symbol(bad)


def test_empty_bars_follow_the_convention():
    empty = empty_bars()
    assert list(empty.columns) == list(BAR_COLUMNS)
    assert str(empty.index.tz) == "UTC"
    assert validate_bars(empty, "X", "test").empty


price = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    rows=st.lists(st.tuples(price, price, price, price, st.floats(0, 1e9)), min_size=1, max_size=40),
    order=st.randoms(use_true_random=False),
)
def test_any_positive_bars_come_out_valid_sorted_and_otherwise_unchanged(rows, order):
    """Whatever positive OHLC a vendor sends (High >= Low), the result is a valid, sorted frame."""
    index = pd.date_range("2020-01-01", periods=len(rows), freq="h", tz="UTC")
    records = [
        {"Open": o, "High": max(a, b), "Low": min(a, b), "Close": c, "Volume": v} for (o, a, b, c, v) in rows
    ]
    frame = pd.DataFrame(records, index=index)
    shuffled = frame.iloc[order.sample(range(len(frame)), len(frame))]
    out = validate_bars(shuffled, "X", "test")
    assert out.index.is_monotonic_increasing
    assert out.index.is_unique
    assert len(out) == len(frame)
    assert (out["High"] >= out[["Open", "Close"]].max(axis=1)).all()
    assert (out["Low"] <= out[["Open", "Close"]].min(axis=1)).all()
    assert (
        out[["Open", "Close", "Volume"]].to_numpy() == frame[["Open", "Close", "Volume"]].to_numpy()
    ).all()
    # validation is idempotent: valid bars pass through untouched
    pd.testing.assert_frame_equal(validate_bars(out, "X", "test"), out)
