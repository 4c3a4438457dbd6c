"""The engine's start, step by step: the symbols IB must know, the journal, the strategies' first hooks.

:meth:`LiveStrategyEngine.start <copilot_quant.live.engine.LiveStrategyEngine.start>` runs them in order and
stops at the first that fails (its reason is in the engine's errors): nothing trades until every step passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from copilot_quant.brokers.live_data_adapter import LiveDataFeedAdapter
from copilot_quant.errors import BrokerError, ConfigError
from copilot_quant.journal import TradeJournal
from copilot_quant.live.events import ErrorLog
from copilot_quant.live.strategy_slot import StrategySlot

__all__ = ["check_symbols", "open_journal", "start_strategies"]


def check_symbols(data_feed: LiveDataFeedAdapter, names: list[str], errors: ErrorLog) -> bool:
    """Whether IB knows a US stock for every one of ``names`` (a lookup failure or an unknown symbol is
    recorded in ``errors``, as ``'connection'`` or ``'symbol'``)."""
    try:
        unknown = data_feed.unknown_symbols(names)
    except (BrokerError, TimeoutError, ConnectionError) as exc:
        errors.record(f"could not look up {', '.join(names)}: {exc}", "connection")
        return False
    if unknown:
        listed = ", ".join(repr(s) for s in unknown)
        errors.record(f"IB knows no US stock {listed}; check the ticker symbol", "symbol")
        return False
    return True


def open_journal(
    current: TradeJournal | None, journal_arg: TradeJournal | str | Path | None, account: str | None
) -> tuple[TradeJournal, bool]:
    """The journal to trade with, and whether it was opened here (the engine then closes it at stop).

    An open journal is kept; else the file the engine was given, else the account's journal in the journal
    directory. Raises :class:`~copilot_quant.errors.JournalError` or :class:`ConfigError` (account unknown).
    """
    if current is not None and not current.closed:
        return current, False
    if journal_arg is not None and not isinstance(journal_arg, TradeJournal):
        return TradeJournal(journal_arg, account=account), True
    if not account:
        raise ConfigError("the IB account is unknown; connect() before start()")
    return TradeJournal(account=account), True


def start_strategies(
    slots: Sequence[StrategySlot], bind: Callable[[StrategySlot], None], errors: ErrorLog
) -> bool:
    """Bind each strategy to its account view (``bind``), then call its ``initialize`` and ``on_start``;
    False at the first that raises (recorded in ``errors``)."""
    for slot in slots:
        strategy = slot.strategy
        bind(slot)
        try:
            strategy.initialize()
            strategy.on_start()
        except Exception as exc:
            errors.strategy_failed(strategy.name, exc, f"{type(exc).__name__}: {exc}", "to initialize")
            return False
    return True
