"""``gc_between_bars``: the collector runs between IB's loop callbacks while the engine runs, and the
interpreter's own settings come back at stop (or are never touched with the option off)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest
from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.errors import ConfigError
from copilot_quant.live.gc_policy import POLL_S, SAFETY_NET, BetweenBarsGc

from .conftest import Scripted


@pytest.fixture
def runtime() -> Iterator[IBRuntime]:
    found = gc.get_threshold()
    rt = IBRuntime("test-gc")
    rt.start()
    try:
        yield rt
    finally:
        rt.close()
        gc.set_threshold(*found)  # whatever a failing test left
        gc.unfreeze()


def _garbage(cycles: int) -> None:
    for _ in range(cycles):  # reference cycles: only the cyclic collector frees them
        a: list[object] = []
        a.append(a)


def test_young_garbage_is_collected_on_the_loop_thread_and_the_settings_come_back(runtime: IBRuntime) -> None:
    found = gc.get_threshold()
    collector = BetweenBarsGc()
    collected: list[str] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append("loop" if runtime.on_loop_thread() else "elsewhere")

    collector.start(runtime)
    gc.callbacks.append(seen)
    try:
        assert collector.active
        assert gc.get_threshold() == (SAFETY_NET, found[1], found[2])
        assert gc.get_freeze_count() > 0
        _garbage(found[0] * 3)  # well past the young threshold found: a collection is due
        deadline = time.monotonic() + 5
        while "loop" not in collected and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert "loop" in collected  # by the loop thread's collector, not the interpreter here
        assert "elsewhere" not in collected  # nothing reached the raised threshold on this thread
    finally:
        gc.callbacks.remove(seen)
        collector.stop()
    assert not collector.active
    assert gc.get_threshold() == found
    assert gc.get_freeze_count() == 0


def test_off_leaves_the_collector_alone(runtime: IBRuntime) -> None:
    found = gc.get_threshold()
    collector = BetweenBarsGc(enabled=False)
    collector.start(runtime)
    assert not collector.active
    assert gc.get_threshold() == found
    assert gc.get_freeze_count() == 0
    collector.stop()
    assert gc.get_threshold() == found


def test_thresholds_changed_meanwhile_are_not_overwritten_at_stop(runtime: IBRuntime) -> None:
    collector = BetweenBarsGc()
    collector.start(runtime)
    gc.set_threshold(1234, 5, 5)  # the application's own choice, made while the engine ran
    collector.stop()
    assert gc.get_threshold() == (1234, 5, 5)


def test_a_process_with_automatic_collection_off_is_left_alone(runtime: IBRuntime) -> None:
    gc.disable()
    try:
        collector = BetweenBarsGc()
        collector.start(runtime)
        assert not collector.active
        assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_the_option_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="gc_between_bars must be True or False"):
        BetweenBarsGc("yes")  # type: ignore[arg-type]


@pytest.mark.network
def test_the_engine_moves_collection_between_bars_while_it_runs_and_refuses_a_bad_option(make_engine) -> None:
    found = gc.get_threshold()
    with pytest.raises(ConfigError, match="gc_between_bars"):
        make_engine(gc_between_bars=1)
    engine = make_engine()
    engine.add_strategy(Scripted())
    assert engine.connect(timeout=10)
    assert engine.start(["AAPL"], lookback_days=10)
    try:
        assert gc.get_threshold()[0] == SAFETY_NET
    finally:
        engine.stop()
    assert gc.get_threshold() == found
    assert gc.get_freeze_count() == 0
    off = make_engine(client_id=91, gc_between_bars=False)
    off.add_strategy(Scripted())
    assert off.connect(timeout=10)
    assert off.start(["AAPL"], lookback_days=10)
    assert gc.get_threshold() == found
    off.stop()
