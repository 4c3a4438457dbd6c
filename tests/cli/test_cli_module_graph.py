"""The CLI's modules share code through public names of cli/options.py, never each other's private helpers.

Issue 9 §1: ``cli/parity`` and ``cli/sweep`` imported ``_split_tokens``/``_check_dates`` from ``cli/backtest``,
which tied every command to the backtest command's module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import copilot_quant.cli as cli_package

CLI_DIR = Path(cli_package.__file__).parent


def _private_cli_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("copilot_quant.cli."):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_no_cli_module_imports_a_private_name_of_another() -> None:
    offenders = {p.name: _private_cli_imports(p) for p in sorted(CLI_DIR.glob("*.py"))}
    assert {name: names for name, names in offenders.items() if names} == {}


def test_the_shared_argument_checks_live_in_options() -> None:
    from copilot_quant.cli import options

    assert options.split_tokens("s.py:S", ["aapl,msft"], ["TSLA"]) == ("s.py:S", ["AAPL", "MSFT", "TSLA"])
    assert callable(options.check_dates)
