"""Protection drills: the exits of a position are held at IB — as a one-cancels-all group, or as a bracket
the engine entered with. While the engine is down the stop fills there and the take-profit is cancelled
there; a new engine adopts what happened: flat, the journal shows the group complete, nothing is sent
again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from copilot_quant.backtest.orders import Order
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.journal import OrderState, TradeJournal
from ib_async import LimitOrder, MarketOrder, Stock, StopOrder

from .conftest import ACCOUNT, Scripted, assert_books_agree, journal_file, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _orders(path: Path):
    with TradeJournal(path, read_only=True) as journal:
        return {o.order_ref: o for o in journal.orders()}


def test_an_oca_exit_held_at_ib_protects_while_the_engine_is_down(make_engine, gateway, journal_dir):
    path = journal_file(journal_dir)
    price = gateway.broker.last_price("AAPL")
    take_profit = Order("AAPL", 10, "limit", "sell", limit_price=round(price * 3, 2), time_in_force="gtc")
    stop_loss = Order("AAPL", 10, "stop", "sell", stop_price=round(price * 1.5, 2), time_in_force="gtc")
    Order.one_cancels_all([take_profit, stop_loss], "exit-1")
    with TradeJournal(account=ACCOUNT) as journal:  # the engine that is about to die journals and sends
        entry_ref = journal.record_intent(Order("AAPL", 10, "market", "buy"), "Scripted")
        tp_ref = journal.record_intent(take_profit, "Scripted")
        sl_ref = journal.record_intent(stop_loss, "Scripted")
    aapl = Stock("AAPL", "SMART", "USD")
    with connected_ib(gateway, client_id=81) as ib:
        ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef=entry_ref))
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
        gateway.clock.step(1)
        assert wait_until(lambda: [p.position for p in gateway.broker.positions()] == [10])
        exits = [
            LimitOrder("SELL", 10, take_profit.limit_price, orderRef=tp_ref, tif="GTC"),
            StopOrder("SELL", 10, stop_loss.stop_price, orderRef=sl_ref, tif="GTC"),
        ]
        for order in ib.oneCancelsAll(exits, "exit-1", 1):
            ib.placeOrder(aapl, order)
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
    # ... and is gone. The market falls through the stop while no engine runs.
    gateway.clock.step(1)
    assert wait_until(lambda: not gateway.broker.open_orders())
    assert not gateway.broker.positions()  # flat
    engine = make_engine()
    strategy = Scripted()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    by_ref = _orders(path)
    assert by_ref[entry_ref].state is OrderState.FILLED
    assert by_ref[sl_ref].state is OrderState.FILLED
    assert by_ref[tp_ref].state is OrderState.CANCELLED  # cancelled at IB by its group, not by us
    assert not engine.broker.get_open_orders()
    gateway_refs = [o.order_ref for o in gateway.broker.completed_orders()]
    assert sorted(gateway_refs) == sorted([entry_ref, tp_ref, sl_ref])  # nothing sent again
    # the fills made while it was down reach the strategy once each: its position is flat
    assert wait_until(lambda: len(strategy.fills) == 2)
    assert sum(f.signed_quantity for f in strategy.fills) == 0
    assert_books_agree(gateway, path, strategy.fills, engine)


ENGINE_PROCESS = Path(__file__).with_name("engine_process.py")


def _enter_with_a_bracket_then_sigkill(gateway, journal_dir: Path) -> tuple[list[str], float]:
    """An engine process enters with a bracket (10 AAPL at market, a far take-profit, a stop at half the
    price); once the entry filled it is SIGKILLed. Returns its output lines and the stop price."""
    price = gateway.broker.last_price("AAPL")
    take, stop = round(price * 3, 2), round(price * 0.5, 2)
    env = {**os.environ, "COPILOT_QUANT_JOURNAL_DIR": str(journal_dir)}
    proc = subprocess.Popen(
        [sys.executable, str(ENGINE_PROCESS), str(gateway.port), "bracket", str(take), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: "READY\n" in lines, timeout=30), lines
        gateway.clock.step(1)  # the first bar: the bracket goes out as one group
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 3)
        gateway.clock.step(1)  # the entry fills; the exits are armed at IB
        assert wait_until(lambda: sum(line.startswith("FILL") for line in lines) == 1)
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: the process just dies
        proc.wait(10)
        reader.join(5)
        proc.stdout.close()
    exits = sorted(gateway.broker.open_orders(), key=lambda r: r.order_id)
    assert [(r.order_type.value, r.parent_id > 0) for r in exits] == [("LMT", True), ("STP", True)]
    return lines, stop


class _Delivered:  # an earlier process's on_fill call, by exec id
    def __init__(self, exec_id: str) -> None:
        self.fill_id = exec_id


def _earlier_fills(lines: list[str]) -> list[_Delivered]:
    return [_Delivered(line.split()[1]) for line in lines if line.startswith("FILL")]


def _group(path: Path):
    with TradeJournal(path, read_only=True) as journal:
        entry_ref = next(o.order_ref for o in journal.orders() if o.side.value == "buy")
        return journal.bracket(entry_ref)


def test_a_bracket_entered_by_an_engine_protects_after_it_is_sigkilled(make_engine, gateway, journal_dir):
    """Issue 10's drill: the engine enters with a bracket and is SIGKILLed; the market falls through the stop
    while it is down; the stop fills at the gateway and the take-profit is cancelled there; the next engine
    adopts it all: the strategy is flat, the journal shows the group complete, nothing is sent again."""
    path = journal_file(journal_dir)
    lines, stop = _enter_with_a_bracket_then_sigkill(gateway, journal_dir)
    # The market falls through the stop while no engine runs.
    gateway.call(lambda: gateway.broker.on_price("AAPL", round(stop * 0.9, 2)))
    assert wait_until(lambda: not gateway.broker.open_orders())
    assert not gateway.broker.positions()  # flat: the stop sold at IB

    strategy = Scripted()
    strategy.name = "BracketBuyer"  # the same strategy carries on: its orders and fills are its own
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    assert wait_until(lambda: len(strategy.fills) == 1)  # the stop's fill, made while it was down
    held = strategy.positions.get("AAPL")
    assert held is None or held.quantity == 0  # the strategy's book: bought 10, stopped out at IB
    group = _group(path)
    assert [(o.order_type.value, o.state) for o in group] == [
        ("market", OrderState.FILLED),
        ("limit", OrderState.CANCELLED),  # cancelled at IB by the bracket, not by us
        ("stop", OrderState.FILLED),
    ]
    assert not engine.broker.get_open_orders()
    gateway_refs = [o.order_ref for o in gateway.broker.completed_orders()]
    assert sorted(gateway_refs) == sorted(o.order_ref for o in group)  # nothing sent again
    assert_books_agree(gateway, path, [*_earlier_fills(lines), *strategy.fills], engine)  # type: ignore[list-item]


def test_a_restarted_engine_adopts_the_working_exits_of_its_bracket(make_engine, gateway, journal_dir):
    """Killed with the exits still working at IB: the next engine adopts them (linked to their entry, not
    sent again); when the stop then fills, the take-profit is cancelled at IB and the strategy is flat."""
    path = journal_file(journal_dir)
    lines, stop = _enter_with_a_bracket_then_sigkill(gateway, journal_dir)
    strategy = Scripted()
    strategy.name = "BracketBuyer"
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    adopted = sorted(engine.broker.get_open_orders(), key=lambda o: o.order_type.value)
    entry = _group(path)[0]
    assert [(o.order_type.value, o.parent_id) for o in adopted] == [
        ("limit", entry.order_id),
        ("stop", entry.order_id),
    ]
    assert strategy.positions["AAPL"].quantity == 10  # the entry's fill, from the journal
    gateway.call(lambda: gateway.broker.on_price("AAPL", round(stop * 0.9, 2)))
    assert wait_until(lambda: len(strategy.fills) == 1)  # the adopted stop's fill reaches the strategy
    assert wait_until(lambda: not engine.broker.get_open_orders())
    held = strategy.positions.get("AAPL")
    assert held is None or held.quantity == 0
    assert wait_until(
        lambda: (
            [o.state for o in _group(path)] == [OrderState.FILLED, OrderState.CANCELLED, OrderState.FILLED]
        )
    )
    gateway_refs = [o.order_ref for o in gateway.broker.completed_orders()]
    assert sorted(gateway_refs) == sorted(o.order_ref for o in _group(path))  # nothing sent again
    assert_books_agree(gateway, path, [*_earlier_fills(lines), *strategy.fills], engine)  # type: ignore[list-item]
