"""Project-wide test configuration. Area-specific fixtures live in each test folder's conftest.py."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_ib_decoder_errors(caplog: pytest.LogCaptureFixture):
    """Fail any test during which ib_async logged a decoding error (a frame it could not parse)."""
    caplog.set_level(logging.WARNING, logger="ib_async")
    yield
    bad = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and (r.name == "ib_async.Decoder" or (r.name.startswith("ib_async.") and r.exc_info))
    ]
    if bad:
        pytest.fail("ib_async reported decoding errors:\n" + "\n".join(r.getMessage() for r in bad))
