"""Helpers shared by the journal tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from copilot_quant.backtest.orders import Order
from copilot_quant.cli import journal as journal_cli
from copilot_quant.journal import BrokerExecution, BrokerOrder, ReconcileReport, TradeJournal, reconcile
from copilot_quant.journal.intent_log import intent_log_path

ACCOUNT = "DU1234567"
T0 = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)


def journal_app() -> typer.Typer:
    """The ``journal`` command under a group, as in the real CLI (so that ``journal`` is a sub-command)."""
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        pass

    journal_cli.register(root)
    return root


class StepClock:
    """Returns T0, T0+1ms, T0+2ms ...: distinct, increasing recording times."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def abandon(journal: TradeJournal) -> None:
    """What a SIGKILL leaves of an open journal: SQLite's commits and the intent log's synced lines, and
    nothing of what was only in memory (intents not written to SQLite yet stay in the log only)."""
    store = journal._store
    if store.intent_log is not None:
        store.intent_log.close(in_sqlite=False)
        store.intent_log = None
    assert store.conn is not None
    store.conn.close()
    store.conn = None


def logged(journal_path: Path) -> list[bytes]:
    """The intents' lines in the intent log of the journal at ``journal_path`` (the first line, which names
    the journal the log belongs to, aside): none once the log is cut."""
    lines = intent_log_path(journal_path).read_bytes().splitlines()
    return [line for line in lines if not line.startswith(b"{")]


def buy(symbol: str = "AAPL", qty: float = 10, **kw: object) -> Order:
    return Order(symbol, qty, side="buy", **kw)  # type: ignore[arg-type]


def sell(symbol: str = "AAPL", qty: float = 10, **kw: object) -> Order:
    return Order(symbol, qty, side="sell", **kw)  # type: ignore[arg-type]


def reconcile_journal(
    journal: TradeJournal, broker_orders: Iterable[BrokerOrder], executions: Iterable[BrokerExecution]
) -> ReconcileReport:
    """Reconcile ``journal``'s active orders and fills against the broker's view, as the engine does."""
    return reconcile(journal.orders("active"), broker_orders, executions, journal.fills(), journal.account)
