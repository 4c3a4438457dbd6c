"""Reconciliation drill: a position at the gateway that the journal cannot explain is reported, not adopted."""

from __future__ import annotations

import pytest
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.journal import TradeJournal
from copilot_quant.journal.reconcile import PositionMismatch
from ib_async import MarketOrder, Stock

from .conftest import Scripted, journal_file, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def test_a_position_made_outside_the_engine_is_reported_as_an_event_not_adopted(
    make_engine, gateway, journal_dir
):
    # Someone trades by hand (another client id) before the engine starts.
    with connected_ib(gateway, client_id=5) as ib:
        ib.placeOrder(Stock("MSFT", "SMART", "USD"), MarketOrder("BUY", 5))
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
        gateway.clock.step(1)
        assert wait_until(
            lambda: [(p.contract.symbol, p.position) for p in gateway.broker.positions()] == [("MSFT", 5)]
        )
    seen: list[tuple[str, str]] = []
    strategy = Scripted()
    engine = make_engine()
    engine.register_event_callback(lambda kind, detail: seen.append((kind, detail)))
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL", "MSFT"], lookback_days=5)

    report = engine.last_reconcile
    assert report is not None
    assert report.position_mismatches == (PositionMismatch("MSFT", 0.0, 5.0),)
    assert not report.is_clean
    reconciles = [detail for kind, detail in seen if kind == "reconcile"]
    assert len(reconciles) == 1
    assert (
        "needs attention: position mismatch MSFT: IB holds 5, the journal's fills explain 0" in reconciles[0]
    )
    assert "not compared" in reconciles[0]  # IB's cash is shown as information only
    path = journal_file(journal_dir)
    with TradeJournal(path, read_only=True) as journal:
        assert any("position mismatch MSFT" in e.detail for e in journal.events(kind="reconcile"))
        assert journal.orders() == []  # not adopted: no order, no fill
        assert journal.fills() == []
    assert engine.broker.get_open_orders() == []
    assert strategy.fills == []
    # A second reconciliation reports it again: it was never silently absorbed.
    assert engine.reconcile("manual").position_mismatches == (PositionMismatch("MSFT", 0.0, 5.0),)
