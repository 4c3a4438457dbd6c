"""Benchmarks and parity runs never write into the user's home (the default journal lives there).

Issue 16: ``benchmarks/bench_live.py`` journaled its "Flip" orders into ``~/.copilot_quant/journal``, so the
user's first ``copilot-quant live`` warned about a strategy they never ran. Each test here runs the code with
``HOME`` pointed at an empty directory and no ``COPILOT_QUANT_JOURNAL_DIR``, and checks it stayed empty.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

BENCH_LIVE = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_live.py"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.delenv("COPILOT_QUANT_JOURNAL_DIR", raising=False)
    return root


def _load_bench_live():
    spec = importlib.util.spec_from_file_location("bench_live_under_test", BENCH_LIVE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_live_benchmark_writes_nothing_into_home(home: Path) -> None:
    bench = _load_bench_live()
    samples = bench.bench_engine(bench.InProcessGateway(), 2)
    assert samples, "the benchmark should have measured orders"
    assert list(home.rglob("*")) == []


def test_a_parity_run_writes_nothing_into_home(home: Path) -> None:
    from copilot_quant.examples.sma_cross import SimpleMovingAverage
    from copilot_quant.parity import run_parity

    report = run_parity(SimpleMovingAverage, ["AAPL"], "2010-01-01", "2010-03-31")
    assert report.live.orders
    assert list(home.rglob("*")) == []
