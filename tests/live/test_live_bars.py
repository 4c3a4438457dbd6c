"""LiveBars keeps one live bar stream exactly as bars_to_frame would build it: newest wins, sorted, trimmed."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.interfaces import BAR_COLUMNS
from copilot_quant.brokers import live_bars as live_bars_module
from copilot_quant.brokers.ib_mapping import bars_to_frame, empty_bars
from copilot_quant.brokers.live_bars import LiveBars
from copilot_quant.data.calendars import session_bounds, session_closes
from copilot_quant.errors import ConfigError
from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import BarData

NY = ZoneInfo("America/New_York")

#: NYSE sessions from Nov 2023 to Jan 2024: Thanksgiving, two early closes (Nov 24, Dec 22 is normal,
#: none on Christmas Eve 2023 which was a Sunday), Christmas and New Year's Day holidays, five month-ends.
SESSIONS: list[date] = [ts.tz_convert(NY).date() for ts in session_closes("2023-11-01", "2024-01-31")]

#: The 1h bar starts of a few sessions (09:30, 10:30 ... 15:30 New York; an early close ends sooner).
_OPENS, _CLOSES = session_bounds("2023-11-20", "2023-11-28")
HOURLY_STARTS: list[datetime] = [
    (opened + pd.Timedelta(hours=h)).to_pydatetime()
    for opened, closed in zip(_OPENS, _CLOSES, strict=True)
    for h in range(7)
    if opened + pd.Timedelta(hours=h) < closed
]


def bar(
    label: Any, *, o: float = 10.0, h: float = 11.0, lo: float = 9.0, c: float = 10.5, v: Any = 100.0
) -> Any:
    return SimpleNamespace(date=label, open=o, high=h, low=lo, close=c, volume=v)


def ny(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NY)


def utc_stamp(value: datetime) -> pd.Timestamp:
    return pd.Timestamp(value).tz_convert("UTC")


# ---------------------------------------------------------------------------------------------- strategies
prices = st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False)
volumes = st.one_of(st.floats(0, 1e9, allow_nan=False), st.none(), st.just(float("nan")), st.just(-1.0))


@st.composite
def upsert_batches(draw: st.DrawFn, labels: list[Any]) -> list[list[Any]]:
    """Rows for random labels (repeats, any order) with random OHLCV, cut into batches of random size."""
    rows = draw(
        st.lists(
            st.builds(bar, st.sampled_from(labels), o=prices, h=prices, lo=prices, c=prices, v=volumes),
            min_size=0,
            max_size=80,
        )
    )
    batches: list[list[Any]] = []
    i = 0
    while i < len(rows):
        size = draw(st.integers(1, 12))
        batches.append(rows[i : i + size])
        i += size
    return batches


def latest_per_label(batches: list[list[Any]]) -> list[Any]:
    """The newest row of each label, in label order (what the store should hold)."""
    latest: dict[Any, Any] = {}
    for batch in batches:
        for row in batch:
            latest[row.date] = row
    return [latest[k] for k in sorted(latest)]


# ---------------------------------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(
    interval=st.sampled_from(["1d", "1wk", "1mo"]),
    batches=upsert_batches(SESSIONS),
    size=st.one_of(st.none(), st.integers(1, 40)),
)
def test_the_store_equals_bars_to_frame_of_the_newest_row_per_day(
    interval: str, batches: list[list[Any]], size: int | None
) -> None:
    store = LiveBars(interval) if size is None else LiveBars(interval, size=size)
    for batch in batches:
        store.upsert(batch)
    rows = latest_per_label(batches)
    if size is not None:
        rows = rows[-size:]  # the newest `size` days are kept (daily rows, also for weekly/monthly)
    expected = bars_to_frame(rows, interval)
    got = store.frame()
    pd.testing.assert_frame_equal(got, expected)
    assert isinstance(got.index, pd.DatetimeIndex)
    assert str(got.index.tz) == "UTC"
    assert got.index.name == "timestamp"
    assert list(got.columns) == list(BAR_COLUMNS)
    assert len(store) == len(rows)
    daily = pd.DatetimeIndex(bars_to_frame(rows, "1d").index)
    # one stamp per bar: the aggregated bars' stamps for weekly/monthly stores
    np.testing.assert_array_equal(store.stamps(), pd.DatetimeIndex(expected.index).asi8)
    if rows:
        assert store.last_stamp() == daily[-1]
        assert store.last_stamp_ns() == daily.asi8[-1]
    else:
        assert store.last_stamp() is None
        assert store.last_stamp_ns() is None


@settings(max_examples=60, deadline=None)
@given(batches=upsert_batches(HOURLY_STARTS), size=st.one_of(st.none(), st.integers(1, 30)))
def test_an_intraday_store_equals_bars_to_frame_of_the_newest_row_per_bar(
    batches: list[list[Any]], size: int | None
) -> None:
    store = LiveBars("1h") if size is None else LiveBars("1h", size=size)
    for batch in batches:
        store.upsert(batch)
    rows = latest_per_label(batches)
    if size is not None:
        rows = rows[-size:]
    expected = bars_to_frame(rows, "1h")
    pd.testing.assert_frame_equal(store.frame(), expected)
    assert store.frame().index.is_unique
    assert store.frame().index.is_monotonic_increasing


@settings(max_examples=60, deadline=None)
@given(
    interval=st.sampled_from(["1d", "1wk", "1mo"]),
    batches=upsert_batches(SESSIONS),
    pick=st.integers(0, len(SESSIONS) - 1),
    shift_ns=st.sampled_from([-1, 0, 1]),
)
def test_a_cutoff_keeps_exactly_the_bars_stamped_at_or_before_it(
    interval: str, batches: list[list[Any]], pick: int, shift_ns: int
) -> None:
    store = LiveBars(interval)
    for batch in batches:
        store.upsert(batch)
    cutoff = pd.Timestamp(bars_to_frame([bar(SESSIONS[pick])], "1d").index[0]) + pd.Timedelta(shift_ns, "ns")
    rows = latest_per_label(batches)
    daily = pd.DatetimeIndex(bars_to_frame(rows, "1d").index)
    # A day is complete at its close; a week or month only once the period's last session has closed.
    kept = [
        row
        for row, stamp in zip(rows, daily, strict=True)
        if _complete_at(row.date, stamp, interval) <= cutoff
    ]
    got = store.frame(cutoff)
    pd.testing.assert_frame_equal(got, bars_to_frame(kept, interval))
    assert (got.index <= cutoff).all()
    stamps = store.stamps(cutoff.value)
    assert stamps.dtype == np.int64
    np.testing.assert_array_equal(stamps, pd.DatetimeIndex(got.index).asi8)


def _complete_at(day: date, stamp: pd.Timestamp, interval: str) -> pd.Timestamp:
    """When the bar holding daily row ``day`` is complete (an independent reference: the NYSE sessions)."""
    if interval == "1d":
        return stamp
    freq = {"1wk": "W-SUN", "1mo": "M"}[interval]
    period = pd.Period(day, freq)
    closes = session_closes(period.start_time.date(), period.end_time.date())
    return pd.Timestamp(closes[-1])


# ---------------------------------------------------------------------------------------------- examples
def test_an_empty_store_reads_as_an_empty_frame_with_the_right_shape() -> None:
    store = LiveBars("1d")
    store.upsert([])
    for frame in (store.frame(), store.frame(pd.Timestamp("2024-01-02", tz="UTC"))):
        assert frame.empty
        assert list(frame.columns) == list(BAR_COLUMNS)
        index = frame.index
        assert isinstance(index, pd.DatetimeIndex)
        assert str(index.tz) == "UTC"
        assert frame.index.name == "timestamp"
        assert (frame.dtypes == "float64").all()
        pd.testing.assert_frame_equal(frame, empty_bars())
    assert len(store) == 0
    assert store.stamps().shape == (0,)
    assert store.stamps().dtype == np.int64
    assert store.stamps(0).shape == (0,)
    assert store.last_stamp() is None
    assert store.last_stamp_ns() is None
    assert "0 bars" in repr(store)


def test_a_cutoff_before_every_bar_gives_an_empty_frame_and_after_them_all_of_it() -> None:
    store = LiveBars("1d")
    store.upsert([bar(date(2024, 1, 2)), bar(date(2024, 1, 3)), bar(date(2024, 1, 4))])
    first = pd.Timestamp("2024-01-02 21:00", tz="UTC")  # 16:00 New York in winter
    assert store.frame().index[0] == first
    pd.testing.assert_frame_equal(store.frame(first - pd.Timedelta(1, "ns")), empty_bars())
    assert store.stamps(first.value - 1).size == 0
    assert list(store.frame(first).index) == [first]
    pd.testing.assert_frame_equal(store.frame(pd.Timestamp("2030-01-01", tz="UTC")), store.frame())
    # a cutoff in another time zone is the same instant
    pd.testing.assert_frame_equal(store.frame(first.tz_convert(NY)), store.frame(first))
    assert store.last_stamp() == pd.Timestamp("2024-01-04 21:00", tz="UTC")
    assert store.last_stamp_ns() == pd.Timestamp("2024-01-04 21:00", tz="UTC").value


def test_newest_row_wins_for_the_forming_bar_and_for_a_replayed_older_bar() -> None:
    store = LiveBars("1d")
    store.upsert([bar(date(2024, 1, 2), c=1.0), bar(date(2024, 1, 3), c=2.0)])
    store.upsert([bar(date(2024, 1, 3), c=3.0)])  # the forming bar, updated
    store.upsert([bar(date(2024, 1, 2), c=4.0), bar(date(2024, 1, 2), c=5.0)])  # a replay, twice in a batch
    store.upsert([bar(date(2023, 12, 29), c=6.0)])  # a missed older bar, inserted in front
    frame = store.frame()
    assert list(frame["Close"]) == [6.0, 5.0, 3.0]
    assert frame.index.is_monotonic_increasing
    assert frame.index.is_unique


def test_the_store_keeps_the_newest_bars_when_full() -> None:
    store = LiveBars("1d", size=3)
    days = SESSIONS[:6]
    store.upsert([bar(d, c=float(i)) for i, d in enumerate(days)])
    assert len(store) == 3
    assert list(store.frame()["Close"]) == [3.0, 4.0, 5.0]
    store.upsert([bar(days[0], c=99.0)])  # older than everything kept: does not come back
    assert list(store.frame()["Close"]) == [3.0, 4.0, 5.0]
    store.upsert([bar(SESSIONS[6], c=6.0)])
    assert list(store.frame()["Close"]) == [4.0, 5.0, 6.0]
    one = LiveBars("1d", size=1)
    one.upsert([bar(days[1], c=1.0), bar(days[0], c=0.0)])
    assert list(one.frame()["Close"]) == [1.0]


def test_the_store_grows_past_its_initial_capacity() -> None:
    store = LiveBars("1m")
    start = ny(2024, 3, 5, 9, 30)
    rows = [bar(start + timedelta(minutes=i), c=float(i)) for i in range(300)]
    store.upsert(rows[::2])
    store.upsert(rows[1::2])  # interleaved inserts after growth
    frame = store.frame()
    assert len(frame) == 300
    assert list(frame["Close"]) == [float(i) for i in range(300)]
    assert frame.index[0] == utc_stamp(ny(2024, 3, 5, 9, 31))
    pd.testing.assert_frame_equal(frame, bars_to_frame(rows, "1m"))


@pytest.mark.parametrize("interval", ["1d", "1wk", "1h"])
def test_the_frame_is_a_copy_that_callers_may_modify(interval: str) -> None:
    store = LiveBars(interval)
    labels = SESSIONS[:8] if interval != "1h" else HOURLY_STARTS[:8]
    store.upsert([bar(label, c=float(i)) for i, label in enumerate(labels)])
    before = store.frame().copy(deep=True)  # a snapshot independent of the store
    before_stamps = store.stamps()
    frame = store.frame()
    frame.iloc[0, 0] = -1.0
    frame["Close"] = 0.0
    frame.loc[frame.index[-1], "Volume"] = 12345.0
    pd.testing.assert_frame_equal(store.frame(), before)
    stamps = store.stamps()
    stamps[:] = 0
    np.testing.assert_array_equal(store.stamps(), before_stamps)
    # and a frame already handed out does not change when the store does
    held = store.frame()
    store.upsert([bar(labels[0], o=-5.0, c=-5.0), bar(labels[-1], o=-6.0, c=-6.0)])
    pd.testing.assert_frame_equal(held, before)
    assert store.frame().iloc[-1]["Close"] == -6.0


def test_an_hourly_bar_is_stamped_at_the_end_of_its_clock_hour() -> None:
    # IB's hourly bars are clock hours (data/bar_grid.py): the 09:30 bar is 09:30-10:00, the last 15:00-16:00
    store = LiveBars("1h")
    store.upsert([bar(ny(2024, 3, 5, 9, 30)), bar(ny(2024, 3, 5, 10)), bar(ny(2024, 3, 5, 15))])
    assert list(store.frame().index) == [
        utc_stamp(ny(2024, 3, 5, 10)),
        utc_stamp(ny(2024, 3, 5, 11)),
        utc_stamp(ny(2024, 3, 5, 16)),
    ]
    assert store.last_stamp() == pd.Timestamp("2024-03-05 21:00", tz="UTC")
    # the same bar labelled in UTC (IB's formatDate=2) is the same bar
    store.upsert([bar(datetime(2024, 3, 5, 20, 0, tzinfo=UTC), c=77.0)])
    assert len(store) == 3
    assert store.frame()["Close"].iloc[-1] == 77.0


def test_an_hourly_bar_on_an_early_close_day_ends_at_the_early_close() -> None:
    store = LiveBars("1h")
    store.upsert([bar(ny(2023, 11, 24, 11)), bar(ny(2023, 11, 24, 12))])
    assert list(store.frame().index) == [utc_stamp(ny(2023, 11, 24, 12)), utc_stamp(ny(2023, 11, 24, 13))]
    assert store.last_stamp() == pd.Timestamp("2023-11-24 18:00", tz="UTC")
    half = LiveBars("30m")
    half.upsert([bar(ny(2023, 11, 24, 12, 30))])
    assert half.last_stamp() == utc_stamp(ny(2023, 11, 24, 13))


def test_a_daily_bar_is_stamped_at_its_session_close_early_closes_included() -> None:
    for labels in ([date(2023, 11, 24)], [date(2023, 11, 24), date(2023, 11, 22)]):  # one label, a batch
        store = LiveBars("1d")
        store.upsert([bar(label) for label in labels])
        assert store.frame().index[-1] == pd.Timestamp("2023-11-24 18:00", tz="UTC")  # 13:00 New York
    summer = LiveBars("1d")
    summer.upsert([bar(date(2024, 6, 3))])
    assert summer.last_stamp() == pd.Timestamp("2024-06-03 20:00", tz="UTC")  # 16:00 EDT


@pytest.mark.parametrize(
    "labels",
    [[date(2024, 1, 6)], [date(2024, 1, 6), date(2024, 1, 7)], [date(2024, 1, 5), date(2024, 1, 6)]],
    ids=["alone", "with-another-non-session", "with-a-session"],
)
def test_a_day_without_a_session_is_stamped_at_16_new_york_and_kept(labels: list[date]) -> None:
    store = LiveBars("1d")
    store.upsert([bar(label) for label in labels])
    saturday = pd.Timestamp("2024-01-06 21:00", tz="UTC")  # Saturday 16:00 New York
    assert saturday in store.frame().index
    assert len(store) == len(labels)
    pd.testing.assert_frame_equal(store.frame(), bars_to_frame([bar(label) for label in labels], "1d"))


def test_a_daily_store_accepts_datetime_labels_as_their_date() -> None:
    store = LiveBars("1d")
    store.upsert([bar(datetime(2024, 1, 3, 0, 0, tzinfo=NY))])
    assert store.last_stamp() == pd.Timestamp("2024-01-03 21:00", tz="UTC")


def test_weekly_bars_aggregate_the_stored_daily_rows() -> None:
    # Tue 2 Jan .. Fri 19 Jan 2024; Monday 15 Jan is a holiday (MLK day)
    days = [d for d in SESSIONS if date(2024, 1, 2) <= d <= date(2024, 1, 19)]
    assert date(2024, 1, 15) not in days
    rows = [
        bar(d, o=100.0 + i, h=110.0 + i, lo=90.0 - i, c=105.0 + i, v=1000.0 + i) for i, d in enumerate(days)
    ]
    store = LiveBars("1wk")
    store.upsert(list(reversed(rows)))
    frame = store.frame()
    pd.testing.assert_frame_equal(frame, bars_to_frame(rows, "1wk"))
    assert len(frame) == 3
    # the week of 16-19 Jan: 4 sessions (rows 9..12), stamped at Friday's close
    assert len(days) == 13
    week = frame.iloc[-1]
    assert frame.index[-1] == pd.Timestamp("2024-01-19 21:00", tz="UTC")
    assert (week["Open"], week["High"], week["Low"], week["Close"]) == (109.0, 122.0, 78.0, 117.0)
    assert week["Volume"] == sum(1000.0 + i for i in range(9, 13))
    # mid-week the latest week is not complete: a cutoff then shows the weeks that are, and no partial one
    wednesday = pd.Timestamp("2024-01-17 21:00", tz="UTC")
    done = store.frame(wednesday)
    assert done.index[-1] == pd.Timestamp("2024-01-12 21:00", tz="UTC")
    pd.testing.assert_frame_equal(done, bars_to_frame(rows[:9], "1wk"))
    np.testing.assert_array_equal(store.stamps(wednesday.value), pd.DatetimeIndex(done.index).asi8)
    # at Friday's close the week is complete; without a cutoff the forming week is shown too
    assert store.frame(pd.Timestamp("2024-01-19 21:00", tz="UTC")).index[-1] == frame.index[-1]
    store.upsert([bar(date(2024, 1, 22), o=1.0, h=2.0, lo=0.5, c=1.5, v=10.0)])
    assert store.frame().index[-1] == pd.Timestamp("2024-01-22 21:00", tz="UTC")
    assert store.frame(pd.Timestamp("2024-01-22 21:00", tz="UTC")).index[-1] == frame.index[-1]
    assert len(store) == len(days) + 1  # daily rows are what the store holds
    assert store.stamps().size == 4  # … and one stamp per weekly bar


def test_monthly_bars_aggregate_the_stored_daily_rows() -> None:
    rows = [bar(d, c=float(i)) for i, d in enumerate(SESSIONS)]
    store = LiveBars("1mo")
    store.upsert(rows)
    frame = store.frame()
    pd.testing.assert_frame_equal(frame, bars_to_frame(rows, "1mo"))
    assert len(frame) == 3
    assert frame.index[0] == pd.Timestamp("2023-11-30 21:00", tz="UTC")


@pytest.mark.parametrize("size", [0, -1, -100])
def test_a_store_without_room_is_refused(size: int) -> None:
    with pytest.raises(ConfigError, match="at least 1 bar"):
        LiveBars("1d", size=size)


def test_a_bar_data_row_from_ib_async_is_accepted() -> None:
    store = LiveBars("5m")
    store.upsert([BarData(date=ny(2024, 3, 5, 9, 30), open=1.0, high=2.0, low=0.5, close=1.5, volume=10.0)])
    assert store.last_stamp() == utc_stamp(ny(2024, 3, 5, 9, 35))
    assert list(store.frame().iloc[0]) == [1.0, 2.0, 0.5, 1.5, 10.0]


def test_a_batch_that_overflows_the_stamp_memo_is_still_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memo of stamped labels is cleared when full; a batch mixing known and new labels still works."""
    monkeypatch.setattr(live_bars_module, "_MEMO_LIMIT", 2)
    store = LiveBars("1d")
    store.upsert([bar(date(2024, 1, 2)), bar(date(2024, 1, 3))])
    # the live adapter passes the stream's last three bars: two already known, one new
    store.upsert([bar(date(2024, 1, 3), c=3.0), bar(date(2024, 1, 4), c=4.0)])
    assert len(store) == 3
    assert list(store.frame()["Close"])[1:] == [3.0, 4.0]
    store.upsert([bar(date(2024, 1, 2), c=2.0), bar(date(2024, 1, 3), c=3.5), bar(date(2024, 1, 5), c=5.0)])
    rows = [bar(date(2024, 1, d), c=c) for d, c in ((2, 2.0), (3, 3.5), (4, 4.0), (5, 5.0))]
    pd.testing.assert_frame_equal(store.frame(), bars_to_frame(rows, "1d"))


