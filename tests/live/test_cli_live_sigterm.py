"""`copilot-quant live` stops cleanly on a SIGTERM that comes while it is still setting up after the start.

The engine trades from the moment it started (with inline dispatch its first order may go out before the CLI
has finished attaching the console and alerts); a SIGTERM then killed the process outright, without stopping
the engine or journaling the stop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

STRATEGY = """
from copilot_quant.backtest.strategy import Strategy


class Idle(Strategy):
    def on_data(self, timestamp, data):
        return None
"""

# Runs the CLI with the console/alerts setup replaced by one that receives a SIGTERM.
RUNNER = """
import os, signal, sys
import copilot_quant.cli.console as console_cli

def attach(engine, web_console, console):
    os.kill(os.getpid(), signal.SIGTERM)
    return None

console_cli.attach = attach
from copilot_quant.cli import main
sys.argv = ["copilot-quant", *sys.argv[1:]]
main()
"""


def test_a_sigterm_during_the_setup_after_start_stops_the_engine_cleanly(gateway_factory, tmp_path: Path):
    server = gateway_factory(speed=10)
    strategy = tmp_path / "idle.py"
    strategy.write_text(STRATEGY)
    args = [sys.executable, "-c", RUNNER, "live", f"{strategy}:Idle", "-s", "AAPL"]
    args += ["--port", str(server.port), "--client-id", "94", "--duration", "30"]
    env = {k: v for k, v in os.environ.items() if k != "IB_PORT"}
    done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=60, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Stopping" in output
    assert "Stopped." in output
