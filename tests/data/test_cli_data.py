"""`copilot-quant data list|import|show` through typer's CliRunner, on real files and a real Parquet store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from copilot_quant.cli.data import app
from copilot_quant.data.store import ParquetStore
from typer.testing import CliRunner

runner = CliRunner()

CSV = """Date,Open,High,Low,Close,Volume
2024-01-02,100,110,90,104,1000
2024-01-03,104,108,100,106,2000
2024-01-04,106,107,101,102,1500
"""


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv("COPILOT_QUANT_STORE", str(root))
    return root


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "acme.csv"
    path.write_text(CSV)
    return path


def run(*args: str):
    return runner.invoke(app, list(args))


def test_list_sample_shows_symbols_and_spans():
    result = run("list", "--source", "sample")
    assert result.exit_code == 0, result.output
    for symbol in ("AAPL", "MSFT", "IBM", "GOOG", "FB"):
        assert symbol in result.output
    assert "3270" in result.output
    assert "2000-03-01 16:00 EST" in result.output


def test_list_of_an_empty_store_says_how_to_fill_it(store_dir):
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "No symbols" in result.output
    assert "data import" in result.output


def test_import_then_list_then_show_round_trips_through_the_store(store_dir, csv_file):
    imported = run("import", str(csv_file))
    assert imported.exit_code == 0, imported.output
    assert "ACME" in imported.output
    assert (store_dir / "1d" / "ACME.parquet").is_file()
    stored = ParquetStore(store_dir).get_historical_data("ACME")
    assert stored["Close"].tolist() == [104, 106, 102]

    listed = run("list")
    assert listed.exit_code == 0, listed.output
    assert "ACME" in listed.output
    assert "2024-01-04 16:00 EST" in listed.output

    shown = run("show", "acme")
    assert shown.exit_code == 0, shown.output
    assert "all 3 bars" in shown.output
    assert "104.00" in shown.output
    assert "-1.92%" in shown.output  # 102 / 104 - 1


def test_import_honours_symbol_interval_and_an_explicit_store(tmp_path, csv_file):
    root = tmp_path / "elsewhere"
    result = run("import", str(csv_file), "--symbol", "xyz", "--interval", "1d", "--store", str(root))
    assert result.exit_code == 0, result.output
    assert ParquetStore(root).symbols() == ["XYZ"]
    listed = run("list", "--store", str(root))
    assert "XYZ" in listed.output


def test_import_warns_once_about_dates_that_are_not_sessions(store_dir, tmp_path, caplog):
    path = tmp_path / "odd.csv"
    path.write_text(CSV + "2024-01-06,102,103,101,102,100\n2024-01-07,102,103,101,102,100\n")  # a weekend
    with caplog.at_level(logging.WARNING):
        result = run("import", str(path))
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if "not XNYS sessions" in r.getMessage()]
    assert warnings == [
        "2 date(s) are not XNYS sessions (first: 2024-01-06); stamped at 16:00 America/New_York."
    ]


def test_show_prints_head_tail_and_summary_for_a_date_range():
    result = run(
        "show", "AAPL", "--source", "sample", "--start", "2010-01-01", "--end", "2010-03-31", "-n", "2"
    )
    assert result.exit_code == 0, result.output
    assert "first 2 bars" in result.output
    assert "last 2 bars" in result.output
    assert "2010-01-04 16:00 EST" in result.output  # first session of 2010
    assert "2010-03-31 16:00 EDT" in result.output  # end date included, after the DST change
    assert "AAPL summary" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "ZZZZ", "--source", "sample"], "no data for 'ZZZZ'"),
        (["show", "AAPL", "--source", "sample", "--start", "someday"], "Cannot read 'someday'"),
        (
            ["show", "AAPL", "--source", "sample", "--start", "2011-01-01", "--end", "2010-01-01"],
            "Empty date range",
        ),
        (["show", "AAPL", "--source", "sample", "--interval", "2d"], "Unsupported interval '2d'"),
        (["show", "AAPL", "--source", "nowhere"], "Unknown data source 'nowhere'"),
        (["show", "AAPL", "--source", "sample", "--store", "x"], "--store only applies"),
        (["import", "no/such/file.csv"], "does not exist"),
    ],
)
def test_bad_input_prints_one_clear_error_and_exits_2(store_dir, args, message):
    result = run(*args)
    assert result.exit_code == 2  # bad input, as for every command
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_range_without_bars_is_reported_not_shown_as_empty():
    result = run("show", "AAPL", "--source", "sample", "--start", "2010-01-02", "--end", "2010-01-03")
    assert result.exit_code == 2
    assert "No 1d bars for AAPL" in result.output


def test_the_data_group_is_registered_on_the_main_app():
    from copilot_quant.cli import app as main_app

    result = runner.invoke(main_app, ["data", "list", "--source", "sample"])
    assert result.exit_code == 0, result.output
    assert "AAPL" in result.output


def test_show_reads_a_csv_directory_source(csv_file):
    result = run("show", "ACME", "--source", f"csv:{csv_file.parent}")
    assert result.exit_code == 0, result.output
    assert "2024-01-02 16:00 EST" in result.output
    assert "3 × 1d" in result.output


def test_list_of_a_generating_source_says_how_to_ask_for_a_symbol():
    result = run("list", "--source", "synthetic")
    assert result.exit_code == 0, result.output
    assert "data show SYMBOL --source synthetic" in result.output
