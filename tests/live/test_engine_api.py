"""Parts of the engine's API that need no gateway: the bounded error and event lists."""

from __future__ import annotations

import copy
import pickle
import threading

from copilot_quant.backtest.live_engine import LiveStrategyEngine, RecentList


def test_a_recent_list_keeps_the_last_items_and_slices_like_a_list():
    recent: RecentList[int] = RecentList(3)
    for n in range(5):
        recent.append(n)
    assert recent == [2, 3, 4]
    assert recent[-2:] == [3, 4]
    assert isinstance(recent[-2:], list)
    assert recent[0] == 2
    assert len(recent) == 3


def test_a_recent_list_copies_and_pickles_with_its_bound():
    recent: RecentList[int] = RecentList(2)
    for n in range(3):
        recent.append(n)
    for twin in (copy.copy(recent), copy.deepcopy(recent), pickle.loads(pickle.dumps(recent))):
        assert twin == [1, 2]
        twin.append(3)
        assert twin == [2, 3]
    assert recent == [1, 2]


def test_iterating_while_another_thread_appends_never_raises():
    recent: RecentList[int] = RecentList(50)
    done = threading.Event()

    def writer() -> None:
        n = 0
        while not done.is_set():
            recent.append(n)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(2000):
            assert len(list(recent)) <= 51  # a deque raised "mutated during iteration" here
    finally:
        done.set()
        thread.join()
    assert len(recent) == 50


def test_the_engine_keeps_errors_and_events_in_bounded_lists():
    engine = LiveStrategyEngine(port=7497, max_errors=3)  # never connected
    assert isinstance(engine.errors, list)
    assert engine.errors.maxlen == 3
    assert engine.errors[-5:] == []
    assert isinstance(engine.events, list)
    assert engine.total_errors == 0
