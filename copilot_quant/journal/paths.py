"""Where an account's journal lives: ``$COPILOT_QUANT_JOURNAL_DIR`` or ``~/.copilot_quant/journal``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from copilot_quant.errors import ConfigError

__all__ = ["JOURNAL_DIR_ENV", "check_account", "default_journal_dir", "default_journal_path"]

JOURNAL_DIR_ENV = "COPILOT_QUANT_JOURNAL_DIR"
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_account(account: object) -> str:
    """The account id, stripped; refuse ids that could not be a file name or part of an ``orderRef``."""
    text = account.strip() if isinstance(account, str) else ""
    if not _ACCOUNT.match(text):
        raise ConfigError(
            f"account {account!r} is not a valid account id; use the IB account such as 'DU1234567' "
            "(letters, digits, '_', '.', '-', at most 64 characters)"
        )
    return text


def default_journal_dir() -> Path:
    configured = os.environ.get(JOURNAL_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".copilot_quant" / "journal"


def default_journal_path(account: str) -> Path:
    """One file per account, so that two accounts can never mix their orders."""
    return default_journal_dir() / f"{check_account(account)}.sqlite"
