"""The per-account kill-switch file: ``copilot-quant kill --account X`` writes it, ``copilot-quant live`` watches it.

The file lives next to the account's journal, ``<journal dir>/<ACCOUNT>.kill`` (the journal dir is
``$COPILOT_QUANT_JOURNAL_DIR`` or ``~/.copilot_quant/journal``, see :mod:`copilot_quant.journal.paths`), so
a process that knows only the account id can stop the engine trading it. Its first line is the reason; a
last line (or last word) ``flatten`` also closes every position (what
:class:`~copilot_quant.backtest.live_engine.LiveStrategyEngine` looks for when its ``kill_switch_file``
appears). The reason is read back without that marker: ``kill --reason walkthrough --flatten`` is reason
"walkthrough", asking to flatten.

The file is left in place after the engine acted on it: a new ``copilot-quant live`` for the account
refuses to start while it exists, so that an old kill is never forgotten nor re-triggered silently —
remove it with ``copilot-quant kill --account X --clear``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from copilot_quant.errors import ConfigError
from copilot_quant.journal.paths import check_account, default_journal_dir

__all__ = [
    "KILL_FILE_SUFFIX",
    "KillFile",
    "clear_kill_file",
    "default_kill_file",
    "kill_file_text",
    "read_kill_file",
    "write_kill_file",
]

KILL_FILE_SUFFIX = ".kill"
_FLATTEN = "flatten"


def default_kill_file(account: str) -> Path:
    """``<journal dir>/<ACCOUNT>.kill``: the kill-switch file of ``account`` (ConfigError if not an id).

    The id is upper-cased (IB's account ids are), so that ``--account du1234567`` stops the same engine.
    """
    return default_journal_dir() / f"{check_account(account).upper()}{KILL_FILE_SUFFIX}"


@dataclass(frozen=True, slots=True)
class KillFile:
    """An existing kill-switch file: where, what it says, whether it asks to flatten, and when written."""

    path: Path
    text: str
    flatten: bool
    written: datetime

    def describe(self) -> str:
        what = "cancel all and flatten" if self.flatten else "cancel all"
        said = f", reason {self.text!r}" if self.text else ""
        return f"{self.path} (written {self.written:%Y-%m-%d %H:%M:%S} UTC{said}; {what})"


def kill_file_text(reason: str, flatten: bool = False) -> str:
    """The file's content for ``reason``: the reason on one line, then ``flatten`` on a line of its own
    when positions are to be closed too.

    A reason whose last word is ``flatten`` without ``flatten=True`` is refused (ConfigError): the engine
    would read it as the marker and flatten although it was not asked to.
    """
    text = " ".join(str(reason or "").split())
    if not text:
        raise ConfigError("the kill reason is empty; say why, e.g. --reason 'manual stop'")
    if not flatten and _ends_with_marker(text):
        raise ConfigError(
            f"the reason {text!r} ends with the word 'flatten', which makes the engine close every position; "
            "pass --flatten if that is meant, or reword the reason"
        )
    return f"{text}\n{_FLATTEN}\n" if flatten else f"{text}\n"


def _ends_with_marker(text: str) -> bool:
    words = text.split()
    return bool(words) and words[-1].lower() == _FLATTEN


def write_kill_file(path: str | Path, reason: str, flatten: bool = False) -> Path:
    """Write the kill-switch file atomically (the engine never reads half a file); returns its path."""
    target = Path(path)
    content = kill_file_text(reason, flatten)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(content, encoding="utf-8")
    temporary.replace(target)
    return target


def read_kill_file(path: str | Path) -> KillFile | None:
    """The kill-switch file at ``path``, or None if there is none."""
    target = Path(path)
    try:
        stat = target.stat()
    except FileNotFoundError:
        return None
    try:
        text = " ".join(target.read_text(encoding="utf-8").split())
    except (OSError, UnicodeDecodeError):
        text = ""
    flatten = _ends_with_marker(text)  # also a file written as "reason flatten" on one line
    reason = text[: -len(_FLATTEN)].strip() if flatten else text
    return KillFile(target, reason, flatten, datetime.fromtimestamp(stat.st_mtime, UTC))


def clear_kill_file(path: str | Path) -> KillFile | None:
    """Remove the kill-switch file; returns what it was (None if there was none)."""
    existing = read_kill_file(path)
    if existing is not None:
        Path(path).unlink(missing_ok=True)
    return existing
