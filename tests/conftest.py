"""Project-wide test configuration. Area-specific fixtures live in each test folder's conftest.py."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci")


@pytest.fixture(autouse=True, scope="session")
def _no_writes_to_home(tmp_path_factory: pytest.TempPathFactory):
    """Journals, the data store and the download cache go to a temporary directory, never to ``~`` nor to
    a directory the developer's environment names (their own journal dir, say)."""
    import os

    root = tmp_path_factory.mktemp("copilot_quant_home")
    names = {
        "COPILOT_QUANT_JOURNAL_DIR": "journal",
        "COPILOT_QUANT_STORE": "store",
        "COPILOT_QUANT_CACHE": "cache",
    }
    saved = {name: os.environ.get(name) for name in names}
    for name, sub in names.items():
        os.environ[name] = str(root / sub)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """``benchmarks/bench_backtest.py`` as a module: its margin-aware strategies, and through it
    ``agreement``'s ``UP``/``DOWN`` (the tie margin every engine's SMA strategy applies)."""
    sys.path.insert(0, str(BENCHMARKS))  # the benchmarks import each other by bare name, as scripts do
    try:
        import bench_backtest

        yield bench_backtest
    finally:
        sys.path.remove(str(BENCHMARKS))
