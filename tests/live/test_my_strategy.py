"""The guide's example strategy runs unchanged in a backtest, on one symbol and on several."""

from __future__ import annotations

import pytest
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.data.synthetic import SyntheticDataProvider
from copilot_quant.strategies.my_strategy import MyStrategy


@pytest.mark.parametrize("symbols", [["AAPL"], ["MSFT"], ["AAPL", "MSFT"]])
def test_my_strategy_trades_in_a_backtest(symbols):
    engine = BacktestEngine(initial_capital=100_000, data_provider=SyntheticDataProvider(seed=3))
    engine.add_strategy(MyStrategy(period=10, quantity=5))
    result = engine.run(start_date="2023-01-03", end_date="2023-06-30", symbols=symbols)
    log = result.get_trade_log()
    assert len(log) > 2
    assert set(log["symbol"]) == set(symbols)
    assert set(log["quantity"]) == {5.0}
    assert not engine.errors


def test_my_strategy_validates_its_period():
    with pytest.raises(ValueError, match="period"):
        MyStrategy(period=0)


def test_my_strategy_needs_no_symbol_list_for_multi_symbol_data_and_asks_for_one_otherwise():
    # an engine that does not tell the strategy its symbols (no StrategyContext.symbols): multi-symbol
    # frames name theirs, as the guide's run on ['AAPL', 'MSFT'] needs; single-symbol frames cannot
    from copilot_quant.backtest.interfaces import combine_symbols
    from copilot_quant.errors import ConfigError

    feed = SyntheticDataProvider(seed=3)
    frames = {s: feed.get_historical_data(s, "2023-01-03", "2023-03-31") for s in ("AAPL", "MSFT")}
    strategy = MyStrategy(period=5, quantity=1)
    strategy.initialize()
    orders = strategy.on_data(frames["AAPL"].index[-1], combine_symbols(frames))
    assert {o.symbol for o in orders} <= {"AAPL", "MSFT"}
    with pytest.raises(ConfigError, match="pass symbol="):
        strategy.on_data(frames["AAPL"].index[-1], frames["AAPL"])
