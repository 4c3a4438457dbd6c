"""`copilot-quant data`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `data` command(s) to ``app``."""
