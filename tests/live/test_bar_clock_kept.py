"""What the bar clock answers on a bar's path without pandas — the exchange's date, the Timestamp of the bar
expected next (kept from before the bar) — must equal what pandas computes afresh."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from copilot_quant.live.bar_clock import BarClock
from hypothesis import given, settings
from hypothesis import strategies as st

#: Instants around both 2024 DST switches and the new year, minutes apart.
_LO = pd.Timestamp("2023-12-30", tz="UTC").value
_HI = pd.Timestamp("2024-11-05", tz="UTC").value
_SWITCHES = [pd.Timestamp(t, tz="America/New_York").value for t in ("2024-03-10 01:59", "2024-11-03 00:59")]
instants = st.one_of(
    st.integers(_LO, _HI),
    st.sampled_from(_SWITCHES).flatmap(lambda t: st.integers(t - 4 * 3600 * 10**9, t + 26 * 3600 * 10**9)),
)


def _clock() -> BarClock:
    return BarClock(None)  # type: ignore[arg-type]  # only the clock's own arithmetic is used


@settings(max_examples=200, deadline=None)
@given(times=st.lists(instants, min_size=1, max_size=30))
def test_the_trading_day_is_the_new_york_date_of_each_instant(times: list[int]) -> None:
    clock = _clock()
    for ns in sorted(times) + times:  # in time order (as live) and in any order
        clock.server_ns = ns
        expected = pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").date()
        assert clock.trading_day() == expected


def test_the_trading_day_turns_at_midnight_new_york_not_utc() -> None:
    clock = _clock()
    midnight = pd.Timestamp("2024-03-05 00:00", tz="America/New_York").value
    clock.server_ns = midnight - 1
    assert str(clock.trading_day()) == "2024-03-04"
    clock.server_ns = midnight
    assert str(clock.trading_day()) == "2024-03-05"
    clock.server_ns = midnight - 1  # a clock never goes back, but the answer would still be right
    assert str(clock.trading_day()) == "2024-03-04"


@given(
    stamps=st.lists(st.integers(_LO // 10**9, _HI // 10**9).map(lambda s: s * 10**9), min_size=1, max_size=10)
)
def test_a_kept_stamp_equals_a_fresh_timestamp_and_datetime(stamps: list[int]) -> None:
    clock = _clock()
    for ns in stamps:
        stamp = clock.stamp(ns)
        assert stamp == pd.Timestamp(ns, tz="UTC")
        assert stamp.tz == UTC
        assert stamp.value == ns
        moment = clock.stamp_datetime(ns)
        assert moment == stamp.to_pydatetime()
        assert isinstance(moment, datetime)
        assert moment.tzinfo is not None
        assert clock.stamp(ns) is stamp  # kept: the same object again
