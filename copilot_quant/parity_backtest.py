"""The backtest half of a parity run (:mod:`copilot_quant.parity`): every strategy on one account in a
:class:`~copilot_quant.backtest.engine.BacktestEngine` over the replayed bars, summarised per account and per
strategy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from copilot_quant.backtest.costs import CommissionModel, SlippageModel
from copilot_quant.backtest.engine import BacktestEngine
from copilot_quant.backtest.interfaces import IDataFeed
from copilot_quant.backtest.order_outcomes import OrderOutcome
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.model.spread import AUTO, spread_of
from copilot_quant.parity_report import ParityStrategy, RunSummary, StrategyFailure
from copilot_quant.parity_rows import build_strategy, fill_row, merged_watches, order_row
from copilot_quant.parity_watch import Watch, utc

__all__ = ["backtest_run", "backtest_summary"]


def backtest_summary(result: BacktestResult, bars: int, failures: list[StrategyFailure]) -> RunSummary:
    failures = list(failures)
    engine_first = result.errors[0] if result.errors else None
    if failures and engine_first is not None and engine_first.get("timestamp") is not None:
        first = failures[0]
        if engine_first.get("hook") == first.hook and utc(engine_first["timestamp"]) == first.bar:
            # the same exception: the engine's text adds what to do (e.g. the MultiIndex-columns hint)
            failures[0] = replace(first, error=f"{engine_first.get('type')}: {engine_first.get('error')}")
    summary = RunSummary("backtest", bars_given=bars, strategy_errors=failures)
    summary.orders = [order_row(o) for o in result.orders]
    summary.outcomes = [OrderOutcome.of(o) for o in result.orders]
    summary.fills = [fill_row(f, pd.Timestamp(f.timestamp).tz_convert("UTC")) for f in result.fills]
    summary.final_equity = float(result.final_value)
    summary.final_cash = float(result.cash_curve.iloc[-1]) if len(result.cash_curve) else math.nan
    summary.errors = [str(e.get("error", e)) for e in result.errors]
    return summary


def backtest_run(
    specs: Sequence[ParityStrategy],
    feed: IDataFeed,
    names: list[str],
    stamps: pd.DatetimeIndex,
    *,
    first: pd.Timestamp,
    last: pd.Timestamp,
    capital: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    interval: str,
    volume_limit: float | None,
    roll_days: int = 5,
    auto_roll: bool = False,
) -> tuple[RunSummary, dict[str, RunSummary]]:
    """The backtest of every strategy on one account: the account's summary and each strategy's."""
    engine = BacktestEngine(
        initial_capital=capital,
        data_provider=feed,
        commission=commission,
        slippage=slippage,
        spread=AUTO if spread_of(slippage) is not None else None,  # the spread, if any, is in slippage
        interval=interval,
        volume_limit=volume_limit,
        roll_days=roll_days,
        auto_roll=auto_roll,
        max_logged_errors=1,  # one traceback, not one per bar; the report counts them all
    )
    watches = [Watch(stamps) for _ in specs]
    for spec, watch in zip(specs, watches, strict=True):
        engine.add_strategy(build_strategy(spec, watch, skip_first=True), capital=spec.capital)
    result = engine.run(first, last, names)
    account = backtest_summary(result, *merged_watches(watches))
    parts = {
        spec.label: backtest_summary(result.strategies.get(spec.label, result), watch.bars, watch.failures)
        for spec, watch in zip(specs, watches, strict=True)
    }
    return account, parts
