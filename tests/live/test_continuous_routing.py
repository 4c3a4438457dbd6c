"""Live routing of orders for a continuous future (``live/continuous.py``): the contract of the bar's day,
or the one earlier contract still held when the order only reduces that position — the backtest's rule."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.live.continuous import ContinuousSymbols
from copilot_quant.model.instruments import InstrumentRegistry

REG = InstrumentRegistry(reference=date(2026, 11, 2))
BEFORE = pd.Timestamp("2026-12-07 16:00", tz="America/New_York").value  # MESZ6 is the front
AFTER = pd.Timestamp("2026-12-14 16:00", tz="America/New_York").value  # rolled (2026-12-11): MESH7


def _routed(held: dict[str, float], quantity: float, side: str) -> str:
    symbols = ContinuousSymbols(REG, ["MES"], roll_days=5)
    symbols.contract_at("MES", BEFORE)  # a bar of the pre-roll days was seen
    order = Order("MES", quantity, "market", side)
    symbols.route(order, AFTER, lambda s: held.get(s, 0.0))
    assert order.routed_from == "MES"
    return order.symbol


@pytest.mark.parametrize(
    ("held", "quantity", "side", "expected"),
    [
        ({"MESZ6": 2.0}, 2, "sell", "MESZ6"),  # closes the old long: the old contract
        ({"MESZ6": 2.0}, 1, "sell", "MESZ6"),  # reduces it
        ({"MESZ6": -3.0}, 3, "buy", "MESZ6"),  # covers the old short
        ({"MESZ6": 2.0}, 3, "sell", "MESH7"),  # more than is held: the front contract
        ({"MESZ6": 2.0}, 1, "buy", "MESH7"),  # adds: the front contract
        ({"MESZ6": 2.0, "MESH7": 1.0}, 1, "sell", "MESH7"),  # the front is held too: the front
        ({}, 1, "sell", "MESH7"),  # nothing held: the front
    ],
)
def test_an_order_only_reducing_the_pre_roll_position_trades_that_contract(held, quantity, side, expected):
    assert _routed(held, quantity, side) == expected


def test_without_a_book_the_order_trades_the_contract_of_the_day() -> None:
    symbols = ContinuousSymbols(REG, ["MES"], roll_days=5)
    symbols.contract_at("MES", BEFORE)
    order = Order("MES", 2, "market", "sell")
    symbols.route(order, AFTER)
    assert order.symbol == "MESH7"
