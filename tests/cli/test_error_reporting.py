"""Every command reports a failure the same way: one red line, the message exactly as written, exit 1 or 2.

Paths with square brackets are the trap: rich would take ``[2024]`` for markup and drop it (or raise).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, USAGE_ERROR
from copilot_quant.cli.reporting import friendly_errors
from copilot_quant.errors import ConfigError, GatewayError
from typer.testing import CliRunner


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_journal_path_with_brackets_is_shown_as_written(tmp_path: Path) -> None:
    missing = tmp_path / "[red]desk[/red]" / "DU1.sqlite"
    result = _run("journal", "--path", str(missing), "orders")
    assert result.exit_code == USAGE_ERROR, result.output
    assert "Error:" in result.output
    assert "[red]desk[/red]" in " ".join(result.output.split()).replace(
        " ", ""
    )  # the markup shown, not applied


def test_a_data_import_of_a_bracketed_missing_file_is_shown_as_written(tmp_path: Path) -> None:
    missing = tmp_path / "[b]2024[/b]" / "aapl.csv"
    result = _run("data", "import", str(missing), "--symbol", "AAPL")
    assert result.exit_code == USAGE_ERROR, result.output
    assert "[b]2024[/b]" in result.output.replace("\n", "")


@pytest.mark.parametrize(
    ("error", "code"), [(ConfigError("bad [x]"), USAGE_ERROR), (GatewayError("down"), RUNTIME_FAILURE)]
)
def test_friendly_errors_prints_one_line_and_exits_with_the_errors_code(capsys, error, code) -> None:
    import typer

    with pytest.raises(typer.Exit) as exited, friendly_errors():
        raise error
    assert exited.value.exit_code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"Error: {error}" in err


def test_friendly_errors_joins_a_multiline_message(capsys) -> None:
    import typer

    with pytest.raises(typer.Exit), friendly_errors():
        raise ConfigError("first line\n  second line")
    assert "Error: first line second line" in capsys.readouterr().err
