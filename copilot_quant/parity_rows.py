"""What both halves of a parity run (:mod:`copilot_quant.parity`) record and run: an order's and a fill's row
in the compared tables, and a fresh, watched instance of each strategy.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pandas as pd

from copilot_quant.backtest.orders import Fill, Order
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.parity_report import ParityStrategy, StrategyFailure
from copilot_quant.parity_watch import Watch, after_first_bar, watched

__all__ = ["as_text", "build_strategy", "fill_row", "final_status", "merged_watches", "order_row"]


def final_status(order: Order) -> str:
    # IB reports a DAY order that expired at the session end as Cancelled, so the live side cannot tell
    # the two apart; both mean "ended unfilled without a rejection".
    status = as_text(order.status)
    return "cancelled" if status == "expired" else status


def as_text(value: Any) -> str:
    return str(getattr(value, "value", value))


def order_row(order: Order) -> tuple[Any, ...]:
    return (
        order.symbol,
        as_text(order.side),
        float(order.quantity),
        as_text(order.order_type),
        order.limit_price,
        order.stop_price,
        final_status(order),
    )


def fill_row(fill: Fill, stamp: pd.Timestamp) -> tuple[Any, ...]:
    order = fill.order
    return (
        stamp,
        order.symbol,
        as_text(order.side),
        float(fill.fill_quantity),
        float(fill.fill_price),
        float(fill.commission),
    )


def build_strategy(spec: ParityStrategy, watch: Watch, *, skip_first: bool) -> Strategy:
    """A fresh instance of ``spec``'s strategy reporting to ``watch`` (no state shared between the runs)."""
    cls = after_first_bar(spec.strategy_class, watch) if skip_first else watched(spec.strategy_class, watch)
    strategy = cls(**copy.deepcopy(dict(spec.kwargs)))
    if spec.name is not None:
        strategy.name = spec.name
    return strategy


def merged_watches(watches: Sequence[Watch]) -> tuple[int, list[StrategyFailure]]:
    """The account's bars and strategy errors: the most bars any strategy was handed, every failure."""
    return max(w.bars for w in watches), [f for w in watches for f in w.failures]
