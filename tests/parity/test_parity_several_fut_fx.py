"""Parity for several strategies on one account that trades futures or forex (#9 × #14): each strategy's
orders (the automatic roll's included), fills, cash and equity are identical in the backtest and live
against the simulated gateway — on MES across a quarterly roll, and on EUR.USD beside USD.JPY."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.examples.fut_fx import FuturesTrend, FxBreakout
from copilot_quant.parity import ParityStrategy, run_account_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(300)]


class ShortMes(Strategy):
    """Sells ``contracts`` of the continuous MES on its first bar and holds them (rolled by the engine)."""

    def __init__(self, contracts: int = 1) -> None:
        super().__init__()
        self.contracts = contracts

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        if self.position("MES") == 0 and not self.open_orders():
            return [Order("MES", self.contracts, "market", "sell")]
        return None


#: what each strategy saw of its sleeve per bar, by name (the backtest's bars, then the live run's)
SEEN: dict[str, list[tuple[Any, ...]]] = {}


def _saw(strategy: Strategy, timestamp: datetime) -> None:
    view = (timestamp, strategy.position("MES"), round(strategy.cash, 6), round(strategy.equity, 6))
    SEEN.setdefault(strategy.name, []).append(view)


class SeeingTrend(FuturesTrend):
    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        _saw(self, timestamp)
        return super().on_data(timestamp, data)


class SeeingShort(ShortMes):
    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        _saw(self, timestamp)
        return super().on_data(timestamp, data)


def test_two_strategies_on_mes_have_parity_across_a_roll_each_with_its_own_roll() -> None:
    SEEN.clear()
    report = run_account_parity(
        [
            ParityStrategy(SeeingTrend, {"contracts": 2, "fast_period": 3, "slow_period": 10}, name="Trend"),
            ParityStrategy(SeeingShort, name="Short", capital=30_000),
        ],
        ["MES"],
        "2026-07-15",
        "2026-10-15",  # MESU6 rolls into MESZ6 five weekdays before its last trade date, 2026-09-18
        data="synthetic",
        auto_roll=True,
    )
    assert report.ok, "\n".join(f"{k}:\n{r.diffs.to_string()}" for k, r in report.strategies.items()) + (
        report.account.diffs.to_string()
    )
    short = report.strategies["Short"].backtest
    # its own roll: the short MESU6 bought back, MESZ6 sold — in its orders and fills on both sides
    assert [(o[0], o[1]) for o in short.orders] == [("MESU6", "sell"), ("MESU6", "buy"), ("MESZ6", "sell")]
    assert [(f[1], f[2]) for f in short.fills] == [("MESU6", "sell"), ("MESU6", "buy"), ("MESZ6", "sell")]
    trend = report.strategies["Trend"].backtest
    assert {f[1] for f in trend.fills} == {"MESU6", "MESZ6"}
    # each sleeve's equity in money (P&L x 5), adding up to the account's
    assert short.final_equity + trend.final_equity == pytest.approx(report.account.backtest.final_equity)
    assert abs(short.final_equity - 30_000) < 5_000
    # bar by bar each strategy saw the same position("MES"), cash and equity in both runs, across the roll
    for name in ("Trend", "Short"):
        views = SEEN[name]
        backtest, live = views[: len(views) // 2], views[len(views) // 2 :]
        assert len(backtest) == len(live) > 50
        for b, lv in zip(backtest, live, strict=True):
            assert b[:2] == lv[:2]
            assert b[2] == pytest.approx(lv[2], abs=1e-6)
            assert b[3] == pytest.approx(lv[3], abs=1e-6)
    short_seen = SEEN["Short"][: len(SEEN["Short"]) // 2]
    assert {v[1] for v in short_seen[1:]} == {-1.0}  # its own short, whatever the trend holds


def test_two_strategies_on_eur_usd_and_usd_jpy_have_parity_in_usd() -> None:
    report = run_account_parity(
        [
            ParityStrategy(FxBreakout, {"symbol": "EUR.USD", "units": 20_000, "lookback": 5}, name="Euro"),
            ParityStrategy(FxBreakout, {"symbol": "USD.JPY", "units": 20_000, "lookback": 5}, name="Yen"),
        ],
        ["EUR.USD", "USD.JPY"],
        "2026-05-01",
        "2026-08-31",
        data="synthetic",
        spread=None,  # as the one-strategy forex parity: the gateway's rate and the backtest's differ by a tick
    )
    assert report.ok, "\n".join(f"{k}:\n{r.diffs.to_string()}" for k, r in report.strategies.items()) + (
        report.account.diffs.to_string()
    )
    yen, euro = report.strategies["Yen"], report.strategies["Euro"]
    assert {f[1] for f in yen.backtest.fills} == {"USD.JPY"}
    assert {f[1] for f in euro.backtest.fills} == {"EUR.USD"}
    assert len(yen.backtest.fills) >= 2
    # the yen sleeve's cash and equity are dollars (its yen valued at USD.JPY's close), identical live
    assert abs(yen.live.final_equity - 50_000) < 2_000
    assert yen.live.final_cash == pytest.approx(yen.backtest.final_cash, abs=0.005)
    total = yen.backtest.final_equity + euro.backtest.final_equity
    assert total == pytest.approx(report.account.backtest.final_equity, abs=1e-6)


class _Seeing(FxBreakout):
    """FxBreakout recording, per strategy, what it sees of its sleeve each bar (backtest first, then live)."""

    views: ClassVar[dict[str, list[tuple[Any, ...]]]] = {}

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        symbol = self.symbol or ""
        seen = (timestamp, self.position(symbol), round(self.cash, 6), round(self.equity, 6))
        _Seeing.views.setdefault(self.name, []).append(seen)
        return super().on_data(timestamp, data)


def test_each_forex_sleeve_sees_the_same_cash_and_equity_bar_by_bar_live() -> None:
    _Seeing.views = {}
    report = run_account_parity(
        [
            ParityStrategy(_Seeing, {"symbol": "EUR.USD", "units": 20_000, "lookback": 5}, name="Euro"),
            ParityStrategy(_Seeing, {"symbol": "USD.JPY", "units": 30_000, "lookback": 4}, name="Yen"),
        ],
        ["EUR.USD", "USD.JPY"],
        "2026-05-01",
        "2026-07-31",
        data="synthetic",
        spread=None,
    )
    assert report.ok
    for name in ("Euro", "Yen"):
        views = _Seeing.views[name]
        backtest, live = views[: len(views) // 2], views[len(views) // 2 :]
        assert len(backtest) == len(live) > 40
        for b, lv in zip(backtest, live, strict=True):
            assert b[:2] == lv[:2]
            assert b[2] == pytest.approx(lv[2], abs=1e-6)
            assert b[3] == pytest.approx(lv[3], abs=1e-6)
        held = [b for b in backtest if b[1]]
        assert held  # it traded: while it holds, its cash counts the currency it bought at the bar's rate
        assert all(b[2] == pytest.approx(b[3]) for b in held)
