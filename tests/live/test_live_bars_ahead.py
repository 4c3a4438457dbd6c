"""LiveBars.prepare: the frame built ahead (off the path to the orders) is exactly the frame built at the bar.

The engine builds the next bar's window after a bar's orders went out; the next ``frame`` of exactly those
rows hands it out once, with the rows written since (the forming bar's final values, a new day's bar that
was guessed) copied in. Whatever was prepared, and whenever, every ``frame`` must equal the one a store
without any preparing returns — no placeholder row, no stale value, no bar past the cut-off.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from copilot_quant.brokers import live_bars as live_bars_module
from copilot_quant.brokers.ib_mapping import bars_to_frame
from copilot_quant.brokers.live_bars import LiveBars
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.live.test_live_bars import HOURLY_STARTS, SESSIONS, bar, prices

#: What a test does to the store, one step at a time.
_STEPS = st.one_of(
    st.tuples(st.just("upsert"), st.integers(0, len(SESSIONS) - 1), prices),
    st.tuples(st.just("prepare"), st.integers(-1, 2), st.just(0.0)),
    st.tuples(st.just("frame"), st.integers(-1, 2), st.just(0.0)),
)


def _stamp_of(store: LiveBars, back: int) -> int | None:
    """The stamp ``back`` rows before the newest (None: no cut-off, -1: one past the newest)."""
    stamps = store.stamps()
    if back < 0 or not stamps.size:
        return None
    return int(stamps[max(stamps.size - 1 - back, 0)])


@settings(max_examples=120, deadline=None)
@given(
    interval=st.sampled_from(["1d", "1wk"]),
    size=st.one_of(st.none(), st.integers(2, 20)),
    steps=st.lists(_STEPS, max_size=60),
)
def test_every_frame_equals_the_one_a_store_that_never_prepares_builds(
    interval: str, size: int | None, steps: list[tuple[str, int, float]]
) -> None:
    prepared = LiveBars(interval) if size is None else LiveBars(interval, size=size)
    plain = LiveBars(interval) if size is None else LiveBars(interval, size=size)
    for what, arg, price in steps:
        if what == "upsert":
            row = bar(SESSIONS[arg], o=price, c=price)
            prepared.upsert([row])
            plain.upsert([row])
        elif what == "prepare":
            prepared.prepare(_stamp_of(prepared, arg))
        else:
            cutoff = _stamp_of(plain, arg)
            pd.testing.assert_frame_equal(prepared.frame(cutoff), plain.frame(cutoff))
            np.testing.assert_array_equal(prepared.stamps(cutoff), plain.stamps(cutoff))
    pd.testing.assert_frame_equal(prepared.frame(), plain.frame())


def _spy_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the frames built (rows of each): a frame handed out from ``prepare`` builds none."""
    built: list[int] = []
    original = live_bars_module._build_frame

    def build(stamps: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        built.append(len(stamps))
        return original(stamps, values)

    monkeypatch.setattr(live_bars_module, "_build_frame", build)
    return built


def test_the_forming_bar_prepared_ahead_is_handed_out_with_its_final_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = LiveBars("1d")
    store.upsert([bar(day, c=float(i)) for i, day in enumerate(SESSIONS[:5])])
    store.upsert([bar(SESSIONS[5], o=1.0, h=1.0, lo=1.0, c=1.0)])  # the day's bar, forming
    store.prepare(_stamp_of(store, 1))  # delivered: the day before; the forming bar is in the frame
    assert store.prepared()
    built = _spy_builds(monkeypatch)
    final = bar(SESSIONS[5], o=1.0, h=9.0, lo=0.5, c=7.0, v=1234.0)
    store.upsert([final])  # its last updates, after the frame was built
    store.upsert([bar(SESSIONS[6], c=-1.0)])  # the next day's bar begins
    assert len(store.frame()) == 7  # every bar held (get_latest_bar's read): built, the one ahead kept
    assert built == [7]
    built.clear()
    close = _stamp_of(store, 1)
    window = store.frame(close)
    assert built == []  # handed out, not built
    pd.testing.assert_frame_equal(window, bars_to_frame([*_rows(store, close)], "1d"))
    assert window.iloc[-1].tolist() == [1.0, 9.0, 0.5, 7.0, 1234.0]
    assert window.index[-1] == pd.Timestamp(close, tz="UTC")
    assert not store.prepared()  # handed out once: the next ask builds
    built.clear()
    again = store.frame(close)
    assert built == [len(window)]
    pd.testing.assert_frame_equal(again, window)


def _rows(store: LiveBars, cutoff: int | None) -> list[Any]:
    """The store's rows up to ``cutoff`` as bars (a reference built through bars_to_frame)."""
    frame = store.frame()
    if cutoff is not None:
        frame = frame[frame.index.asi8 <= cutoff]
    days = [ts.tz_convert("America/New_York").date() for ts in frame.index]
    return [
        bar(day, o=r.Open, h=r.High, lo=r.Low, c=r.Close, v=r.Volume)
        for day, r in zip(days, frame.itertuples(), strict=True)
    ]


def test_a_replay_publishing_complete_days_gets_the_next_day_guessed_and_never_sees_it_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = LiveBars("1d")
    store.upsert([bar(day, c=float(i)) for i, day in enumerate(SESSIONS[:5])])
    built = _spy_builds(monkeypatch)
    looked_up: list[Any] = []
    lookup = live_bars_module._session_close_ns
    monkeypatch.setattr(live_bars_module, "_session_close_ns", lambda *a: looked_up.append(a) or lookup(*a))
    for k in range(5, 12):
        delivered = store.last_stamp_ns()
        store.prepare(delivered)  # the newest bar is complete: the next session's bar is guessed
        assert store.prepared()
        # before the next bar comes, no frame shows the placeholder: only the bars held
        assert not store.frame().isna().any().any()
        assert len(store.frame(delivered)) == k
        built.clear()
        looked_up.clear()
        store.upsert([bar(SESSIONS[k], o=float(k), c=float(k) + 0.5)])  # a whole day, complete at once
        assert looked_up == []  # its label was stamped when it was guessed
        now = store.last_stamp_ns()
        window = store.frame(now)
        assert built == []  # the frame built ahead, with the day's values copied in
        assert len(window) == k + 1
        assert window.iloc[-1]["Close"] == float(k) + 0.5
        assert not window.isna().any().any()
        pd.testing.assert_frame_equal(window, bars_to_frame(_rows(store, now), "1d"))


def test_a_guess_that_missed_builds_the_frame_as_always(monkeypatch: pytest.MonkeyPatch) -> None:
    store = LiveBars("1d")
    store.upsert([bar(day) for day in SESSIONS[:5]])
    store.prepare(store.last_stamp_ns())
    built = _spy_builds(monkeypatch)
    store.upsert([bar(SESSIONS[6], c=3.0)])  # a session skipped: not the stamp guessed
    assert not store.prepared()
    window = store.frame(store.last_stamp_ns())
    assert built == [6]
    assert window.iloc[-1]["Close"] == 3.0
    assert not window.isna().any().any()


def test_a_gap_backfilled_after_preparing_is_in_the_next_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    store = LiveBars("1d")
    store.upsert([bar(day) for day in SESSIONS[:3] + SESSIONS[4:7]])  # SESSIONS[3] missed
    store.prepare(_stamp_of(store, 1))
    built = _spy_builds(monkeypatch)
    store.upsert([bar(SESSIONS[3], c=42.0)])  # a reconnect's replay fills the gap: the rows move
    window = store.frame(_stamp_of(store, 1))
    assert built == [6]
    assert window["Close"].tolist()[3] == 42.0
    assert len(window) == 6


def test_a_frame_handed_out_from_the_one_built_ahead_is_the_callers_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = LiveBars("1h")
    store.upsert([bar(start, c=float(i)) for i, start in enumerate(HOURLY_STARTS[:6])])
    cutoff = _stamp_of(store, 0)
    store.prepare(_stamp_of(store, 1))
    built = _spy_builds(monkeypatch)
    held = store.frame(cutoff)
    assert built == []
    snapshot = held.copy(deep=True)
    store.upsert([bar(HOURLY_STARTS[5], c=-6.0)])  # the store changes: the frame handed out does not
    pd.testing.assert_frame_equal(held, snapshot)
    held.iloc[0, 0] = -1.0  # the caller changes it: the store does not
    held["Close"] = 0.0
    assert store.frame()["Close"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, -6.0]


def test_preparing_while_bars_are_written_and_read_keeps_every_frame_exact() -> None:
    """A writer (the IB loop), a preparer and a reader on three threads: every frame read matches its rows."""
    store = LiveBars("1d", size=40)
    days = SESSIONS  # ~60 sessions, written over and over with new values (40 kept)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for rnd in range(30):
                for i, day in enumerate(days):
                    value = float(rnd * 1000 + i)
                    store.upsert([bar(day, o=value, h=value, lo=value, c=value, v=value)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def prepare() -> None:
        try:
            while not stop.is_set():
                store.prepare(store.last_stamp_ns())
                store.prepare(_stamp_of(store, 1))
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def read() -> None:
        try:
            while not stop.is_set():
                for back in (0, 1):
                    frame = store.frame(_stamp_of(store, back))
                    assert not frame.isna().any().any()
                    # every row holds one value throughout: a row half copied would show two
                    values = frame.to_numpy()
                    assert (values == values[:, :1]).all()
                    assert frame.index.is_monotonic_increasing
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=f) for f in (write, prepare, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


@settings(max_examples=60, deadline=None)
@given(
    interval=st.sampled_from(["1d", "1wk", "1mo"]),
    picks=st.lists(st.integers(0, len(SESSIONS) - 1), min_size=1, max_size=40),
    cut=st.integers(0, len(SESSIONS) - 1),
    after=st.integers(-1, len(SESSIONS) - 1),
)
def test_stamps_after_a_bar_are_the_stamps_past_it(
    interval: str, picks: list[int], cut: int, after: int
) -> None:
    store = LiveBars(interval)
    store.upsert([bar(SESSIONS[i]) for i in picks])
    every = pd.DatetimeIndex(bars_to_frame([bar(d) for d in SESSIONS], "1d").index).asi8
    cutoff = int(every[cut])
    after_ns = -1 if after < 0 else int(every[after])
    stamps = store.stamps(cutoff)
    np.testing.assert_array_equal(store.stamps(cutoff, after_ns), stamps[stamps > after_ns])
