"""Fixtures for the journal tests: a fresh journal file per test, with a steppable clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from copilot_quant.journal import TradeJournal

from tests.journal.support import ACCOUNT, StepClock


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journals" / f"{ACCOUNT}.sqlite"


@pytest.fixture
def journal(journal_path: Path) -> Iterator[TradeJournal]:
    with TradeJournal(journal_path, account=ACCOUNT, clock=StepClock()) as j:
        yield j
