"""Fixtures for running the guide's code examples verbatim against the simulated gateway on port 7497.

The examples are read from ``LIVE_INTEGRATION_GUIDE.md`` (a verbatim copy of the guide next to this file)
and executed unchanged. Names an example uses without importing (the guide shows them in earlier
examples or assumes them: ``time``, ``sys``, ``datetime``, ``engine``, ``broker`` …) are supplied in its
namespace. ``time.sleep`` in an example is shortened (60 s → 0.2 s) so a loop that monitors the engine
runs a few rounds quickly; the engine itself runs on real time.
"""

from __future__ import annotations

import ast
import re
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayConfig, GatewayServer

GUIDE = Path(__file__).with_name("LIVE_INTEGRATION_GUIDE.md")
GUIDE_PORT = 7497  # the guide's default: paper trading on TWS


def guide_blocks(language: str = "python") -> list[str]:
    """Every fenced code block of the guide in ``language``, in order, exactly as written."""
    text = GUIDE.read_text(encoding="utf-8")
    return [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, re.S) if lang == language]


def snippet(first_line: str, language: str = "python") -> str:
    """The guide's code block that starts with ``first_line``."""
    found = [b for b in guide_blocks(language) if b.startswith(first_line)]
    assert len(found) == 1, f"the guide has {len(found)} blocks starting with {first_line!r}"
    return found[0]


def statements(code: str) -> list[str]:
    """The top-level statements of ``code``, each as its verbatim source text (to interleave faults)."""
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    out = []
    for node in tree.body:
        start = node.lineno - 1
        if getattr(node, "decorator_list", None):
            start = min(d.lineno for d in node.decorator_list) - 1
        out.append("".join(lines[start : node.end_lineno]))
    return out


def fast_time() -> types.ModuleType:
    """A ``time`` module whose ``sleep`` waits at most 0.2 s (the examples sleep up to 60 s per round)."""
    module = types.ModuleType("time")
    module.__dict__.update({k: v for k, v in vars(time).items() if not k.startswith("__")})
    module.sleep = lambda seconds: time.sleep(min(float(seconds), 0.2))  # type: ignore[attr-defined]
    return module


def run(code: str, namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(code, "<guide example>", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _guide_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("IB_HOST", "IB_PORT", "IB_CLIENT_ID", "IB_PAPER_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COPILOT_QUANT_JOURNAL_DIR", str(tmp_path / "journal"))  # never write to $HOME


@pytest.fixture
def guide_gateway() -> Iterator[GatewayServer]:
    """The simulated gateway on the guide's port 7497, with a market that keeps moving (20 bars/s)."""
    config = GatewayConfig(
        port=GUIDE_PORT, data=SyntheticDataProvider(seed=7), symbols=["AAPL", "MSFT"], speed=20
    )
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_leaked_ib_threads() -> Iterator[None]:
    """An example must leave nothing running once the test has cleaned up what it started."""
    before = {t.ident for t in threading.enumerate()}
    yield

    def leaked() -> list[str]:
        return [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("copilot-quant") and t.ident not in before
        ]

    deadline = time.monotonic() + 5
    while leaked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked(), f"threads left running: {leaked()}"
