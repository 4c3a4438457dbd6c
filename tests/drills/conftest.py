"""Fault drills: the engine against the simulated gateway's fault injection, real ib_async, real journal.

Every drill ends with :func:`assert_books_agree`: the journal, the engine's view and the gateway's account
agree, no order reached the gateway twice, and every execution reached ``on_fill`` exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Fill
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.journal import TradeJournal, is_journal_ref

from ..live.conftest import (  # noqa: F401 - fixtures re-used by the drills
    Scripted,
    Stepper,
    _journal_in_tmp,
    _no_leaked_ib_threads,
    feed,
    gateway,
    gateway_factory,
    wait_until,
)

ACCOUNT = "DU1234567"


@pytest.fixture
def journal_dir(_journal_in_tmp: Path) -> Path:  # noqa: F811 - the live fixture, under a public name
    return _journal_in_tmp


@pytest.fixture
def make_engine(gateway: GatewayServer) -> Iterator[Callable[..., LiveStrategyEngine]]:  # noqa: F811
    made: list[LiveStrategyEngine] = []

    def make(**kwargs: object) -> LiveStrategyEngine:
        options: dict[str, object] = {
            "port": gateway.port,
            "client_id": 81,
            "update_interval": 3600,
            "fill_timeout": 3.0,
        }
        options.update(kwargs)
        engine = LiveStrategyEngine(**options)  # type: ignore[arg-type]
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.disconnect()


def journal_file(journal_dir: Path) -> Path:
    return journal_dir / f"{ACCOUNT}.sqlite"


def assert_books_agree(
    gateway: GatewayServer,  # noqa: F811 - the server the drill ran against
    journal_path: Path,
    delivered: list[Fill],
    engine: LiveStrategyEngine | None = None,
) -> None:
    """Journal, engine and gateway agree; nothing lost, nothing sent or delivered twice."""
    broker = gateway.broker
    if engine is not None and engine.broker.is_connected():
        # with inline dispatch a fill reaches on_fill first and is journaled just after: wait for that
        assert engine.broker.flush_journal(5)
    with TradeJournal(journal_path, read_only=True) as journal:
        j_fills = journal.fills()
        j_orders = journal.orders()
    # Every gateway execution of our orders is in the journal exactly once, and vice versa.
    gw_execs = {e.exec_id: e for e in broker.executions() if is_journal_ref(e.order_ref, ACCOUNT)}
    assert sorted(f.exec_id for f in j_fills) == sorted(gw_execs)
    # Every execution reached on_fill exactly once (across engine objects when several ran).
    counts = Counter(f.fill_id for f in delivered)
    assert all(n == 1 for n in counts.values()), counts
    assert set(counts) == set(gw_execs)
    # No order reached the gateway twice: one gateway order per journal ref at most.
    refs = Counter(o.order_ref for o in [*broker.open_orders(), *broker.completed_orders()] if o.order_ref)
    assert all(n == 1 for n in refs.values()), refs
    assert set(refs) <= {o.order_ref for o in j_orders}
    # Positions: the journal's fills explain the gateway's account.
    journal_pos: Counter[str] = Counter()
    for f in j_fills:
        journal_pos[f.symbol] += f.quantity if f.side == "buy" else -f.quantity
    gw_pos = {p.contract.symbol: p.position for p in broker.positions() if p.position}
    assert {s: q for s, q in journal_pos.items() if q} == gw_pos
    # Each journal order's filled quantity is the sum of its fills.
    for order in j_orders:
        assert order.filled == pytest.approx(
            sum(f.quantity for f in j_fills if f.order_ref == order.order_ref)
        )
    if engine is not None and engine.is_connected():
        assert wait_until(
            lambda: {s: p.quantity for s, p in engine.broker.get_positions().items()} == gw_pos, timeout=5
        )


def journaled_fills(journal_path: Path) -> int:
    """How many fills the journal at ``journal_path`` holds (0 before it exists)."""
    if not journal_path.exists():
        return 0
    with TradeJournal(journal_path, read_only=True) as journal:
        return len(journal.fills())
