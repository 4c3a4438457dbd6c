"""Which journal an intent log belongs to: an identity the journal keeps (``meta.journal_id``, made at its
first writable open) and its intent log's first line names (``{"journal":"<id>"}``).

A journal moved aside after a crash leaves its ``-intents`` file behind (the log lives beside the path,
not inside the file). Without this, the next journal created at that path recovered the moved journal's
last intents as its own, and reconciliation then marked those orders "never sent" — orders that may be
working at IB. With it, a log naming another journal is not merged: it is moved aside, with a warning
that names both files and how to recover it into the journal it belongs to. A log without the line
(written before identities existed) is recovered as before, with a warning.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

__all__ = ["META_KEY", "aside_path", "foreign_log_warning", "identity_line", "new_identity", "split_identity"]

#: ``meta`` key of a journal's identity.
META_KEY = "journal_id"


def new_identity() -> str:
    """A new journal's identity (random: two journals never share one, whatever their paths)."""
    return uuid.uuid4().hex


def identity_line(identity: str) -> bytes:
    """The first line of the intent log of the journal ``identity``."""
    return json.dumps({"journal": identity}, separators=(",", ":")).encode() + b"\n"


def split_identity(data: bytes) -> tuple[str | None, bytes]:
    """The identity ``data`` (a log's content) names in its first line, and what follows that line; None and
    ``data`` itself when it has no such line (an older log, or an empty one). An intent's line is a JSON
    array, the identity line an object: the two never read as each other."""
    first, newline, rest = data.partition(b"\n")
    if not newline or not first.startswith(b"{"):
        return None, data
    try:
        value = json.loads(first)
    except ValueError:
        return None, data  # damage; the parse of the rows reports it, at line 1
    owner = value.get("journal") if isinstance(value, dict) else None
    return (owner, rest) if isinstance(owner, str) else (None, data)


def aside_path(log_path: Path, owner: str) -> Path:
    """Where a log of journal ``owner`` found at ``log_path`` is moved: beside it, named after its owner
    (a number added if that name is taken)."""
    candidate = log_path.with_name(f"{log_path.name}.{owner}")
    number = 1
    while candidate.exists():
        number += 1
        candidate = log_path.with_name(f"{log_path.name}.{owner}.{number}")
    return candidate


def foreign_log_warning(log_path: Path, owner: str, journal: Path, identity: str, aside: Path) -> str:
    """What to say when the log at ``log_path`` names journal ``owner``, not ``journal`` (``identity``)."""
    return (
        f"intent log {log_path} belongs to another journal (journal_id {owner}), not to journal {journal} "
        f"(journal_id {identity}): its journal was moved aside or replaced after a crash, and this log holds "
        f"its last intents (orders that may have been sent). It was not merged here: it is now {aside}. To "
        f"recover them, move that file beside the journal it belongs to (the one whose meta table holds "
        f"journal_id {owner}), named '<that journal's file name>-intents', and open that journal for "
        "writing (an engine's start does) before trading on it"
    )
