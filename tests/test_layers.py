"""The package layering holds: no module imports from a floor above its own.

Floors, bottom up: ``errors`` → ``model`` (domain types, ports, fill rules, costs) → ``data``, ``journal``,
``risk`` → the engines and the IB edge (``backtest``, ``brokers``, ``live``) → ``cli``. The simulated
gateway (``gateway``) stands beside the engines: it builds on ``model`` and ``data`` only, so that it
shares the fill rules with the backtest without depending on any engine. Every import in
every module is read with :mod:`ast`, including imports inside functions and under ``TYPE_CHECKING``:
a lazy import still ties the floors together.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import copilot_quant
import pytest
from copilot_quant import model
from copilot_quant.backtest import interfaces, orders

PACKAGE = Path(copilot_quant.__file__).parent
LOW_FLOORS = ("data", "journal", "risk")
ABOVE_LOW_FLOORS = (
    "backtest",
    "brokers",
    "live",
    "gateway",
    "cli",
    "parity",
    "examples",
    "strategies",
    "reports",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    """The ``copilot_quant`` modules that the file at ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return {n for n in found if n == "copilot_quant" or n.startswith("copilot_quant.")}


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _files(subpackage: str) -> list[Path]:
    root = PACKAGE / subpackage
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


def _violations(floor: str, allowed: Callable[[str], bool]) -> list[str]:
    bad = []
    for path in _files(floor):
        for name in sorted(project_imports(path)):
            if not allowed(name):
                bad.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return bad


def test_the_import_reader_sees_lazy_relative_and_type_checking_imports() -> None:
    module = PACKAGE / "model" / "_probe_for_test_layers.py"
    source = (
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "if TYPE_CHECKING:\n    from copilot_quant.backtest.engine import BacktestEngine\n"
        "def f():\n    import copilot_quant.cli.backtest\n"
        "from . import orders\n"
        "from ..data import dates\n"
    )
    module.write_text(source, encoding="utf-8")
    try:
        found = project_imports(module)
    finally:
        module.unlink()
    assert "copilot_quant.backtest.engine" in found
    assert "copilot_quant.cli.backtest" in found
    assert "copilot_quant.model.orders" in found
    assert "copilot_quant.data.dates" in found
    assert "numpy" not in found


def test_model_imports_nothing_of_the_project_but_errors_and_itself() -> None:
    assert _violations("model", lambda name: _subpackage(name) in ("model", "errors")) == []


def test_model_imports_only_the_standard_library_numpy_and_pandas() -> None:
    third_party = set()
    for path in _files("model"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            third_party.update(n.split(".")[0] for n in names if n)
    outside = third_party - set(sys.stdlib_module_names) - {"__future__", "numpy", "pandas", "copilot_quant"}
    assert outside == set()


@pytest.mark.parametrize("floor", LOW_FLOORS)
def test_a_low_floor_never_imports_an_engine_the_ib_edge_or_the_cli(floor: str) -> None:
    assert _violations(floor, lambda name: _subpackage(name) not in ABOVE_LOW_FLOORS) == []


def test_the_guides_import_paths_name_the_same_objects_as_model() -> None:
    for name in ("Order", "Fill", "Position", "OrderSide", "OrderType", "OrderStatus", "TimeInForce"):
        assert getattr(orders, name) is getattr(model, name)
    assert interfaces.IDataFeed is model.IDataFeed
    assert interfaces.IBroker is model.IBroker
    assert isinstance(orders.Order("AAPL", 1), model.Order)


def test_the_simulated_gateway_builds_on_model_and_data_only() -> None:
    allowed = ("model", "errors", "data", "gateway")
    assert _violations("gateway", lambda name: _subpackage(name) in allowed) == []


@pytest.mark.parametrize(
    ("module", "must_not_import"),
    [
        # the core keeps the books and hands news to its publisher; only the publisher knows the handlers
        ("gateway/core.py", "copilot_quant.gateway.handlers"),
        # the fault switches see a gateway through the narrow FaultTarget protocol
        ("gateway/faults.py", "copilot_quant.gateway.server"),
    ],
)
def test_the_gateways_former_import_circles_stay_broken(module: str, must_not_import: str) -> None:
    imports = project_imports(PACKAGE / module)
    assert not [n for n in imports if n == must_not_import or n.startswith(must_not_import + ".")]


@pytest.mark.parametrize(
    ("package", "must_not_import"),
    [
        # the session dispatches to the handlers; they see a client through the ClientSession protocol
        ("gateway/handlers", "copilot_quant.gateway.session"),
        # results render themselves through the reports, which read a result through ReportedResult
        ("reports", "copilot_quant.backtest.results"),
    ],
)
def test_the_type_only_circles_stay_broken(package: str, must_not_import: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for name in project_imports(path)
        if name == must_not_import or name.startswith(must_not_import + ".")
    ]
    assert offenders == []


def test_no_two_cli_modules_import_each_other() -> None:
    # (parity and sweep once imported backtest's private helpers while backtest imported parity)
    imports = {path.stem: project_imports(path) for path in _files("cli")}

    def uses(a: str, b: str) -> bool:
        return any(
            n == f"copilot_quant.cli.{b}" or n.startswith(f"copilot_quant.cli.{b}.") for n in imports[a]
        )

    circles = sorted(
        {tuple(sorted((a, b))) for a in imports for b in imports if a != b and uses(a, b) and uses(b, a)}
    )
    assert circles == []
