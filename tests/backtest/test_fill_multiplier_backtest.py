"""A backtest's futures fills carry the contract's multiplier: every view of them agrees on the money."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.accounts import InstrumentAccounts, PerContractCommission
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.model.orders import Order

from tests.backtest.test_futures_engine import REG, Script, bars


def test_mes_fills_trade_log_and_trades_agree_on_the_money() -> None:
    data = bars({"MESZ6": [(6000, 6004), (6002, 6010), (6008, 6006), (6012.5, 6020), (6020, 6030)]})
    accounts = InstrumentAccounts(REG, futures_commission=PerContractCommission(1.0))
    engine = BacktestEngine(100_000, slippage=0.0, instruments=accounts, spread=None)
    engine.add_strategy(Script({0: [Order("MESZ6", 2)], 2: [Order("MESZ6", 2, side="SELL")]}))
    result = engine.run(symbols=["MESZ6"], data=data)
    buy, sell = result.fills
    assert (buy.multiplier, sell.multiplier) == (5.0, 5.0)
    assert buy.notional == 2 * 6002.0 * 5
    assert sell.net_proceeds == pytest.approx(2 * 6012.5 * 5 - 2.0)
    log = result.get_trade_log()
    assert log["total_cost"].tolist() == pytest.approx([buy.notional + 2.0, sell.notional + 2.0])
    (trade,) = result.closed_trades.itertuples()
    assert trade.pnl == pytest.approx(2 * 10.5 * 5 - 4.0)
    assert result.final_capital == pytest.approx(100_000 + trade.pnl)
    # the same fills without the result's symbol map (a user's own list): the fills alone suffice
    result.multipliers = {}
    result._cache.clear()
    assert result.closed_trades["pnl"].tolist() == pytest.approx([trade.pnl])


def test_a_stock_fill_keeps_a_multiplier_of_one() -> None:
    data = bars({"AAPL": [(100, 101), (102, 103), (104, 105)]})
    engine = BacktestEngine(100_000, slippage=0.0, commission=0.0, spread=None)
    engine.add_strategy(Script({0: [Order("AAPL", 10)]}))
    result = engine.run(symbols=["AAPL"], data=data)
    (fill,) = result.fills
    assert fill.multiplier == 1.0
    assert fill.notional == 10 * 102.0
