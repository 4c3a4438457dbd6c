"""The console's read-only journal views on a real journal file."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from copilot_quant.console.reader import JournalFilter, JournalReader
from copilot_quant.errors import ConfigError

from tests.console.conftest import write_journal


def test_positions_and_the_pnl_curve_follow_the_strategy_s_fills(journal_file: Path) -> None:
    reader = JournalReader(journal_file)
    # buy 10 @100, sell 10 @101, buy 10 @102 (commission unknown: 0)
    assert reader.positions("SmaCross") == {"AAPL": 10.0}
    curve = reader.equity_curve("SmaCross")
    assert [round(v, 6) for _, v in curve] == [0.0, 10.0, 10.0]
    assert reader.strategies() == ["SmaCross"]
    assert reader.last_fill_by_symbol()[0]["price"] == 102.0


def test_filters_by_date_symbol_and_strategy(tmp_path: Path) -> None:
    reader = JournalReader(write_journal(tmp_path / "j.sqlite", fills=4))
    assert len(reader.table("fills", JournalFilter())) == 4
    assert len(reader.table("fills", JournalFilter(symbol="MSFT"))) == 0
    assert len(reader.table("fills", JournalFilter(strategy="Other"))) == 0
    assert len(reader.table("fills", JournalFilter(since=date(2024, 3, 2)))) == 0
    assert len(reader.table("fills", JournalFilter(until=date(2024, 3, 1)))) == 4
    assert [r["kind"] for r in reader.table("alerts", JournalFilter())] == ["halt"]


def test_the_csv_export_holds_every_filtered_row(journal_file: Path) -> None:
    text = JournalReader(journal_file).csv("fills", JournalFilter(symbol="aapl"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["exec_id"] for r in rows] == ["exec-0", "exec-1", "exec-2"]
    assert rows[0]["strategy"] == "SmaCross"


def test_bad_input_is_named(journal_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="since='03/01/2024' is not a date"):
        JournalFilter.parse({"since": "03/01/2024"})
    with pytest.raises(ConfigError, match="unknown journal table"):
        JournalReader(journal_file).table("secrets", JournalFilter())
    with pytest.raises(ConfigError, match="no journal at"):
        JournalReader(tmp_path / "missing.sqlite")


def test_the_reader_never_writes(journal_file: Path) -> None:
    before = journal_file.stat().st_mtime_ns
    reader = JournalReader(journal_file)
    reader.counts()
    reader.table("orders", JournalFilter())
    assert journal_file.stat().st_mtime_ns == before
