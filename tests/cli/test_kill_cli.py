"""`copilot-quant kill --account X [--flatten] [--clear]` and the per-account kill-switch file (no gateway)."""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.cli import app
from copilot_quant.cli.exit_codes import RUNTIME_FAILURE, SUCCESS, USAGE_ERROR
from copilot_quant.errors import ConfigError
from copilot_quant.risk.kill_file import (
    clear_kill_file,
    default_kill_file,
    kill_file_text,
    read_kill_file,
    write_kill_file,
)
from typer.testing import CliRunner

ACCOUNT = "DU1234567"


@pytest.fixture
def journal_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "journal"
    monkeypatch.setenv("COPILOT_QUANT_JOURNAL_DIR", str(path))
    return path


def kill(*args: str):
    return CliRunner().invoke(app, ["kill", *args])


# ------------------------------------------------------------------------------- the path
def test_the_kill_file_lives_next_to_the_accounts_journal(journal_dir: Path) -> None:
    assert default_kill_file(ACCOUNT) == journal_dir / "DU1234567.kill"
    assert default_kill_file(" du1234567 ") == journal_dir / "DU1234567.kill"  # IB ids are upper case


def test_the_kill_file_defaults_to_the_home_journal_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COPILOT_QUANT_JOURNAL_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_kill_file(ACCOUNT) == tmp_path / ".copilot_quant" / "journal" / "DU1234567.kill"


@pytest.mark.parametrize("account", ["", "../etc/passwd", "DU 123", None])
def test_an_account_that_is_no_file_name_is_refused(account: object, journal_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid account id"):
        default_kill_file(account)  # type: ignore[arg-type]


def test_the_file_round_trips_and_is_written_atomically(journal_dir: Path) -> None:
    path = write_kill_file(default_kill_file(ACCOUNT), "desk says stop", flatten=True)
    assert path.read_text(encoding="utf-8") == "desk says stop\nflatten\n"
    assert [p.name for p in journal_dir.iterdir()] == ["DU1234567.kill"]  # no temporary left behind
    found = read_kill_file(path)
    assert found is not None
    assert found.flatten
    assert found.text == "desk says stop"  # the reason as given, without the marker (issue 16)
    assert "cancel all and flatten" in found.describe()
    assert clear_kill_file(path) == found
    assert read_kill_file(path) is None
    assert clear_kill_file(path) is None


def test_a_reason_that_ends_with_flatten_needs_the_flatten_flag() -> None:
    assert kill_file_text("stop now") == "stop now\n"
    assert kill_file_text("do not flatten yet") == "do not flatten yet\n"
    with pytest.raises(ConfigError, match="--flatten"):
        kill_file_text("stop and flatten")  # the engine reads a last word 'flatten' as the marker
    with pytest.raises(ConfigError, match="empty"):
        kill_file_text("  ")


def test_the_reason_is_stored_as_given_with_flatten(journal_dir: Path) -> None:
    result = kill("--account", ACCOUNT, "--reason", "walkthrough", "--flatten")
    assert result.exit_code == SUCCESS, result.output
    found = read_kill_file(journal_dir / "DU1234567.kill")
    assert found is not None
    assert (found.text, found.flatten) == ("walkthrough", True)
    assert "reason 'walkthrough'" in found.describe()


def test_a_file_written_as_one_line_by_an_earlier_version_still_flattens(journal_dir: Path) -> None:
    path = journal_dir / "DU1234567.kill"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("desk flatten\n", encoding="utf-8")
    found = read_kill_file(path)
    assert found is not None
    assert (found.text, found.flatten) == ("desk", True)


# ------------------------------------------------------------------------------- the command
def test_kill_account_writes_the_accounts_file(journal_dir: Path) -> None:
    result = kill("--account", ACCOUNT, "--reason", "desk")
    assert result.exit_code == SUCCESS, result.output
    assert (journal_dir / "DU1234567.kill").read_text(encoding="utf-8") == "desk\n"
    assert f"copilot-quant kill --account {ACCOUNT} --clear" in result.output

    result = kill("--account", ACCOUNT, "--flatten", "--reason", "desk")
    assert result.exit_code == SUCCESS, result.output
    assert "flatten" in (journal_dir / "DU1234567.kill").read_text(encoding="utf-8")
    assert "now also closes every position" in result.output  # an engine already halted escalates


def test_kill_clear_removes_the_file_and_is_fine_without_one(journal_dir: Path) -> None:
    write_kill_file(default_kill_file(ACCOUNT), "old kill")
    result = kill("--account", ACCOUNT, "--clear")
    assert result.exit_code == SUCCESS, result.output
    assert "Removed the kill-switch file" in result.output
    assert "old kill" in result.output
    assert not default_kill_file(ACCOUNT).exists()
    result = kill("--account", ACCOUNT, "--clear")
    assert result.exit_code == SUCCESS, result.output
    assert "nothing to clear" in result.output


def test_kill_with_an_explicit_file_still_works_and_clears(tmp_path: Path) -> None:
    path = tmp_path / "flags" / "STOP"
    assert kill("--kill-switch-file", str(path)).exit_code == SUCCESS
    assert path.read_text(encoding="utf-8") == "manual kill from the command line\n"
    assert kill("--kill-switch-file", str(path), "--clear").exit_code == SUCCESS
    assert not path.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--account"),
        (("--account", ACCOUNT, "--kill-switch-file", "k"), "--account"),
        (("--account", "../x"), "not a valid account id"),
        (("--account", ACCOUNT, "--clear", "--flatten"), "--clear"),
        (("--account", ACCOUNT, "--reason", "then flatten"), "--flatten"),
    ],
)
def test_kill_refuses_bad_input_with_exit_2(args: tuple[str, ...], message: str, journal_dir: Path) -> None:
    result = kill(*args)
    assert result.exit_code == USAGE_ERROR, result.output
    assert message in result.output
    assert not (journal_dir / "DU1234567.kill").exists()


