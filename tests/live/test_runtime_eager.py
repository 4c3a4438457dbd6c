"""IBRuntime.run_eager and defer: what the loop thread's own handlers (inline dispatch) use instead of run()."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.errors import BrokerError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runtime() -> Iterator[IBRuntime]:
    rt = IBRuntime(name="copilot-quant-test-eager")
    rt.start()
    yield rt
    rt.close()


async def _no_wait(value: int) -> int:
    return value * 2


async def _waits(value: int) -> int:
    await asyncio.sleep(0.01)
    await asyncio.sleep(0)
    return value + 1


async def _fails() -> None:
    raise BrokerError("refused")


async def _fails_after_waiting() -> None:
    await asyncio.sleep(0.01)
    raise BrokerError("refused later")


def test_run_eager_refuses_off_the_loop_thread(runtime):
    coro = _no_wait(1)
    with pytest.raises(BrokerError, match="off the loop thread"):
        runtime.run_eager(coro)


def test_a_coroutine_that_never_waits_is_done_when_run_eager_returns(runtime):
    def on_loop() -> tuple[bool, int]:
        future = runtime.run_eager(_no_wait(21))
        return future.done(), future.result()

    assert runtime.call(on_loop) == (True, 42)


def test_one_that_waits_goes_on_as_a_task_without_blocking_the_loop(runtime):
    def on_loop():
        future = runtime.run_eager(_waits(1))
        return future, future.done()

    future, done_at_once = runtime.call(on_loop)
    assert done_at_once is False
    assert future.result(timeout=5) == 2  # the loop kept running and finished it


def test_errors_reach_the_future_whether_raised_at_once_or_later(runtime):
    at_once = runtime.call(lambda: runtime.run_eager(_fails()))
    later = runtime.call(lambda: runtime.run_eager(_fails_after_waiting()))
    with pytest.raises(BrokerError, match="refused"):
        at_once.result(timeout=5)
    with pytest.raises(BrokerError, match="refused later"):
        later.result(timeout=5)


def test_defer_on_the_loop_runs_after_the_current_callback(runtime):
    order: list[str] = []

    def on_loop() -> None:
        runtime.defer(order.append, "deferred")
        order.append("current")

    runtime.call(on_loop)
    runtime.call(lambda: None)  # one more turn of the loop
    assert order == ["current", "deferred"]


def _drive(runtime: IBRuntime, coro) -> tuple[bool, list[object], list[bool]]:
    """drive_eager on the loop thread: (whether it finished at once, the outcomes seen, on the loop each)."""
    seen: list[object] = []
    where: list[bool] = []

    def then(outcome) -> None:
        where.append(runtime.on_loop_thread())
        try:
            seen.append(outcome())
        except BrokerError as exc:
            seen.append(exc)

    at_once = runtime.call(lambda: runtime.drive_eager(coro, then))
    return at_once, seen, where


def test_drive_eager_hands_the_result_over_at_once_without_a_future(runtime):
    at_once, seen, where = _drive(runtime, _no_wait(21))
    assert at_once
    assert seen == [42]
    assert where == [True]
    at_once, seen, _ = _drive(runtime, _fails())
    assert at_once
    assert [str(e) for e in seen] == ["refused"]  # raised where the outcome is read


def test_drive_eager_goes_on_as_a_task_and_hands_over_on_the_loop_thread(runtime):
    for coro, expected in ((_waits(1), "2"), (_fails_after_waiting(), "refused later")):
        at_once, seen, where = _drive(runtime, coro)
        assert not at_once
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:  # the task ends on the loop meanwhile
            time.sleep(0.005)
        assert [str(v) for v in seen] == [expected]
        assert where == [True]


def test_drive_eager_refuses_off_the_loop_thread(runtime):
    with pytest.raises(BrokerError, match="off the loop thread"):
        runtime.drive_eager(_no_wait(1), lambda outcome: None)


def test_start_task_runs_on_the_loop_and_reports_a_failure(runtime, caplog):
    done: list[int] = []

    async def records() -> None:
        await asyncio.sleep(0)
        done.append(1)

    runtime.call(lambda: runtime.start_task(records(), "records"))  # from the loop thread: created at once
    runtime.start_task(_fails_after_waiting(), "fails")  # from here: as spawn
    runtime.call(lambda: runtime.start_task(_fails_after_waiting(), "fails on the loop"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        not done or sum("refused later" in r.getMessage() for r in caplog.records) < 2
    ):
        time.sleep(0.005)
    assert done == [1]
    failures = [r.getMessage() for r in caplog.records if "refused later" in r.getMessage()]
    assert any(m.startswith("background task fails on the loop failed") for m in failures)
    assert any(m.startswith("background task fails failed") for m in failures)
