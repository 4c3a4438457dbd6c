"""The engine's performance summary as plain values: the account combined, and each strategy on its own.

Combined (the account, as IB reports it): ``account_value``, ``cash_balance``, ``positions`` — what IB holds,
netted over the strategies and including positions no strategy owns. Per strategy (``strategies[name]``),
from its own :class:`~copilot_quant.model.book.StrategyBook`: ``capital`` (its share), ``positions`` (its
own), ``fills``, ``commissions``, ``realized_pnl``, ``pnl`` (its trading result after commissions, marked at
the last bar's closes, since its first journaled fill), ``equity`` (capital + pnl), ``open_orders`` and
``errors``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from copilot_quant.errors import ConfigError
from copilot_quant.live.account_view import AccountState
from copilot_quant.live.strategy_slot import StrategySlot

__all__ = ["account_summary", "strategy_summaries"]

log = logging.getLogger(__name__)


def strategy_summaries(
    slots: Sequence[StrategySlot], marks: Mapping[str, float], errors: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """One plain-value summary per strategy, by name, in the order they were added."""
    out: dict[str, dict[str, Any]] = {}
    for slot in slots:
        book = slot.book
        book.mark_all(marks)
        try:
            pnl, equity = float(book.pnl), float(book.equity)
        except ConfigError as exc:  # a balance in a currency no pair of the run values: said, not fatal
            log.warning("%s's P&L and equity cannot be valued in USD: %s", slot.name, exc)
            pnl = equity = math.nan
        out[slot.name] = {
            "capital": float(book.capital),
            "positions": {s: p.quantity for s, p in book.positions().items()},
            "fills": book.fill_count,
            "commissions": float(book.commissions),
            "realized_pnl": float(book.realized_pnl),
            "pnl": pnl,
            "equity": equity,
            "open_orders": len(slot.open_orders()),
            "errors": int(errors.get(slot.name, 0)),
        }
    return out


def account_summary(account: AccountState) -> dict[str, Any]:
    """The account as IB reports it: value, cash and positions ``{symbol: quantity}``."""
    return {
        "account_value": float(account.value),
        "cash_balance": float(account.cash),
        "positions": {s: p.quantity for s, p in dict(account.positions).items()},
    }
