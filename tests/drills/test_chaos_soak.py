"""The chaos soak, short: three strategies on one engine, faults at random and two engine SIGKILLs;
nothing lost, doubled or resent, and each strategy's fills, book and executions agree.

The long run (``python -m tests.drills.soak --bars 50000``) is the same code with more of everything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .soak import SoakConfig, run_soak

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(240)]


def test_a_short_chaos_soak_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config = SoakConfig(bars=500, speed=25, kills=2, faults=6, seed=11, strategies=3)
    report = run_soak(config, tmp_path)
    print(report.table())  # the summary is the point of a soak: keep it in the test's output
    assert report.kills == 2
    assert sum(report.faults.values()) == 6
    # How much it trades depends on the machine's load (bars pass while a killed engine restarts); it must
    # trade through the faults, or it proves nothing.
    assert report.journal_fills >= 5, "the soak must trade, or it proves nothing"
    assert report.executions == report.journal_fills
    assert report.lost == []
    assert report.doubled == []
    assert report.resent == []
    assert report.orphaned == []
    assert report.position_diffs == {}
    # per strategy: its journaled fills are the gateway's executions of its orders, its book is its fills
    assert [r.name for r in report.strategies] == ["Soak1", "Soak2", "Soak3"]
    assert report.strategy_diffs == []
    assert report.double_attributed == []
    for row in report.strategies:
        assert row.fills == row.executions, row.name
    assert sum(r.fills for r in report.strategies) == report.journal_fills
    assert sum(1 for r in report.strategies if r.fills) >= 2, "several strategies must trade"
    assert report.ok
