"""Live fills built from ib_async's executions carry IB's contract multiplier (MES: 5), like a backtest's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.journal import TradeJournal

from .conftest import Stepper

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NOW = datetime(2026, 11, 2, 16, tzinfo=UTC)


def test_an_mes_fill_from_ib_is_valued_with_its_multiplier(
    fut_fx_gateway: GatewayServer, tmp_path: Path
) -> None:
    broker = LiveBrokerAdapter(
        paper_trading=True, port=fut_fx_gateway.port, client_id=53, fill_timeout=10, ack_timeout=1
    )
    journal = TradeJournal(path=tmp_path / "j.sqlite", account="DU0000001")
    broker.journal = journal
    assert broker.connect(timeout=5)
    try:
        mes = Order("MESZ6", 2, "market", "buy")
        ref = journal.record_intent(mes, "test")
        with Stepper(fut_fx_gateway):
            fill = broker.execute_order(mes, 5000.0, NOW, order_ref=ref)
        assert fill is not None
        assert fill.multiplier == 5.0
        assert fill.notional == pytest.approx(fill.fill_price * 2 * 5)
        assert broker.flush_fills(5)
        eur = Order("EUR.USD", 20_000, "market", "buy")
        with Stepper(fut_fx_gateway):
            fx = broker.execute_order(eur, 1.0, NOW)
        assert fx is not None
        assert fx.multiplier == 1.0
    finally:
        broker.disconnect()
    (record,) = journal.fills(order_ref=ref)
    assert record.notional == pytest.approx(fill.notional)  # the journal agrees with the live fill
    journal.close()
