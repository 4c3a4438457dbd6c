"""`copilot-quant live`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `live` command(s) to ``app``."""
