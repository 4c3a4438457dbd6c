"""Several strategies on one account that trades futures or forex (#9 × #14): each strategy's book, rolls
and result in USD, adding up to the account's."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.backtest.rolls import Roll
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.examples.fut_fx import FuturesTrend, FxBreakout
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.reports.backtest import render_html
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backtest.test_futures_invariants import SIZES, SYMBOLS, _frame


class ShortHolder(Strategy):
    """Sells ``contracts`` of ``symbol`` on its second bar and holds them; records what it sees and its rolls."""

    def __init__(self, symbol: str = "MES", contracts: int = 1) -> None:
        super().__init__()
        self.name = "Holder"
        self.symbol, self.contracts = symbol, contracts
        self.bar = 0
        self.seen: list[tuple[float, float]] = []
        self.rolls: list[Roll] = []

    def on_roll(self, roll: Roll) -> None:
        self.rolls.append(roll)

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.bar += 1
        self.seen.append((self.position(self.symbol), self.equity))
        if self.bar == 2:
            return [Order(self.symbol, self.contracts, "market", "sell")]
        return None


class Recording(FuturesTrend):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = "Trend"
        self.rolls: list[Roll] = []
        self.held: list[float] = []

    def on_roll(self, roll: Roll) -> None:
        self.rolls.append(roll)

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.held.append(self.position("MES"))
        return super().on_data(timestamp, data)


def _sum_curves(result: Any, name: str) -> pd.Series:
    return sum(getattr(part, name) for part in result.strategies.values())


@pytest.fixture(scope="module")
def mes() -> tuple[Any, Recording, ShortHolder]:
    engine = BacktestEngine(100_000, data_provider=SyntheticDataProvider(), auto_roll=True)
    trend, holder = Recording(contracts=2, fast_period=3, slow_period=10), ShortHolder()
    engine.add_strategy(trend, capital=60_000)
    engine.add_strategy(holder)
    # MESU6 rolls into MESZ6 five weekdays before its last trade date, 2026-09-18
    return engine.run("2026-07-15", "2026-10-15", ["MES"]), trend, holder


def test_two_strategies_on_mes_each_roll_their_own_contracts(mes) -> None:
    result, trend, holder = mes
    (h_roll,) = holder.rolls
    assert (h_roll.old, h_roll.new) == ("MESU6", "MESZ6")
    # the holder is short 1: its own roll buys back MESU6 and sells MESZ6, whatever the other strategy holds
    assert [(o.symbol, o.side.value, o.quantity) for o in h_roll.orders] == [
        ("MESU6", "buy", 1.0),
        ("MESZ6", "sell", 1.0),
    ]
    (t_roll,) = trend.rolls
    assert t_roll is not h_roll
    assert all(o.quantity == 2 for o in t_roll.orders)  # it held 2 (or nothing) in MESU6
    parts = result.strategies
    assert {f.symbol for f in parts["Holder"].fills} == {"MESU6", "MESZ6"}
    assert [o.symbol for o in parts["Holder"].orders] == ["MESU6", "MESU6", "MESZ6"]
    assert {p: q.quantity for p, q in parts["Holder"].positions.items()} == {"MESZ6": -1.0}
    # position("MES") is each strategy's own sum over its contracts, never the account's
    assert [q for q, _ in holder.seen[2:]] == [-1.0] * (len(holder.seen) - 2)
    assert set(trend.held) <= {0.0, 2.0}
    assert 2.0 in trend.held


def test_the_strategies_results_add_up_to_the_accounts_on_futures(mes) -> None:
    result, _, _ = mes
    parts = result.strategies
    assert [p.initial_capital for p in parts.values()] == [60_000.0, 40_000.0]
    assert np.allclose(_sum_curves(result, "equity_curve"), result.equity_curve, atol=1e-6)
    account = {s: p.quantity for s, p in result.positions.items()}
    mine: dict[str, float] = {}
    for part in parts.values():
        for s, p in part.positions.items():
            mine[s] = mine.get(s, 0.0) + p.quantity
    assert {s: q for s, q in mine.items() if q} == account
    # the holder's P&L is its short's: -5 x (points moved) less costs, in money, not points
    holder = parts["Holder"]
    assert abs(holder.final_value - 40_000) < 5_000
    assert len(holder.trades) >= 1
    assert sum(len(p.fills) for p in parts.values()) == len(result.fills)


def test_the_report_lists_each_strategy_of_a_futures_account(mes) -> None:
    result, _, _ = mes
    page = render_html(result)
    table = re.search(r'<table class="symbols" id="strategies">(.*?)</table>', page, re.S)
    assert table is not None
    rows = re.findall(r"<tr[^>]*><th>([^<]+)</th><td>([\d,.]+)</td><td>([\d,.]+)</td>", table.group(1))
    assert [r[0] for r in rows] == ["Trend", "Holder", "Account"]
    finals = {name: float(final.replace(",", "")) for name, _, final in rows}
    assert finals["Trend"] + finals["Holder"] == pytest.approx(finals["Account"], abs=0.02)


def test_two_strategies_on_pairs_quoted_in_usd_and_in_yen_add_up_to_the_account() -> None:
    engine = BacktestEngine(100_000, data_provider=SyntheticDataProvider())
    eur, jpy = (
        FxBreakout("EUR.USD", units=20_000, lookback=5),
        FxBreakout("USD.JPY", units=20_000, lookback=5),
    )
    eur.name, jpy.name = "Euro", "Yen"
    engine.add_strategy(eur)
    engine.add_strategy(jpy)
    result = engine.run("2026-05-01", "2026-08-31", ["EUR.USD", "USD.JPY"])
    parts = result.strategies
    assert len(parts["Yen"].fills) >= 2
    assert len(parts["Euro"].fills) >= 2
    assert np.allclose(_sum_curves(result, "equity_curve"), result.equity_curve, atol=1e-6)
    assert np.allclose(_sum_curves(result, "cash_curve"), result.cash_curve, atol=1e-6)
    # the yen strategy's balances are its own: USD bought, yen paid; they add up to the account's
    balances: dict[str, float] = {}
    for part in parts.values():
        for currency, amount in part.cash_balances.items():
            balances[currency] = balances.get(currency, 0.0) + amount
    assert balances == pytest.approx(result.cash_balances)
    assert set(parts["Yen"].cash_balances) == {"USD", "JPY"}
    # its round trips are in USD (yen P&L converted), as the account's
    yen_trades = parts["Yen"].trades
    assert yen_trades["pnl"].sum() == pytest.approx(
        result.trades[result.trades["symbol"] == "USD.JPY"]["pnl"].sum()
    )
    assert abs(parts["Yen"].final_value - 50_000) < 2_000  # dollars, not yen


# ---------------------------------------------------------------- random strategies on every kind of market
# the markets and bars of the single-strategy invariant test (tests/backtest/test_futures_invariants.py)


class RandomBook(Strategy):
    """Trades its own random plan; the last one added checks, at every closed bar, that the strategies'
    equity adds up to the account's and their positions to its positions."""

    def __init__(self, plan: list[list[int]], peers: list[RandomBook], engine: BacktestEngine) -> None:
        super().__init__()
        self.plan, self.peers, self.engine = plan, peers, engine
        self.bar = -1
        self.checks: list[tuple[float, float]] = []
        self.positions_seen: list[tuple[dict[str, float], dict[str, float]]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.bar += 1
        if self.peers[-1] is self:
            self.checks.append((sum(p.equity for p in self.peers), self.engine.get_portfolio_value()))
            summed: dict[str, float] = {}
            for peer in self.peers:
                for symbol, position in peer.positions.items():
                    summed[symbol] = summed.get(symbol, 0.0) + position.quantity
            account = {s: p.quantity for s, p in self.engine.get_positions().items()}
            self.positions_seen.append(({s: q for s, q in summed.items() if abs(q) > 1e-9}, account))
        return [
            Order(symbol, SIZES[symbol] * abs(step), side="BUY" if step > 0 else "SELL")
            for symbol, step in zip(SYMBOLS, self.plan[self.bar], strict=True)
            if step
        ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    days=st.lists(
        st.tuples(
            st.lists(st.floats(-0.03, 0.03), min_size=len(SYMBOLS), max_size=len(SYMBOLS)),
            st.lists(
                st.lists(st.integers(-2, 2), min_size=len(SYMBOLS), max_size=len(SYMBOLS)),
                min_size=3,
                max_size=3,
            ),
        ),
        min_size=3,
        max_size=20,
    ),
)
def test_random_strategies_on_futures_pairs_and_stocks_add_up_to_the_account_at_every_bar(
    days: list[tuple[list[float], list[list[int]]]],
) -> None:
    moves = [m for m, _ in days]
    engine = BacktestEngine(
        300_000.0,
        commission=0.0005,
        slippage=0.0002,
        instruments=InstrumentRegistry(reference=date(2026, 11, 2)),
    )
    peers: list[RandomBook] = []
    for k in range(3):
        peers.append(RandomBook([p[k] for _, p in days], peers, engine))
        engine.add_strategy(peers[-1], capital=[150_000.0, 100_000.0, 50_000.0][k])
    result = engine.run(symbols=list(SYMBOLS), data=_frame(moves))
    checker = peers[-1]
    assert [s for s, _ in checker.checks] == pytest.approx([a for _, a in checker.checks], rel=1e-9, abs=1e-6)
    for summed, account in checker.positions_seen:
        assert summed == pytest.approx(account)
    assert np.allclose(_sum_curves(result, "equity_curve"), result.equity_curve, rtol=1e-9, atol=1e-6)
    assert result.equity_curve.tolist() == pytest.approx([a for _, a in checker.checks], rel=1e-9, abs=1e-6)
