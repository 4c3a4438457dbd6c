"""The live summary's per-strategy lines in USD: a pair's balances at the bar's rates, and a currency no pair
of the run values is said (NaN and a warning), never a crash of the summary at stop."""

from __future__ import annotations

import logging
import math

import pytest
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.live.strategy_slot import StrategySlot
from copilot_quant.live.summary import strategy_summaries


class Idle(Strategy):
    def on_data(self, timestamp, data):
        return None


def test_a_yen_sleeve_is_summarised_in_dollars_and_an_unvalued_cross_is_said_not_raised(caplog) -> None:
    yen, cross = StrategySlot(Idle()), StrategySlot(Idle())
    cross.strategy.name = "Cross"
    yen.book.capital = cross.book.capital = 50_000.0
    yen.book.apply("USD.JPY", 10_000, 150.0, 2.0)
    cross.book.apply("EUR.GBP", 10_000, 0.85, 2.0)
    with caplog.at_level(logging.WARNING, logger="copilot_quant.live.summary"):
        lines = strategy_summaries([yen, cross], {"USD.JPY": 160.0}, {})
    assert lines[yen.name]["equity"] == pytest.approx(50_000 - 2 + 10_000 - 1_500_000 / 160)
    assert math.isnan(lines["Cross"]["equity"])
    assert lines["Cross"]["positions"] == {"EUR.GBP": 10_000}
    assert "Cross's P&L and equity cannot be valued in USD" in caplog.text
