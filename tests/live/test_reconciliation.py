"""Translating IB's orders and executions for journal reconciliation (pure, real ib_async objects)."""

from __future__ import annotations

from datetime import UTC, datetime

from copilot_quant.backtest.orders import OrderSide, OrderStatus
from copilot_quant.brokers.reconciliation import to_broker_execution, to_broker_order
from copilot_quant.journal import new_order_ref, reconcile
from ib_async import CommissionReport, Execution, Fill, LimitOrder, Stock, Trade
from ib_async import OrderStatus as IBOrderStatus

REF = new_order_ref("DU1234567")
WHEN = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def _trade(status: str, filled: float, remaining: float, ref: str = REF) -> Trade:
    order = LimitOrder("SELL", 10, 100.0, orderRef=ref, orderId=7, permId=70)
    return Trade(
        Stock("AAPL", "SMART", "USD"), order, IBOrderStatus(status=status, filled=filled, remaining=remaining)
    )


def _fill(exec_id: str, commission: float | None) -> Fill:
    execution = Execution(
        execId=exec_id, time=WHEN, side="SLD", shares=4, price=101.0, orderId=7, permId=70, orderRef=REF
    )
    report = (
        CommissionReport(execId=exec_id, commission=commission)
        if commission is not None
        else CommissionReport()
    )
    return Fill(Stock("AAPL", "SMART", "USD"), execution, report, WHEN)


def test_a_working_ib_order_becomes_a_broker_order():
    order = to_broker_order(_trade("Submitted", 4, 6))
    assert order is not None
    assert order.order_ref == REF
    assert order.broker_order_id == 7
    assert order.perm_id == 70
    assert order.side is OrderSide.SELL
    assert order.filled == 4
    assert order.status_enum is OrderStatus.PARTIALLY_FILLED


def test_a_manual_order_has_no_ref_and_is_reported_as_foreign():
    manual = to_broker_order(_trade("Submitted", 0, 10, ref=""))
    assert manual is not None
    assert manual.order_ref is None
    report = reconcile([], [manual], [], [], account="DU1234567")
    assert report.foreign_orders == (manual,)


def test_an_execution_keeps_its_id_ref_side_and_commission():
    execution = to_broker_execution(_fill("e1", 1.25))
    assert execution is not None
    assert (execution.exec_id, execution.order_ref, execution.side) == ("e1", REF, OrderSide.SELL)
    assert (execution.quantity, execution.price, execution.commission) == (4.0, 101.0, 1.25)
    assert execution.time == WHEN
    assert execution.broker_order_id == 7


def test_an_execution_without_its_commission_report_has_none():
    execution = to_broker_execution(_fill("e2", None))
    assert execution is not None
    assert execution.commission is None
