"""Fixtures for the simulated-gateway tests: a running gateway on a free port and a connected ib_async client."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway


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
