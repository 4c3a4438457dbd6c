"""Persistence: account, positions, orders, executions and ids survive a restart; writes are atomic."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from copilot_quant.errors import ConfigError, GatewayError
from copilot_quant.gateway.broker import SimBroker
from copilot_quant.gateway.contracts import ContractInfo, ContractRequest
from copilot_quant.gateway.orders import IbStatus, PlaceOrderRequest
from copilot_quant.gateway.state import BrokerState, load_state, save_state

AAPL = ContractInfo.for_symbol("AAPL")
T0 = datetime(2024, 1, 5, 15, 0, tzinfo=UTC)


def req(order_id, action="BUY", qty=100.0, kind="MKT", lmt=None, aux=None, tif="DAY"):  # noqa: PLR0917
    return PlaceOrderRequest(order_id, ContractRequest(symbol="AAPL"), action, qty, kind, lmt, aux, tif)


def test_restart_resumes_everything(tmp_path):
    path = tmp_path / "state.json"
    first = SimBroker(state_file=path, clock=lambda: T0, partial_fill_size=60)
    first.place_order(1, req(1), AAPL)
    first.on_price("AAPL", 100.0, T0)  # 60 of 100 filled
    first.place_order(1, req(2, "SELL", 10, "STP", aux=90.0, tif="GTC"), AAPL)
    first.place_order(2, req(7, kind="LMT", lmt=50.0), AAPL)
    first.on_price("AAPL", 89.0, T0, gap=True)  # stop triggers; the market order gets 40 more

    second = SimBroker(state_file=path, clock=lambda: T0, partial_fill_size=60)
    assert second.account.cash == pytest.approx(first.account.cash)
    assert second.positions() == first.positions()
    assert second.executions() == first.executions()
    assert second.open_orders() == first.open_orders()
    assert second.completed_orders() == first.completed_orders()
    assert second.next_order_id(1) == 3
    assert second.next_order_id(2) == 8
    assert second.account.net_liquidation == pytest.approx(first.account.net_liquidation)
    # working orders keep working after the restart, and ids/exec ids keep increasing
    second.on_price("AAPL", 49.0, T0, gap=True)
    assert second.order(2, 7).filled == 60  # partial_fill_size still applies
    assert second.order(1, 2).status is IbStatus.FILLED
    ids = [e.exec_id for e in second.executions()]
    assert len(ids) == len(set(ids))
    assert not list(tmp_path.glob(".*tmp")), "no temporary files are left behind"


def test_missing_file_starts_fresh(tmp_path):
    broker = SimBroker(state_file=tmp_path / "sub" / "new.json", cash=5_000)
    assert broker.account.cash == 5_000
    assert load_state(tmp_path / "sub" / "new.json") is None


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(GatewayError, match="state file"):
        SimBroker(state_file=path)


def test_other_account_is_refused(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, BrokerState(account_id="DU1111111", cash=1.0))
    with pytest.raises(ConfigError, match="DU1111111"):
        SimBroker(account="DU2222222", state_file=path)


def test_written_json_is_versioned_and_atomic(tmp_path):
    path = tmp_path / "state.json"
    save_state(path, BrokerState(account_id="DU1", cash=2.0, last_order_id={3: 9}))
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["last_order_id"] == {"3": 9}
    assert load_state(path).last_order_id == {3: 9}


def test_realized_pnl_booked_in_the_base_currency_survives_a_restart(tmp_path):
    from datetime import date

    from copilot_quant.gateway.instrument_contracts import contract_for
    from copilot_quant.model.instruments import InstrumentRegistry

    usdjpy = contract_for(InstrumentRegistry(reference=date(2026, 11, 2)).resolve("USD.JPY"))
    path = tmp_path / "state.json"
    first = SimBroker(state_file=path, clock=lambda: T0)
    first.account.apply_fill(usdjpy, 10_000, 150.0, 0.0)
    first.account.apply_fill(usdjpy, -10_000, 151.0, 0.0)
    first.account.mark(usdjpy.symbol, 140.0)
    first.save()
    second = SimBroker(state_file=path, clock=lambda: T0)
    assert second.account.realized_pnl == pytest.approx(10_000 / 151.0)  # not re-valued at 140
    legacy = json.loads(path.read_text())
    del legacy["realized_base"]  # a file written before it was kept: today's rate is the best left
    path.write_text(json.dumps(legacy))
    third = SimBroker(state_file=path, clock=lambda: T0)
    assert third.account.realized_pnl == pytest.approx(10_000 / 140.0)