# ---------------------------------------------------------------------------------------------- threads
def test_readers_always_see_a_sorted_consistent_store_while_a_writer_upserts() -> None:
    """Every bar's prices encode its own stamp, so a reader would notice a row torn from its stamp."""
    store = LiveBars("1m", size=1500)
    opens, closes = session_bounds("2024-03-04", "2024-03-15")
    starts: list[datetime] = []
    for opened, closed in zip(opens, closes, strict=True):
        minutes = int((closed - opened) / pd.Timedelta(minutes=1))
        starts.extend((opened + pd.Timedelta(minutes=m)).to_pydatetime() for m in range(minutes))
    assert len(starts) > 3000

    def row(start: datetime) -> Any:
        end = float(pd.Timestamp(start + timedelta(minutes=1)).value // 10**9)
        return bar(start, o=end, h=end, lo=end, c=end, v=1.0)

    rng = np.random.default_rng(7)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def write() -> None:
        try:
            for i in range(0, len(starts), 50):
                chunk = [row(s) for s in starts[i : i + 50]]
                store.upsert(chunk)  # appends
                store.upsert([chunk[-1]])  # the forming bar, updated
                back = int(rng.integers(0, i + 1))
                store.upsert([row(s) for s in starts[back : back + 5]])  # a replay / backfill
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def read() -> None:
        try:
            while not stop.is_set():
                frame = store.frame()
                index = pd.DatetimeIndex(frame.index)
                assert index.is_monotonic_increasing
                assert index.is_unique
                assert len(frame) <= 1500
                np.testing.assert_array_equal(frame["Open"].to_numpy(), index.asi8 // 10**9)
                np.testing.assert_array_equal(frame["Close"].to_numpy(), index.asi8 // 10**9)
                stamps = store.stamps()
                assert (np.diff(stamps) > 0).all()
                if stamps.size:
                    cut = store.stamps(int(stamps[stamps.size // 2]))
                    assert (np.diff(cut) > 0).all()
                    cutoff = pd.Timestamp(int(stamps[stamps.size // 2]), tz="UTC")
                    assert (store.frame(cutoff).index <= cutoff).all()
                    assert store.last_stamp_ns() is not None
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert reads[0] > 0
    expected = bars_to_frame([row(s) for s in starts], "1m").iloc[-1500:]
    pd.testing.assert_frame_equal(store.frame(), expected)


def test_bar_stream_restarts_never_ask_for_ever_more_history():
    from itertools import pairwise

    from copilot_quant.brokers.ib_bar_streams import stream_duration

    durations = [stream_duration(30, n) for n in range(40)]  # 40 renewals: e.g. 40 nights of 1101
    assert durations[:5] == ["30 D", "31 D", "32 D", "33 D", "30 D"]
    assert set(durations) == {"30 D", "31 D", "32 D", "33 D"}  # bounded, was "69 D" after 39 restarts
    assert all(a != b for a, b in pairwise(durations))  # never a repeat (pacing)
    assert stream_duration(400, 0) == "2 Y"
