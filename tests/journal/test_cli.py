"""`copilot-quant journal` shows and exports the journal, read-only, with errors in one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import typer
from copilot_quant.journal import JOURNAL_DIR_ENV, TradeJournal
from typer.testing import CliRunner

from tests.journal.support import ACCOUNT, T0, StepClock, buy, journal_app, sell


@pytest.fixture
def app() -> typer.Typer:
    return journal_app()


@pytest.fixture
def filled_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(JOURNAL_DIR_ENV, str(tmp_path / "journals"))
    with TradeJournal(account=ACCOUNT, clock=StepClock()) as journal:
        done = journal.record_intent(buy("AAPL", 10), strategy="SmaCross")
        journal.record_submitted(done, 7)
        journal.record_fill(done, "0001.01", "AAPL", "buy", 10, 187.25, T0)
        journal.record_commission("0001.01", 1.0)
        working = journal.record_intent(sell("MSFT", 5, order_type="limit", limit_price=420.5))
        journal.record_submitted(working, 8)
        refused = journal.record_intent(buy("TSLA", 900))
        journal.record_rejected(refused, "order quantity 900 exceeds max_order_quantity 500")
        journal.record_error(refused, 201, "risk limit")
        journal.record_event("start", "SmaCross on DU1234567")
        journal.record_event("halt", "no market data for 130s")
        return journal.path


def test_orders_are_listed_with_state_and_reason(app: typer.Typer, filled_journal: Path) -> None:
    result = CliRunner().invoke(app, ["journal", "--account", ACCOUNT, "orders"])
    assert result.exit_code == 0, result.output
    assert "3 order(s)" in result.output
    for text in ("AAPL", "MSFT", "TSLA", "filled", "submitted", "rejected", "max_order_quantity", "420.5"):
        assert text in result.output
    assert "2024-06-03 09:30:00" in result.output  # T0 shown in New York time
    assert "New York" in result.output


def test_options_work_after_the_sub_command_and_filter(app: typer.Typer, filled_journal: Path) -> None:
    result = CliRunner().invoke(
        app, ["journal", "orders", "--path", str(filled_journal), "--status", "active"]
    )
    assert result.exit_code == 0, result.output
    assert "1 order(s)" in result.output
    assert "MSFT" in result.output
    assert "TSLA" not in result.output


def test_the_only_journal_in_the_directory_is_found_without_options(
    app: typer.Typer, filled_journal: Path
) -> None:
    result = CliRunner().invoke(app, ["journal", "fills"])
    assert result.exit_code == 0, result.output
    assert "0001.01" in result.output
    assert "187.25" in result.output
    assert "commission 1.00" in result.output


def test_errors_and_events_are_shown(app: typer.Typer, filled_journal: Path) -> None:
    errors = CliRunner().invoke(app, ["journal", "errors"])
    assert errors.exit_code == 0, errors.output
    assert "201" in errors.output
    assert "1 order(s) were rejected (last: order quantity 900 exceeds max_order_quantity 500)" in " ".join(
        errors.output.split()
    )
    assert "journal orders --status rejected" in errors.output
    events = CliRunner().invoke(app, ["journal", "events", "--kind", "halt"])
    assert events.exit_code == 0, events.output
    assert "no market data" in events.output
    assert "start" not in events.output.replace("1 event(s)", "")


def test_since_filters_by_new_york_time(app: typer.Typer, filled_journal: Path) -> None:
    later = CliRunner().invoke(app, ["journal", "fills", "--since", "2024-06-03 09:31"])  # T0 is 09:30 EDT
    assert later.exit_code == 0, later.output
    assert "No fills to show." in later.output
    same = CliRunner().invoke(app, ["journal", "fills", "--since", "2024-06-03 09:30"])
    assert "0001.01" in same.output


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_writes_the_rows_shown(
    app: typer.Typer, filled_journal: Path, tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"orders.{suffix}"
    result = CliRunner().invoke(app, ["journal", "orders", "--status", "done", "--export", str(target)])
    assert result.exit_code == 0, result.output
    assert "Exported 2 row(s)" in result.output
    frame = pd.read_csv(target) if suffix == "csv" else pd.read_parquet(target)
    assert sorted(frame["symbol"]) == ["AAPL", "TSLA"]
    assert set(frame["state"]) == {"filled", "rejected"}


def test_the_cli_never_writes_to_the_journal(app: typer.Typer, filled_journal: Path) -> None:
    before = TradeJournal(filled_journal, read_only=True)
    counts = (len(before.orders()), len(before.fills()), len(before.events()))
    before.close()
    for command in ("orders", "fills", "errors", "events"):
        assert CliRunner().invoke(app, ["journal", command]).exit_code == 0
    with TradeJournal(filled_journal, read_only=True) as after:
        assert (len(after.orders()), len(after.fills()), len(after.events())) == counts


def test_mistakes_are_one_red_line_with_exit_code_2(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JOURNAL_DIR_ENV, str(tmp_path / "empty"))
    runner = CliRunner()
    missing = runner.invoke(app, ["journal", "orders"])
    assert missing.exit_code == 2
    assert "no journal in" in missing.output
    assert "Traceback" not in missing.output
    unknown = runner.invoke(app, ["journal", "orders", "--account", "DU0000000"])
    assert unknown.exit_code == 2
    assert "no journal at" in unknown.output
    both = runner.invoke(app, ["journal", "--account", ACCOUNT, "orders", "--path", "x.sqlite"])
    assert both.exit_code == 2
    assert "not both" in both.output
    bad_since = runner.invoke(app, ["journal", "orders", "--path", str(tmp_path), "--since", "yesterdayish"])
    assert bad_since.exit_code == 2


def test_several_journals_need_an_account(app: typer.Typer, filled_journal: Path) -> None:
    TradeJournal(filled_journal.with_name("DU7654321.sqlite"), account="DU7654321").close()
    result = CliRunner().invoke(app, ["journal", "orders"])
    assert result.exit_code == 2
    assert "several journals" in result.output
    assert "DU7654321" in result.output


def test_an_export_name_the_cli_cannot_write_is_refused_in_cli_terms_before_anything_runs(
    app: typer.Typer, filled_journal: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "orders.xlsx"
    result = CliRunner().invoke(app, ["journal", "orders", "--export", str(target)])
    assert result.exit_code == 2
    assert "--export" in result.output
    assert "name the file *.csv or *.parquet" in result.output
    assert "fmt" not in result.output  # a Python keyword the CLI has no option for
    assert "order(s)" not in result.output  # refused before the journal was read
    assert not target.parent.exists()
