"""Parity for the other markets (#14): a forex strategy (EUR.USD) in a backtest and live through the
simulated gateway, on the synthetic pair: the same orders, fills (IB's forex commission, slipped prices on
the pair's own tick) and equity, with cash counted in USD over every currency held."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pandas as pd
import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.rolls import Roll
from copilot_quant.examples.fut_fx import FuturesTrend, FxBreakout
from copilot_quant.parity import run_parity

pytestmark = [pytest.mark.network, pytest.mark.timeout(180)]


def test_a_forex_strategy_has_parity_on_eur_usd() -> None:
    report = run_parity(
        FxBreakout,
        ["EUR.USD"],
        "2026-05-01",
        "2026-08-31",
        data="synthetic",
        strategy_kwargs={"units": 20_000, "lookback": 5},
        # the defaults: the stock commission rate leaves a pair alone (it pays IB's forex rate, 0.2 bp with
        # a USD 2 minimum, in both runs); the 5 bp slippage moves each market fill, onto the pair's tick
        # against the order in both runs
    )
    assert report.ok, report.diffs.to_string()
    assert report.weakness() is None
    fills = report.backtest.fills
    assert len(fills) >= 4  # it traded, both ways
    assert {row[2] for row in fills} == {"buy", "sell"}
    # prices on the pair's tick (0.00005), not the stock cent grid; IB's forex minimum per order
    assert any(round(row[4], 2) != row[4] for row in fills)
    assert all(round(row[4] / 0.00005) * 0.00005 == pytest.approx(row[4], abs=1e-12) for row in fills)
    assert all(row[5] == pytest.approx(2.0) for row in fills)
    # cash counts every balance in USD (EUR at the pair's close): so it is the equity, whatever is held
    assert report.live.final_cash == pytest.approx(report.live.final_equity)


class _Viewing(FuturesTrend):
    """FuturesTrend recording what it sees of the account at each bar: both runs append here, backtest first."""

    views: ClassVar[list[tuple[Any, ...]]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        _Viewing.views.append((timestamp, self.position("MESZ6"), round(self.cash, 6), round(self.equity, 6)))
        return super().on_data(timestamp, data)


class _FxViewing(FxBreakout):
    views: ClassVar[list[tuple[Any, ...]]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        _FxViewing.views.append(
            (timestamp, self.position("EUR.USD"), round(self.cash, 6), round(self.equity, 6))
        )
        return super().on_data(timestamp, data)


def _halves(views: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The backtest's views and the live run's (the backtest skips the first bar, which is live history)."""
    half = len(views) // 2
    return views[:half], views[half:]


def test_a_futures_strategy_has_parity_on_a_contract_and_sees_the_same_account() -> None:
    _Viewing.views = []
    report = run_parity(
        _Viewing,
        ["MESZ6"],
        "2026-07-01",
        "2026-10-30",
        data="synthetic",
        strategy_kwargs={"contracts": 2, "fast_period": 3, "slow_period": 10},
    )
    assert report.ok, report.diffs.to_string()
    assert report.weakness() is None
    fills = report.backtest.fills
    assert len(fills) >= 4
    assert all(row[4] % 0.25 == 0 for row in fills)  # on MES's tick
    assert all(row[5] == pytest.approx(0.62 * row[3]) for row in fills)  # IB's micro cost per contract
    backtest, live = _halves(_Viewing.views)
    assert len(backtest) == len(live) > 50
    # self.cash moves by P&L x 5 and costs only (no notional), self.equity adds the open P&L x 5:
    # bar by bar what the backtest's strategy saw
    for b, lv in zip(backtest, live, strict=True):
        assert b[0] == lv[0]
        assert b[1] == lv[1]
        assert b[2] == pytest.approx(lv[2], abs=1e-6)
        assert b[3] == pytest.approx(lv[3], abs=1e-6)
    assert any(b[1] and b[3] != b[2] for b in backtest)  # it held contracts with open P&L


def test_a_forex_strategy_sees_cash_in_every_currency_as_the_backtest() -> None:
    _FxViewing.views = []
    # no spread: with one, the gateway's ExchangeRate and the backtest's rate for valuing EUR differ by a
    # tick (noted as left to do); the fills' parity with the spread on is held by the tests above
    report = run_parity(
        _FxViewing,
        ["EUR.USD"],
        "2026-05-01",
        "2026-08-31",
        data="synthetic",
        strategy_kwargs={"lookback": 5},
        spread=None,
    )
    assert report.ok, report.diffs.to_string()
    backtest, live = _halves(_FxViewing.views)
    assert len(backtest) == len(live) > 50
    for b, lv in zip(backtest, live, strict=True):
        assert b[:2] == lv[:2]
        assert b[2] == pytest.approx(lv[2], abs=1e-6)
        assert b[3] == pytest.approx(lv[3], abs=1e-6)
    held = [b for b in backtest if b[1]]
    assert held  # while EUR is held, cash counts it: cash is the equity
    assert all(b[2] == pytest.approx(b[3]) for b in held)


class _Rolling(FuturesTrend):
    """FuturesTrend recording its rolls and position('MES') per bar (both runs, backtest first)."""

    seen: ClassVar[list[tuple[Any, ...]]] = []

    def on_roll(self, roll: Roll) -> None:
        _Rolling.seen.append(
            ("roll", roll.timestamp, roll.old, roll.new, [(o.symbol, o.side.value) for o in roll.orders])
        )

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        _Rolling.seen.append(("bar", timestamp, self.position("MES"), round(self.equity, 6)))
        return super().on_data(timestamp, data)


def test_mes_with_auto_roll_has_parity_across_a_quarterly_roll() -> None:
    _Rolling.seen = []
    report = run_parity(
        _Rolling,
        ["MES"],
        "2026-07-15",
        "2026-10-15",  # MESU6 rolls into MESZ6 five weekdays before its last trade date, 2026-09-18
        data="synthetic",
        strategy_kwargs={"contracts": 2, "fast_period": 3, "slow_period": 10},
        auto_roll=True,
    )
    assert report.ok, report.diffs.to_string()
    assert report.weakness() is None
    fills = report.backtest.fills
    # orders for MES traded the contract of the day, before and after the roll
    assert {row[1] for row in fills} == {"MESU6", "MESZ6"}
    backtest, live = _halves(_Rolling.seen)
    assert backtest == live  # the same rolls at the same bar, the same position('MES') and equity each bar
    rolls = [event for event in backtest if event[0] == "roll"]
    assert len(rolls) == 1
    _, when, old, new, orders = rolls[0]
    assert (old, new) == ("MESU6", "MESZ6")
    assert orders == [("MESU6", "sell"), ("MESZ6", "buy")]  # held 2 MESU6: the automatic roll's pair
    # the pair filled together at the next bar's open; position('MES') never moved across it
    pair = [row for row in fills if row[0] > pd.Timestamp(when)][:2]
    assert {(row[1], row[2]) for row in pair} == {("MESU6", "sell"), ("MESZ6", "buy")}
    after = [e for e in backtest if e[0] == "bar" and e[1] >= when][:3]
    assert all(e[2] == 2 for e in after)
