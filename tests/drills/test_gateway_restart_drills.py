"""Gateway restart drill (walkthrough F1): the simulated gateway is shut down and a *fresh* one (no state, a
new account) starts on the same port; a new engine trades again on the same journal.

Every execution at either gateway must reach ``on_fill`` and the journal exactly once. Before the fix the
fresh gateway numbered its executions from the same id again, the journal took them for duplicates of the
first run's fills and dropped them silently: the strategy never learned what it held.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.journal import EXEC_ID_REUSED, EventKind, TradeJournal, is_journal_ref
from copilot_quant.journal.adjustments import is_adjustment

from .conftest import ACCOUNT, Scripted, journal_file, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(90)]

BUY = Order("AAPL", 10, "market", "buy")
SELL = Order("AAPL", 10, "market", "sell")


@pytest.fixture
def engines() -> Iterator[list[LiveStrategyEngine]]:
    made: list[LiveStrategyEngine] = []
    yield made
    for engine in made:
        engine.disconnect()


def _trade(
    gateway: GatewayServer,
    script: dict[int, list[Order]],
    engines: list[LiveStrategyEngine],
    adopt: bool = False,
) -> tuple[Scripted, LiveStrategyEngine]:
    """Run a new engine on ``gateway`` until every scripted order filled and reached on_fill; ``adopt``: take
    the gateway's positions as the truth at start (a fresh gateway does not hold what the journal says)."""
    strategy = Scripted(script)
    engine = LiveStrategyEngine(
        port=gateway.port, client_id=81, update_interval=3600, fill_timeout=3.0, adopt_broker_positions=adopt
    )
    engines.append(engine)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    orders = 0
    for bar in range(1, max(script) + 2):  # one bar more: the last order fills at the next bar's open
        gateway.clock.step(1)
        assert wait_until(lambda b=bar: strategy.bars >= b)
        orders += len(script.get(bar, []))
        # The bar's orders reach the gateway before the next bar (a market order fills at its open).
        assert wait_until(lambda n=orders: len(_sent(gateway)) == n)
    assert wait_until(lambda: len(_our_executions(gateway)) == orders)
    wait_until(lambda: len(strategy.fills) >= orders, timeout=5)  # a dropped fill never comes: no assert
    return strategy, engine


def _sent(gateway: GatewayServer) -> list:
    return [*gateway.broker.open_orders(), *gateway.broker.completed_orders()]


def _our_executions(gateway: GatewayServer) -> list[tuple[str, str]]:
    return [
        (e.exec_id, e.order_ref) for e in gateway.broker.executions() if is_journal_ref(e.order_ref, ACCOUNT)
    ]


def _net_position(gateway: GatewayServer) -> float:
    return sum(p.position for p in gateway.broker.positions() if p.contract.symbol == "AAPL")


def _run_twice(
    gateway_factory: Callable[..., GatewayServer], engines: list[LiveStrategyEngine]
) -> tuple[list, list]:
    """Trade on a gateway, stop it, trade on a fresh gateway on the same port; returns (first, second)
    as ``(gateway, strategy, engine)``."""
    first_gw = gateway_factory()
    strategy1, engine1 = _trade(first_gw, {1: [BUY], 2: [BUY]}, engines)
    engine1.disconnect()
    port = first_gw.port
    first_gw.stop()
    second_gw = gateway_factory(port=port)  # fresh: no state file, a new account, the same port
    # the journal says the strategy holds 20 the fresh account does not: adopted, or AAPL would not trade
    strategy2, engine2 = _trade(second_gw, {1: [BUY], 2: [SELL], 3: [BUY]}, engines, adopt=True)
    return [first_gw, strategy1, engine1], [second_gw, strategy2, engine2]


def _assert_every_execution_delivered_and_journaled(first: list, second: list, journal_dir) -> None:
    (gw1, strategy1, _), (gw2, strategy2, engine2) = first, second
    # a fill reaches on_fill before its journal commit (inline dispatch: fill_gate.py, "staged fills")
    assert engine2.broker.flush_journal(5)
    execs1, execs2 = _our_executions(gw1), _our_executions(gw2)
    assert (len(execs1), len(execs2)) == (2, 3)
    # Each run's executions reached that run's on_fill, once each.
    assert sorted(f.fill_id for f in strategy1.fills) == sorted(e for e, _ in execs1)
    assert sorted(f.fill_id for f in strategy2.fills) == sorted(e for e, _ in execs2)
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        fills = [f for f in journal.fills() if not is_adjustment(f.exec_id)]
        orders = journal.orders()
        (adjusting,) = [f for f in journal.fills() if is_adjustment(f.exec_id)]
    # Adopting the fresh account's position journaled one adjustment: the strategy's 20 are not there.
    assert (adjusting.side, adjusting.quantity) == ("sell", 20)
    # The journal holds every execution of both gateways, once each (an execution is id + order).
    assert Counter((f.exec_id, f.order_ref) for f in fills) == Counter([*execs1, *execs2])
    assert all(o.filled == o.quantity for o in orders)
    # Positions agree: the journal's fills explain both accounts (20 left at the first, 10 at the second).
    journal_net = sum(f.quantity if f.side == "buy" else -f.quantity for f in fills)
    assert (_net_position(gw1), _net_position(gw2)) == (20, 10)
    assert journal_net == _net_position(gw1) + _net_position(gw2)
    assert wait_until(lambda: engine2.broker.get_positions()["AAPL"].quantity == 10, timeout=5)


