"""The download planner: IB's duration table, sessions from the calendar, chunks that cover each missing
session exactly once."""

from __future__ import annotations

import pandas as pd
import pytest
from copilot_quant.data.ib_chunks import (
    MAX_SESSIONS,
    check_download_interval,
    minimum_requests,
    missing_mask,
    plan_chunks,
    plan_runs,
    trading_sessions,
)
from copilot_quant.errors import DataError
from hypothesis import given, settings
from hypothesis import strategies as st


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York").tz_convert("UTC")


def test_sessions_skip_weekends_and_holidays() -> None:
    sessions = trading_sessions(_utc("2024-12-23"), _utc("2024-12-31 23:00"))
    days = [s.day for s in sessions]
    assert days == ["2024-12-23", "2024-12-24", "2024-12-26", "2024-12-27", "2024-12-30", "2024-12-31"]
    assert sessions[1].close == _utc("2024-12-24 13:00")  # the early close comes from the calendar


def test_missing_mask_counts_bars_stamped_inside_a_session() -> None:
    sessions = trading_sessions(_utc("2024-03-04"), _utc("2024-03-06 23:00"))
    stamps = pd.DatetimeIndex([sessions[0].open + pd.Timedelta(minutes=1), sessions[2].close])
    assert missing_mask(sessions, stamps) == [False, True, False]
    assert missing_mask(sessions, pd.DatetimeIndex([sessions[1].open])) == [True, True, True]  # open: not in


def test_plan_chunks_one_session_per_minute_request_ending_at_the_close() -> None:
    sessions = trading_sessions(_utc("2024-03-04"), _utc("2024-03-08 23:00"))
    chunks = plan_chunks("AAPL", "1m", sessions, [True, False, True, True, False])
    assert [(c.sessions[0].day, c.duration, c.bar_size) for c in chunks] == [
        ("2024-03-04", "1 D", "1 min"),
        ("2024-03-06", "1 D", "1 min"),
        ("2024-03-07", "1 D", "1 min"),
    ]
    assert chunks[0].end == _utc("2024-03-04 16:00")
    five = plan_chunks("AAPL", "5m", sessions, [True, False, True, True, False])
    assert [c.duration for c in five] == ["1 D", "2 D"]


def test_unsupported_intervals_are_refused_by_name() -> None:
    with pytest.raises(DataError, match=r"1wk.*download 1d"):
        check_download_interval("1wk")
    with pytest.raises(DataError, match="max_sessions"):
        plan_runs([True], 0)


@settings(max_examples=300, deadline=None)
@given(missing=st.lists(st.booleans(), max_size=400), interval=st.sampled_from(sorted(MAX_SESSIONS)))
def test_runs_cover_every_missing_session_once_within_the_limit(missing: list[bool], interval: str) -> None:
    limit = MAX_SESSIONS[interval]
    runs = plan_runs(missing, limit)
    covered = [i for a, b in runs for i in range(a, b)]
    assert sorted(covered) == [i for i, gone in enumerate(missing) if gone]  # each exactly once
    assert len(covered) == len(set(covered))
    assert all(0 < b - a <= limit for a, b in runs)
    assert len(runs) == minimum_requests(missing, limit)  # no more requests than the table needs


@settings(max_examples=60, deadline=None)
@given(
    first=st.dates(min_value=pd.Timestamp("2015-01-01").date(), max_value=pd.Timestamp("2025-06-01").date()),
    days=st.integers(min_value=0, max_value=120),
    stored=st.sets(st.integers(min_value=0, max_value=90)),
    interval=st.sampled_from(sorted(MAX_SESSIONS)),
)
def test_chunks_cover_exactly_the_sessions_the_store_lacks(
    first: object, days: int, stored: set[int], interval: str
) -> None:
    start = _utc(str(first))
    sessions = trading_sessions(start, start + pd.Timedelta(days=days))
    stamps = pd.DatetimeIndex([sessions[i].close for i in stored if i < len(sessions)], tz="UTC")
    missing = missing_mask(sessions, stamps)
    chunks = plan_chunks("X", interval, sessions, missing)
    requested = [s for c in chunks for s in c.sessions]
    assert requested == [s for s, gone in zip(sessions, missing, strict=True) if gone]
    for chunk in chunks:
        assert len(chunk.sessions) <= MAX_SESSIONS[interval]
        assert chunk.duration == f"{len(chunk.sessions)} D"
        # consecutive sessions of the calendar: "<n> D" back from the end covers exactly them
        positions = [sessions.index(s) for s in chunk.sessions]
        assert positions == list(range(positions[0], positions[0] + len(positions)))
