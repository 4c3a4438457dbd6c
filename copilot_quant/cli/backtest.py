"""`copilot-quant backtest`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `backtest` command(s) to ``app``."""
