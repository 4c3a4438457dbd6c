"""A fill knows its contract's multiplier: notional, total cost and net proceeds of a future are in money.

Before, ``Fill.notional`` was ``price × quantity`` for every instrument, so a future's (MES: × 5) was a
fifth of the money traded, and every consumer (the trade log, the journal's fill summary) had to patch it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from copilot_quant.errors import OrderValidationError
from copilot_quant.journal.records import FillRecord
from copilot_quant.model.instruments import InstrumentRegistry, multiplier_of
from copilot_quant.model.orders import Fill, Order, OrderSide

WHEN = datetime(2026, 11, 2, 16, tzinfo=UTC)
REG = InstrumentRegistry(reference=date(2026, 11, 2))


def test_a_future_fill_values_its_notional_with_the_multiplier() -> None:
    mes = REG.resolve("MESZ6")
    buy = Fill(Order("MESZ6", 2), 5000.0, 2.0, 1.24, WHEN, "e1", multiplier=mes.multiplier)
    assert buy.notional == mes.notional(2, 5000.0) == 50_000.0
    assert buy.total_cost == pytest.approx(50_001.24)
    assert buy.net_proceeds == pytest.approx(-50_001.24)
    sell = Fill(Order("MESZ6", 2, side="sell"), 5010.0, 2.0, 1.24, WHEN, multiplier=5.0)
    assert sell.net_proceeds == pytest.approx(50_100.0 - 1.24)


def test_the_guides_constructor_keeps_a_multiplier_of_one() -> None:
    fill = Fill(Order("AAPL", 10), 150.0, 10.0, 1.0, WHEN)
    assert fill.multiplier == 1.0
    assert (fill.notional, fill.total_cost, fill.net_proceeds) == (1500.0, 1501.0, -1501.0)
    booked = Fill._booked(Order("MESZ6", 1), 5000.0, 1.0, 0.62, WHEN, 0.0, 5.0)
    assert booked == Fill(booked.order, 5000.0, 1.0, 0.62, WHEN, None, 0.0, 5.0)
    assert booked.notional == 25_000.0


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf"), "5"])
def test_a_multiplier_that_is_not_a_positive_number_is_refused(bad: object) -> None:
    with pytest.raises(OrderValidationError, match="multiplier must be positive"):
        Fill(Order("MESZ6", 1), 5000.0, 1.0, 0.0, WHEN, multiplier=bad)  # type: ignore[arg-type]
    with pytest.raises(OrderValidationError, match="multiplier must be positive"):
        Fill._booked(Order("MESZ6", 1), 5000.0, 1.0, 0.0, WHEN, 0.0, bad)  # type: ignore[arg-type]


def test_a_journaled_fill_values_a_contract_by_its_symbol() -> None:
    assert multiplier_of("MESZ6") == 5.0
    assert multiplier_of("ES") == 50.0
    assert multiplier_of("AAPL") == multiplier_of("EUR.USD") == 1.0
    assert multiplier_of("FUT:NOPE") == 1.0  # unreadable: a plain unit

    def record(symbol: str) -> FillRecord:
        return FillRecord("x", "r", symbol, OrderSide.BUY, 2.0, 5000.0, WHEN, 1.0, None, WHEN)

    assert record("MESZ6").notional == 50_000.0
    assert record("AAPL").notional == 10_000.0
