"""Invariant: at every bar, equity is the cash in each currency at its rate plus what the positions add."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import Order
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SYMBOLS = ("ESZ6", "MESZ6", "EUR.USD", "USD.JPY", "AAPL")
START = {"ESZ6": 6000.0, "MESZ6": 6000.0, "EUR.USD": 1.1, "USD.JPY": 150.0, "AAPL": 200.0}
MULT = {"ESZ6": 50.0, "MESZ6": 5.0}
SIZES = {"ESZ6": 1, "MESZ6": 3, "EUR.USD": 20_000, "USD.JPY": 10_000, "AAPL": 50}


def _frame(moves: list[list[float]]) -> pd.DataFrame:
    n = len(moves)
    index = pd.date_range("2026-11-02 16:00", periods=n, freq="B", tz="America/New_York")
    columns = {}
    for j, symbol in enumerate(SYMBOLS):
        closes = START[symbol] * np.exp(np.cumsum([m[j] for m in moves]))
        opens = np.concatenate([[START[symbol]], closes[:-1]])
        columns[("Open", symbol)] = opens
        columns[("High", symbol)] = np.maximum(opens, closes) * 1.001
        columns[("Low", symbol)] = np.minimum(opens, closes) * 0.999
        columns[("Close", symbol)] = closes
        columns[("Volume", symbol)] = np.full(n, 1e6)
    return pd.DataFrame(columns, index=index).sort_index(axis=1)


def _expected_equity(
    balances: dict[str, float], positions: dict[str, tuple[float, float]], close: dict[str, float]
) -> float:
    """Σ cash × rate + Σ futures unrealized × multiplier + Σ stock value (forex positions are in the cash)."""
    rates = {"USD": 1.0, "EUR": close["EUR.USD"], "JPY": 1.0 / close["USD.JPY"]}
    value = sum(amount * rates[c] for c, amount in balances.items())
    for symbol, (qty, avg) in positions.items():
        if symbol in MULT:
            value += qty * (close[symbol] - avg) * MULT[symbol]
        elif symbol == "AAPL":
            value += qty * close[symbol]
    return value


class RandomTrader(Strategy):
    def __init__(self, plan: list[list[int]], engine: BacktestEngine) -> None:
        super().__init__()
        self.plan = plan
        self.engine = engine
        self.bar = -1
        self.checks: list[tuple[float, float]] = []

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        self.bar += 1
        close = {s: float(data[("Close", s)].iloc[-1]) for s in SYMBOLS}
        broker = self.engine.broker
        positions = {s: (p.quantity, p.avg_entry_price) for s, p in broker.get_positions().items()}
        expected = _expected_equity(broker.cash_balances(), positions, close)
        self.checks.append((expected, self.equity))
        orders = []
        for j, symbol in enumerate(SYMBOLS):
            step = self.plan[self.bar][j]
            if step:
                side = "BUY" if step > 0 else "SELL"
                orders.append(Order(symbol, SIZES[symbol] * abs(step), side=side))
        return orders


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    days=st.lists(
        st.tuples(
            st.lists(st.floats(-0.03, 0.03), min_size=len(SYMBOLS), max_size=len(SYMBOLS)),
            st.lists(st.integers(-2, 2), min_size=len(SYMBOLS), max_size=len(SYMBOLS)),
        ),
        min_size=3,
        max_size=25,
    ),
    capital=st.sampled_from([50_000.0, 400_000.0]),
)
def test_equity_is_cash_per_currency_at_its_rate_plus_futures_pnl_times_multiplier_at_every_bar(
    days: list[tuple[list[float], list[int]]], capital: float
) -> None:
    moves = [m for m, _ in days]
    plan = [p for _, p in days]
    engine = BacktestEngine(
        capital,
        commission=0.0005,
        slippage=0.0002,
        instruments=InstrumentRegistry(reference=date(2026, 11, 2)),
    )
    trader = RandomTrader(plan, engine)
    engine.add_strategy(trader)
    result = engine.run(symbols=list(SYMBOLS), data=_frame(moves))
    expected = [e for e, _ in trader.checks]
    assert [s for _, s in trader.checks] == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert result.equity_curve.tolist() == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # the final balances are the ones the last bar was valued with
    assert result.cash_balances == pytest.approx(engine.broker.cash_balances())
