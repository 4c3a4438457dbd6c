"""`copilot-quant live --adopt-to NAME`: with several strategies, the trader names whose book takes IB's
position. Real CLI, real ib_async, simulated gateway on a free port, real journal file."""

from __future__ import annotations

from pathlib import Path

import pytest
from copilot_quant.journal import TradeJournal
from typer.testing import CliRunner

from .test_position_mismatch import _by_hand, _gateway_positions, _old_journal

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

IDLE = """
from copilot_quant.backtest.strategy import Strategy


class Idle(Strategy):
    def on_data(self, timestamp, data):
        return None
"""


def _run(server, tmp_path: Path, *options: str) -> tuple[int, str, list[tuple[str, str, float]]]:
    """Two strategies (fast 100, slow 50 AAPL in an old journal) meet an account holding 120 AAPL."""
    from copilot_quant.cli import app

    spec = tmp_path / "idle.py"
    spec.write_text(IDLE)
    journal = tmp_path / "old.sqlite"
    _old_journal(journal, server.broker.account_id, [("fast", "AAPL", 100), ("slow", "AAPL", 50)])
    args = ["live", f'{spec}:Idle(name="fast")', f'{spec}:Idle(name="slow")', "-s", "AAPL"]
    args += ["--port", str(server.port), "--client-id", "93", "--duration", "1", "--update-interval", "1"]
    args += ["--journal", str(journal), *options]
    result = CliRunner().invoke(app, args)
    with TradeJournal(journal, read_only=True) as opened:
        adjusting = [(o.strategy, o.side.value, o.quantity) for o in opened.orders() if o.tag == "adjustment"]
    return result.exit_code, result.output, adjusting


@pytest.fixture
def held_by_hand(gateway):
    _by_hand(gateway, "BUY", "AAPL", 120)  # the account holds 120 of the 150 the books say
    return gateway


def test_adopt_to_puts_the_difference_on_the_named_strategys_book(held_by_hand, tmp_path, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    code, output, adjusting = _run(held_by_hand, tmp_path, "--adopt-to", "fast")
    assert code == 0, output
    assert adjusting == [("fast", "sell", 30)]
    assert _gateway_positions(held_by_hand) == {"AAPL": 120}  # IB's position is untouched


def test_the_flag_alone_with_several_holders_adopts_nothing_and_says_to_name_one(
    held_by_hand, tmp_path, monkeypatch
):
    monkeypatch.delenv("IB_PORT", raising=False)
    code, output, adjusting = _run(held_by_hand, tmp_path, "--adopt-broker-positions")
    assert code == 0, output
    assert adjusting == []  # whose book shrinks by 30 is the trader's call
    flat = " ".join(output.split())
    assert "IB's position not adopted" in flat
    assert (
        "name the strategy whose book takes the whole reduction of 30 (from the books' long 150 to IB's long 120): "
        "--adopt-to NAME" in flat
    )


def test_adopt_to_an_unknown_strategy_is_refused_before_connecting(held_by_hand, tmp_path, monkeypatch):
    monkeypatch.delenv("IB_PORT", raising=False)
    held_by_hand.stop()  # nothing may connect: the name is checked first
    code, output, adjusting = _run(held_by_hand, tmp_path, "--adopt-to", "fats")
    assert code == 2, output
    flat = " ".join(output.split())
    assert "--adopt-to 'fats'" in flat
    assert "the strategies are 'fast', 'slow'" in flat
    assert adjusting == []
