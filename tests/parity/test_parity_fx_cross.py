"""Forex pairs not quoted in USD (#14): USD.JPY (quoted in JPY) and EUR.GBP (a cross, in GBP) in a backtest
and live through the simulated gateway see the same cash and equity bar by bar — every balance counted in
USD at its pair's close: the gateway's account values agree with the backtest's (its round trips' P&L in
USD is checked in ``tests/backtest/test_fx_quote_pnl.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.examples.fut_fx import FxBreakout
from copilot_quant.parity import run_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(240)]


class _Seeing(FxBreakout):
    views: ClassVar[list[tuple[Any, ...]]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        symbol = self.symbol or ""
        _Seeing.views.append((timestamp, self.position(symbol), round(self.cash, 6), round(self.equity, 6)))
        return super().on_data(timestamp, data)


def _halves(views: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    half = len(views) // 2
    return views[:half], views[half:]


@pytest.mark.parametrize(
    ("pair", "symbols"),
    [("USD.JPY", ["USD.JPY"]), ("EUR.GBP", ["EUR.GBP", "EUR.USD", "GBP.USD"])],
)
def test_a_pair_quoted_in_another_currency_has_parity_and_usd_trades(pair: str, symbols: list[str]) -> None:
    _Seeing.views = []
    report = run_parity(
        _Seeing,
        symbols,
        "2026-05-01",
        "2026-08-31",
        data="synthetic",
        strategy_kwargs={"symbol": pair, "units": 20_000, "lookback": 5},
        spread=None,  # as for EUR.USD: the gateway's rate and the backtest's differ by a tick with one
    )
    assert report.ok, report.diffs.to_string()
    backtest, live = _halves(_Seeing.views)
    assert len(backtest) == len(live) > 50
    for b, lv in zip(backtest, live, strict=True):
        assert b[:2] == lv[:2]
        assert b[2] == pytest.approx(lv[2], abs=1e-6)
        assert b[3] == pytest.approx(lv[3], abs=1e-6)
    assert report.live.final_equity == pytest.approx(report.backtest.final_equity, abs=1e-6)
    assert any(b[1] for b in backtest)  # it traded the pair
