"""Example strategies users can run as they are or copy.

:class:`~copilot_quant.strategies.my_strategy.MyStrategy` is the strategy the live-trading guide imports; it
runs unchanged in a backtest and in paper or live trading.
"""
