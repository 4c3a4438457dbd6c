"""Fixtures for the simulated-gateway tests: a running gateway on a free port and a connected ib_async client."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Iterator

import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB


@pytest.fixture(autouse=True)
def _close_client_loop() -> Iterator[None]:
    """Close the loop ib_async's sync API ran on in this thread, so no socket or loop outlives the test.

    ``IB.connect()`` from a test uses this thread's default event loop, and ``IB.disconnect()`` only
    *schedules* the socket's closing on it. Left alone, that loop and a half-closed transport lived on
    until a later test (in another folder) replaced the thread's loop, and the garbage collector then
    reported "unclosed event loop" / "unclosed transport" there. ib_async makes a fresh loop for the next
    test when it finds this one closed.
    """
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:  # no loop set for this thread: nothing to close
            return
    if loop.is_closed() or loop.is_running():
        return
    loop.run_until_complete(asyncio.sleep(0))  # let scheduled transport closes run
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@pytest.fixture(scope="session")
def sample_feed():
    from copilot_quant.data.providers import SampleDataProvider

    return SampleDataProvider()


@pytest.fixture
def gateway(sample_feed) -> Iterator[GatewayServer]:
    """Sample daily data (AAPL, MSFT, IBM, GOOG, FB), clock paused just after the last bar."""
    with running_gateway(data=sample_feed) as gw:
        yield gw


@pytest.fixture
def minute_gateway() -> Iterator[GatewayServer]:
    """Synthetic one-minute bars for AAPL and MSFT, replayed minute by minute."""
    feed = SyntheticDataProvider(["AAPL", "MSFT"], seed=3, start="2024-01-02", periods=3000, interval="1m")
    with running_gateway(data=feed, bar_interval="1m") as gw:
        yield gw


@pytest.fixture
def ib(gateway):
    with connected_ib(gateway, client_id=1) as client:
        yield client


@pytest.fixture
def timeout_records(caplog: pytest.LogCaptureFixture):
    """ib_async's 'request timed out' warnings seen during the test (there must be none)."""
    caplog.set_level(logging.INFO, logger="ib_async")

    def records() -> list[str]:
        return [r.getMessage() for r in caplog.records if "timed out" in r.getMessage()]

    return records


def wait_until(ib: IB, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Let ib_async process messages until ``condition`` holds (or ``timeout`` seconds pass)."""
    waited = 0.0
    while not condition() and waited < timeout:
        ib.sleep(0.01)
        waited += 0.01
    return condition()
