"""A live engine run on the continuous MES (#14): orders trade the contract of the bar's day, positions and
the journal are per contract, ``self.position("MES")`` sums them, and a restart reconciles by contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway
from copilot_quant.journal import TradeJournal

from tests.gateway.fut_fx_feed import FutFxFeed

from .conftest import Scripted, Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]


@pytest.fixture
def gateway() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start="2026-11-02 16:00", cash=100_000.0) as gw:
        yield gw


class Holding(Scripted):
    """Scripted, recording position('MES') and what it holds at each bar."""

    def __init__(self, script: dict[int, list[Order]] | None = None) -> None:
        super().__init__(script)
        self.seen: list[tuple[float, dict[str, float]]] = []

    def on_data(self, timestamp, data):
        self.seen.append((self.position("MES"), {s: p.quantity for s, p in self.positions.items()}))
        return super().on_data(timestamp, data)


def _engine(gateway: GatewayServer, journal: Path, client_id: int) -> LiveStrategyEngine:
    return LiveStrategyEngine(
        paper_trading=True, port=gateway.port, client_id=client_id, update_interval=3600, journal=journal
    )


def test_mes_trades_its_contract_of_the_day_and_a_restart_reconciles_by_contract(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite"
    strategy = Holding({1: [Order("MES", 2, "market", "buy")]})
    engine = _engine(gateway, journal, 71)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["MES"], lookback_days=10)
        with Stepper(gateway, interval=0.1):
            assert wait_until(lambda: len(strategy.fills) == 1 and len(strategy.seen) >= 3, timeout=30)
        fill = strategy.fills[0]
        # November 2026: December's contract is the front month until its roll on 2026-12-11
        assert (fill.order.symbol, fill.order.routed_from) == ("MESZ6", "MES")
        assert fill.commission == pytest.approx(2 * 0.62)
        assert strategy.seen[-1] == (2.0, {"MESZ6": 2.0})
        assert engine.get_performance_summary()["positions"] == {"MESZ6": 2.0}
    finally:
        engine.disconnect()
    with TradeJournal(journal) as book:
        assert [o.symbol for o in book.orders()] == ["MESZ6"]
        assert [f.symbol for f in book.fills()] == ["MESZ6"]

    again = Holding()
    restarted = _engine(gateway, journal, 72)
    restarted.add_strategy(again)
    try:
        assert restarted.connect(timeout=5)
        assert restarted.start(["MES"], lookback_days=10)
        report = restarted.reconcile("check")
        assert report.is_clean, report.summary()
        with Stepper(gateway, interval=0.1):
            assert wait_until(lambda: len(again.seen) >= 1, timeout=30)
        assert again.seen[-1] == (2.0, {"MESZ6": 2.0})  # its book reopened from the journal, by contract
    finally:
        restarted.disconnect()


def test_the_summary_has_cash_per_currency_from_ib(gateway: GatewayServer, tmp_path: Path) -> None:
    strategy = Scripted({1: [Order("EUR.USD", 20_000, "market", "buy")]})
    engine = _engine(gateway, tmp_path / "journal.sqlite", 73)
    engine.add_strategy(strategy)
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["EUR.USD"], lookback_days=10)
        with Stepper(gateway, interval=0.1):
            assert wait_until(lambda: len(strategy.fills) == 1, timeout=30)
        fill = strategy.fills[0]
        summary = {}

        def settled() -> bool:
            summary.update(engine.get_performance_summary())
            return "EUR" in summary["cash_by_currency"]

        assert wait_until(settled, timeout=10)
        cash = summary["cash_by_currency"]
        assert cash["EUR"] == pytest.approx(20_000)
        assert cash["USD"] == pytest.approx(100_000 - 20_000 * fill.fill_price - fill.commission, abs=0.01)
        assert 0.5 < summary["exchange_rates"]["EUR"] < 2.0
        assert summary["exchange_rates"]["USD"] == pytest.approx(1.0)
    finally:
        engine.disconnect()
