"""`copilot-quant journal fills` sums the money traded: a futures contract's fills times its multiplier."""

from __future__ import annotations

from pathlib import Path

from copilot_quant.journal import TradeJournal
from typer.testing import CliRunner

from tests.journal.support import ACCOUNT, T0, StepClock, buy, journal_app


def test_the_fill_summary_counts_mes_at_five_dollars_a_point(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with TradeJournal(path=path, account=ACCOUNT, clock=StepClock()) as journal:
        ref = journal.record_intent(buy("MESZ6", 2), strategy="Trend")
        journal.record_submitted(ref, 7)
        journal.record_fill(ref, "0001.01", "MESZ6", "buy", 2, 5000.0, T0)
        journal.record_commission("0001.01", 1.24)
        stock = journal.record_intent(buy("AAPL", 10), strategy="Trend")
        journal.record_submitted(stock, 8)
        journal.record_fill(stock, "0002.01", "AAPL", "buy", 10, 100.0, T0)
        journal.record_commission("0002.01", 1.0)
    root = journal_app()
    result = CliRunner().invoke(root, ["journal", "fills", "--path", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2 fill(s), 51,000.00 traded" in result.output  # 2 × 5000 × 5 + 10 × 100