def test_every_fill_after_a_fresh_gateway_restart_reaches_on_fill_and_the_journal(
    gateway_factory, engines, journal_dir
):
    first, second = _run_twice(gateway_factory, engines)
    _assert_every_execution_delivered_and_journaled(first, second, journal_dir)
    # A fresh gateway never repeats an execution id of an earlier run, as IB never does.
    ids = [e for e, _ in [*_our_executions(first[0]), *_our_executions(second[0])]]
    assert len(set(ids)) == len(ids)
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        assert not [e for e in journal.errors() if e.code == EXEC_ID_REUSED]


def test_a_broker_reusing_execution_ids_still_delivers_every_fill_and_raises_an_alert(
    gateway_factory, engines, journal_dir, monkeypatch
):
    # A broker that forgets its ids (as the gateway did before the fix): every run numbers from one tag.
    monkeypatch.setattr("copilot_quant.gateway.broker.new_exec_id_tag", lambda: 0x000F4241)
    first, second = _run_twice(gateway_factory, engines)
    reused = {e for e, _ in _our_executions(first[0])} & {e for e, _ in _our_executions(second[0])}
    assert len(reused) == 2  # the drill really collides
    _assert_every_execution_delivered_and_journaled(first, second, journal_dir)
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        alerts = [e for e in journal.events() if e.kind == EventKind.ALERT and "reused" in e.detail]
        errors = [e for e in journal.errors() if e.code == EXEC_ID_REUSED]
    assert len(alerts) == len(errors) == 2
    assert all(any(exec_id in e.message for exec_id in reused) for e in errors)
    # The engine counted each one as an error, too.
    engine2 = second[2]
    assert sum("already used" in e["error"] for e in engine2.errors) == 2


def test_a_reused_execution_id_found_by_reconciliation_is_delivered_and_counted(
    gateway_factory, engines, journal_dir, monkeypatch
):
    """The fill happens while no engine runs; the next engine finds it at start (reconciliation), for an
    order it does not track yet, with an execution id the journal holds for another order."""
    monkeypatch.setattr("copilot_quant.gateway.broker.new_exec_id_tag", lambda: 0x000F4241)
    first_gw = gateway_factory()
    _trade(first_gw, {1: [BUY]}, engines)[1].disconnect()
    port = first_gw.port
    first_gw.stop()
    second_gw = gateway_factory(port=port)  # a fresh gateway: its first execution id is the first run's
    resting = Order("AAPL", 5, "limit", "buy", limit_price=10_000.0, time_in_force="gtc")
    strategy = Scripted({1: [resting]})
    placer = LiveStrategyEngine(  # the fresh account holds none of the 10 the journal says: adopted
        port=port, client_id=81, update_interval=3600, fill_timeout=0.0, adopt_broker_positions=True
    )
    engines.append(placer)
    placer.broker.ack_timeout = 0.0  # it fills at the next bar, when the engine is gone
    placer.add_strategy(strategy)
    assert placer.connect(timeout=5)
    assert placer.start(["AAPL"], lookback_days=5)
    second_gw.clock.step(1)
    assert wait_until(lambda: strategy.bars == 1 and len(_sent(second_gw)) == 1)
    placer.disconnect()  # the process "dies" with the order resting
    second_gw.clock.step(1)  # the marketable limit fills now: execution id ...0001, as in the first run
    assert wait_until(lambda: len(_our_executions(second_gw)) == 1)
    ((reused, _),) = _our_executions(second_gw)
    assert reused in {e for e, _ in _our_executions(first_gw)}

    later = Scripted()
    engine = LiveStrategyEngine(port=port, client_id=81, update_interval=3600)
    engines.append(engine)
    engine.add_strategy(later)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)  # reconciliation delivers the fill found at IB
    assert wait_until(lambda: [f.fill_id for f in later.fills] == [reused], timeout=10)
    assert wait_until(lambda: any(reused in e["error"] for e in engine.errors), timeout=5)
    with TradeJournal(journal_file(journal_dir), read_only=True) as journal:
        assert sum(1 for f in journal.fills() if f.exec_id == reused) == 2  # one per order, none dropped