def test_kill_exits_1_when_the_file_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("COPILOT_QUANT_JOURNAL_DIR", str(blocker))
    result = kill("--account", ACCOUNT)
    assert result.exit_code == RUNTIME_FAILURE, result.output
    assert "cannot write" in result.output


# ------------------------------------------------------------------------------- live refuses a stale file
def test_live_refuses_to_start_while_its_kill_switch_file_exists(tmp_path: Path) -> None:
    strategy = tmp_path / "idle.py"
    strategy.write_text(
        "from copilot_quant.backtest.strategy import Strategy\n\n\n"
        "class Idle(Strategy):\n"
        "    def on_data(self, timestamp, data):\n"
        "        return None\n"
    )
    flag = tmp_path / "STOP"
    write_kill_file(flag, "yesterday's kill")
    result = CliRunner().invoke(
        app, ["live", f"{strategy}:Idle", "-s", "AAPL", "--port", "1", "--kill-switch-file", str(flag)]
    )
    assert result.exit_code == RUNTIME_FAILURE, result.output
    assert "yesterday's kill" in result.output
    assert f"copilot-quant kill --kill-switch-file {flag} --clear" in " ".join(result.output.split())
    assert "Connecting" not in result.output  # refused before touching the broker
    assert flag.exists()  # never removed behind the user's back


# ------------------------------------------------------------------------------- an account nobody trades here
def _journal_of(journal_dir: Path, account: str) -> None:
    journal_dir.mkdir(parents=True, exist_ok=True)
    (journal_dir / f"{account}.sqlite").write_bytes(b"")  # only its name matters here


def test_kill_for_an_account_without_a_journal_warns_and_lists_the_ones_with_journals(
    journal_dir: Path,
) -> None:
    _journal_of(journal_dir, ACCOUNT)
    _journal_of(journal_dir, "DU7654321")
    result = kill("--account", "DU123456")  # one digit short
    assert result.exit_code == SUCCESS, result.output  # written anyway: a kill is never held back by a guess
    assert (journal_dir / "DU123456.kill").exists()
    text = " ".join(result.output.split())
    assert "Warning: no journal for DU123456" in text
    assert "Accounts with journals there: DU1234567, DU7654321." in text
    assert "Check the account id" in text
    assert "An engine trading DU123456 from this journal dir halts within about a second" in text


def test_kill_for_an_account_with_a_journal_does_not_warn(journal_dir: Path) -> None:
    _journal_of(journal_dir, ACCOUNT)
    result = kill("--account", ACCOUNT.lower())
    assert result.exit_code == SUCCESS, result.output
    assert "Warning" not in result.output
    assert f"An engine trading {ACCOUNT} from this journal dir halts" in " ".join(result.output.split())


def test_kill_in_a_journal_dir_without_journals_says_so(journal_dir: Path) -> None:
    result = kill("--account", ACCOUNT)
    assert result.exit_code == SUCCESS, result.output
    text = " ".join(result.output.split())
    assert f"Warning: no journal for {ACCOUNT} in {journal_dir}" in text
    assert "There are no journals there at all: is COPILOT_QUANT_JOURNAL_DIR the one the engine uses?" in text


def test_kill_with_an_explicit_file_does_not_look_for_journals(tmp_path: Path, journal_dir: Path) -> None:
    result = kill("--kill-switch-file", str(tmp_path / "STOP"))
    assert result.exit_code == SUCCESS, result.output
    assert "Warning" not in result.output
    assert "An engine watching it (`live --kill-switch-file`) halts" in " ".join(result.output.split())


def test_clearing_needs_no_journal_and_gives_no_warning(journal_dir: Path) -> None:
    write_kill_file(default_kill_file("DU123456"), "typo")
    result = kill("--account", "DU123456", "--clear")
    assert result.exit_code == SUCCESS, result.output
    assert "Warning" not in result.output
