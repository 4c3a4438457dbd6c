"""`copilot-quant journal` per strategy: --strategy filters, the strategies summary, external fills."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import typer
from copilot_quant.cli.exit_codes import USAGE_ERROR
from copilot_quant.cli.journal_strategies import EXTERNAL, strategy_summaries
from copilot_quant.journal import TradeJournal
from copilot_quant.journal.adjustments import record_adjustments
from typer.testing import CliRunner

from tests.journal.support import ACCOUNT, T0, StepClock, buy, journal_app, sell


@pytest.fixture
def app() -> typer.Typer:
    return journal_app()


@pytest.fixture
def two_strategies(tmp_path: Path) -> Path:
    """Trend buys 10 AAPL and sells 4 higher; Pairs sells 5 AAPL short; one AAPL trade made in TWS."""
    with TradeJournal(tmp_path / "j.sqlite", account=ACCOUNT, clock=StepClock()) as journal:
        t = journal.record_intent(buy("AAPL", 10), strategy="Trend")
        journal.record_submitted(t, 1)
        journal.record_fill(t, "e1", "AAPL", "buy", 10, 100.0, T0, commission=1.0)
        p = journal.record_intent(sell("AAPL", 5), strategy="Pairs")
        journal.record_submitted(p, 2)
        journal.record_fill(p, "e2", "AAPL", "sell", 5, 101.0, T0 + timedelta(minutes=1), commission=0.5)
        t2 = journal.record_intent(sell("AAPL", 4), strategy="Trend")
        journal.record_submitted(t2, 3)
        journal.record_fill(t2, "e3", "AAPL", "sell", 4, 110.0, T0 + timedelta(minutes=2), commission=1.0)
        journal.record_fill(None, "e4", "AAPL", "buy", 100, 105.0, T0 + timedelta(minutes=3), commission=2.0)
        journal.record_intent(buy("MSFT", 1), strategy="Pairs")  # never sent
        return journal.path


def test_the_summary_books_each_strategys_own_fills_and_keeps_the_external_trade_apart(two_strategies: Path):
    with TradeJournal(two_strategies, read_only=True) as journal:
        summaries = {s.name: s for s in strategy_summaries(journal.orders(), journal.fills())}
    assert list(summaries) == ["Trend", "Pairs", EXTERNAL]
    trend, pairs, external = summaries["Trend"], summaries["Pairs"], summaries[EXTERNAL]
    assert (trend.orders, trend.fills, trend.positions) == (2, 2, {"AAPL": 6.0})
    assert trend.book.realized_pnl == pytest.approx(4 * (110.0 - 100.0))
    assert trend.book.commissions == pytest.approx(2.0)
    assert (pairs.orders, pairs.fills, pairs.positions) == (2, 1, {"AAPL": -5.0})
    assert (external.orders, external.fills, external.positions) == (0, 1, {"AAPL": 100.0})
    # the strategies' and the external positions add up to the account's net
    assert sum(s.positions.get("AAPL", 0.0) for s in summaries.values()) == 10 - 5 - 4 + 100


def test_journal_strategies_prints_one_row_each_and_says_what_external_means(app, two_strategies: Path):
    result = CliRunner().invoke(app, ["journal", "--path", str(two_strategies), "strategies"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "AAPL 6" in rows["Trend"]
    assert "40.00" in rows["Trend"]  # realized
    assert "38.00" in rows["Trend"]  # net of commissions
    assert "AAPL -5" in rows["Pairs"]
    assert "AAPL 100" in rows[EXTERNAL]
    assert "never in a strategy's book" in result.output


def test_orders_and_fills_filter_by_strategy(app, two_strategies: Path):
    runner = CliRunner()
    orders = runner.invoke(app, ["journal", "--path", str(two_strategies), "orders", "--strategy", "Pairs"])
    assert orders.exit_code == 0, orders.output
    assert "2 order(s)" in orders.output
    assert "Trend" not in orders.output
    fills = runner.invoke(app, ["journal", "fills", "--path", str(two_strategies), "--strategy", "Trend"])
    assert fills.exit_code == 0, fills.output
    assert "2 fill(s)" in fills.output
    assert "Pairs" not in fills.output
    external = runner.invoke(app, ["journal", "fills", "--path", str(two_strategies), "--strategy", EXTERNAL])
    assert external.exit_code == 0, external.output
    assert "1 fill(s)" in external.output
    assert "(not ours)" in external.output


def test_every_fill_shows_its_strategy(app, two_strategies: Path):
    result = CliRunner().invoke(app, ["journal", "--path", str(two_strategies), "fills"])
    assert result.exit_code == 0, result.output
    owners = [line.split("│")[4].strip() for line in result.output.splitlines() if "│ e" in line]
    assert owners == ["Trend", "Pairs", "Trend", EXTERNAL]


def test_an_unknown_strategy_is_refused_with_the_names_the_journal_has(app, two_strategies: Path):
    result = CliRunner().invoke(
        app, ["journal", "--path", str(two_strategies), "orders", "--strategy", "Trnd"]
    )
    assert result.exit_code == USAGE_ERROR
    assert "'Pairs', 'Trend'" in result.output


def test_an_adjustment_moves_the_book_but_is_not_counted_as_an_execution(app, two_strategies: Path):
    """Adopting IB's position (a hand sale of 6 AAPL in TWS took what Trend held) writes an adjusting
    record: Trend's book comes to flat, but the Fills column counts only executions at IB."""
    with TradeJournal(two_strategies, account=ACCOUNT, clock=StepClock()) as journal:
        record_adjustments(journal, "AAPL", [("Trend", -6.0)], "IB holds less than the books")
    with TradeJournal(two_strategies, read_only=True) as journal:
        trend = {s.name: s for s in strategy_summaries(journal.orders(), journal.fills())}["Trend"]
    assert (trend.fills, trend.adjustments, trend.positions) == (2, 1, {})
    result = CliRunner().invoke(app, ["journal", "--path", str(two_strategies), "strategies"])
    assert result.exit_code == 0, result.output
    assert "2 (+1 adj.)" in result.output
    assert "not executions at IB" in result.output
