"""Cross-check futures accounting against a peer: an SMA long/short reversal on an ES contract here and in
backtrader with its futures commission scheme (``CommInfoBase(mult=50, margin=..., stocklike=False)``).

Same bars, market orders at the next open, a fixed commission per contract, no slippage: every fill
(bar, price, size, commission), every closed trade's P&L, the equity at every bar and the final value agree.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from copilot_quant.backtest.accounts import InstrumentAccounts, PerContractCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.model.instruments import InstrumentRegistry
from copilot_quant.model.orders import Order

with warnings.catch_warnings():  # backtrader imports modules that warn on recent Pythons
    warnings.simplefilter("ignore")
    import backtrader as bt

CAPITAL = 1_000_000.0
SIZE = 2
MULT = 50.0
MARGIN = 25_000.0
PER_CONTRACT = 2.25
FAST, SLOW = 10, 30


def es_bars() -> pd.DataFrame:
    """Synthetic daily bars moved to ES's level and tick grid (0.25 points)."""
    raw = SyntheticDataProvider(seed=7, periods=600, start="2024-06-03").get_historical_data("X")
    prices = raw[["Open", "High", "Low", "Close"]] * (5000.0 / float(raw["Close"].iloc[0]))
    bars = (prices / 0.25).round() * 0.25
    bars["Volume"] = raw["Volume"]
    return bars


class SmaReversal(Strategy):
    """Long SIZE contracts above the slow average, short SIZE below (reversing with 2 × SIZE)."""

    def __init__(self, symbol: str) -> None:
        super().__init__()
        self.symbol = symbol
        self.target = 0

    def on_data(self, timestamp: datetime, data: pd.DataFrame) -> list[Order] | None:
        closes = data["Close"]
        if len(closes) < SLOW:
            return None
        fast, slow = closes.iloc[-FAST:].mean(), closes.iloc[-SLOW:].mean()
        want = SIZE if fast > slow else -SIZE if fast < slow else self.target
        delta, self.target = want - self.target, want
        if not delta:
            return None
        return [Order(self.symbol, abs(delta), side="BUY" if delta > 0 else "SELL")]


class BacktraderSmaReversal(bt.Strategy):
    def __init__(self) -> None:
        self.fast = bt.indicators.SMA(self.data.close, period=FAST)
        self.slow = bt.indicators.SMA(self.data.close, period=SLOW)
        self.target = 0
        self.fills: list[tuple[pd.Timestamp, float, float, float]] = []
        self.pnls: list[float] = []
        self.values: list[float] = []

    def next(self) -> None:
        self.values.append(self.broker.getvalue())
        want = SIZE if self.fast[0] > self.slow[0] else -SIZE if self.fast[0] < self.slow[0] else self.target
        delta, self.target = want - self.target, want
        if delta > 0:
            self.buy(size=delta)
        elif delta < 0:
            self.sell(size=-delta)

    def notify_order(self, order) -> None:
        if order.status == order.Completed:
            stamp = pd.Timestamp(bt.num2date(order.executed.dt)).tz_localize("UTC")
            self.fills.append((stamp, order.executed.price, order.executed.size, order.executed.comm))

    def notify_trade(self, trade) -> None:
        if trade.isclosed:
            self.pnls.append(trade.pnlcomm)


def run_backtrader(data: pd.DataFrame) -> BacktraderSmaReversal:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=data.tz_convert("UTC").tz_localize(None)))
    cerebro.addstrategy(BacktraderSmaReversal)
    cerebro.broker.setcash(CAPITAL)
    cerebro.broker.addcommissioninfo(
        bt.CommInfoBase(
            commission=PER_CONTRACT,
            commtype=bt.CommInfoBase.COMM_FIXED,
            mult=MULT,
            margin=MARGIN,
            stocklike=False,
        )
    )
    (strategy,) = cerebro.run()
    strategy.final_value = cerebro.broker.getvalue()
    return strategy


def test_es_reversal_fills_trades_and_equity_agree_with_backtrader_futures_accounting() -> None:
    data = es_bars()
    registry = InstrumentRegistry(reference=date(2024, 6, 3))
    accounts = InstrumentAccounts(registry, futures_commission=PerContractCommission(PER_CONTRACT))
    engine = BacktestEngine(CAPITAL, commission=0.0, slippage=0.0, instruments=accounts)
    engine.add_strategy(SmaReversal("ESZ6"))
    result = engine.run(symbols=["ESZ6"], data=data)
    peer = run_backtrader(data)

    assert not [o for o in result.orders if o.reject_reason], "no order should be refused here"
    ours = [(pd.Timestamp(f.timestamp), f.fill_price, f.signed_quantity, f.commission) for f in result.fills]
    assert len(peer.fills) > 15, "the data should produce a fair number of reversals"
    assert [f[0] for f in ours] == [f[0] for f in peer.fills]
    for mine, theirs in zip(ours, peer.fills, strict=True):
        assert mine[1] == theirs[1]
        assert mine[2] == theirs[2]
        assert mine[3] == pytest.approx(theirs[3], rel=1e-12)
    # backtrader books a reversal as one trade closed and one opened; so do our FIFO round trips
    closed = result.closed_trades
    assert closed["pnl"].tolist() == pytest.approx(peer.pnls, rel=1e-9)
    # backtrader's value in next() is after that bar's fills, marked at its close: our equity curve
    ours_from = len(result.equity_curve) - len(peer.values)
    assert np.allclose(result.equity_curve.to_numpy()[ours_from:], peer.values, rtol=1e-12, atol=1e-6)
    assert result.final_value == pytest.approx(peer.final_value, rel=1e-12)
