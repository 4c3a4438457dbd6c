"""A backtest run's :class:`~copilot_quant.backtest.results.BacktestResult`, assembled once the bars are done.

The equity and cash curves come from the run's :class:`~copilot_quant.backtest.ledger.Ledger` (built
vectorized here, not per bar); with several strategies each gets its own result from its book.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from copilot_quant.backtest.books import StrategyBooks, result_keys
from copilot_quant.backtest.ledger import Ledger
from copilot_quant.backtest.market import MarketData
from copilot_quant.backtest.multi_asset import MultiAssetLedger
from copilot_quant.backtest.results import BacktestResult
from copilot_quant.model.orders import Order, Position

__all__ = ["assemble_result"]

log = logging.getLogger("copilot_quant.backtest.engine")  # where this line has always been logged


def assemble_result(  # noqa: PLR0917 - the run's parts, each named
    names: Sequence[str],
    market: MarketData | None,
    symbols: list[str],
    period: tuple[pd.Timestamp | None, pd.Timestamp | None],
    ledger: Ledger | MultiAssetLedger,
    orders: list[Order],
    positions: dict[str, Position],
    errors: list[dict[str, Any]],
    books: StrategyBooks | None,
) -> BacktestResult:
    """The result of a run of the strategies ``names`` over ``market`` (None: there were no bars for
    ``symbols``) in ``period`` (``(lo, hi)``, None: from the data)."""
    if errors:
        log.warning("%d strategy error(s) during the backtest; see result.errors", len(errors))
    if market is None:
        empty = pd.DatetimeIndex([], tz="UTC", name="timestamp")
        equity = pd.Series([], index=empty, dtype=float, name="equity")
        cash = pd.Series([], index=empty, dtype=float, name="cash")
        prices = pd.DataFrame(index=empty, columns=pd.Index(symbols), dtype=float)
        first = last = None
    else:
        equity, cash = ledger.curves(market.marks, market.index)
        prices = market.close_frame()
        first, last = market.index[0], market.index[-1]
    lo, hi = period
    now = datetime.now(UTC)
    start = lo if lo is not None else first if first is not None else now
    end = hi if hi is not None else last if last is not None else now
    result = BacktestResult(
        strategy_name=" + ".join(names),
        start_date=start,
        end_date=end,
        initial_capital=ledger.initial_cash,
        equity_curve=equity,
        cash_curve=cash,
        fills=list(ledger.fills),
        orders=list(orders),
        positions=positions,
        prices=prices,
        errors=list(errors),
    )
    keys = result_keys(list(names))
    result.strategies = {keys[0]: result} if books is None else books.results(result, market, keys)
    return result
