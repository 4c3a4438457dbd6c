"""The calendar's answers for the live engine's bar path, without pandas: market_open_span (the span around an
instant in which is_market_open keeps its answer, what the rails read at every bar) and session_closing_after
(the next session's date and close, the daily bar a replay publishes next) — each equal to the pandas way."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.data.calendars import (
    is_market_open,
    market_open_span,
    next_session_close,
    session_close_ns,
    session_closing_after,
)
from copilot_quant.errors import DataError
from hypothesis import given, settings
from hypothesis import strategies as st

_LO = pd.Timestamp("2023-11-20", tz="UTC").value
_HI = pd.Timestamp("2024-01-10", tz="UTC").value  # Thanksgiving, early closes, Christmas, New Year


def _open(ns: int, calendar: str = "NYSE") -> bool:
    return is_market_open(pd.Timestamp(ns, tz="UTC"), calendar)


@settings(max_examples=200, deadline=None)
@given(ns=st.integers(_LO, _HI), calendar=st.sampled_from(["NYSE", "CME_GLOBEX"]))
def test_the_answer_holds_over_the_whole_span_and_changes_at_its_end(ns: int, calendar: str) -> None:
    start, end, is_open = market_open_span(ns, calendar)
    assert start <= ns < end
    assert _open(ns, calendar) is is_open
    assert _open(start, calendar) is is_open
    assert _open(end - 1, calendar) is is_open
    assert _open(end, calendar) is not is_open  # an open ends at the close, a closed span at the next open


def test_a_session_is_open_from_its_open_to_its_close_and_closed_overnight() -> None:
    open_, close = (
        pd.Timestamp(t, tz="America/New_York").value for t in ("2024-01-05 09:30", "2024-01-05 16:00")
    )
    assert market_open_span(open_ + 1) == (open_, close, True)
    following = pd.Timestamp("2024-01-08 09:30", tz="America/New_York").value  # Monday
    assert market_open_span(close) == (close, following, False)


def test_outside_the_calendar_is_the_named_error_is_market_open_gives() -> None:
    with pytest.raises(DataError, match=r"outside the \w+ calendar"):
        market_open_span(pd.Timestamp("1900-01-02", tz="UTC").value)


@settings(max_examples=200, deadline=None)
@given(ns=st.integers(_LO, _HI), calendar=st.sampled_from(["NYSE", "CME_GLOBEX"]))
def test_the_session_closing_after_an_instant_is_next_session_close_with_its_date(
    ns: int, calendar: str
) -> None:
    found = session_closing_after(ns, calendar)
    assert found is not None
    day, close = found
    assert close == next_session_close(pd.Timestamp(ns, tz="UTC"), calendar).value
    assert session_close_ns(day, calendar) == close  # the date labels that session


def test_past_the_calendar_no_session_closes() -> None:
    assert session_closing_after(pd.Timestamp("2100-01-01", tz="UTC").value) is None
