"""Protection drills: a position's exits are held at IB, so they protect it while no engine runs.

* A one-cancels-all group, or a bracket the engine entered with: while the engine is down the stop fills
  there and the take-profit is cancelled there; a new engine adopts what happened: flat, the journal shows
  the group complete, nothing is sent again.
* A trailing stop: the engine process is SIGKILLed; the price runs up (the stop follows it at IB) and falls
  through the raised stop, which fills; a new engine adopts the fill.
"""

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

from .conftest import ACCOUNT, Scripted, assert_books_agree, journal_file, journaled_fills, wait_until

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
        # killed once the entry's fill is on the disk (one delivered but not yet journaled when the process
        # dies comes back to the next run: tests/live/test_inline_durability.py)
        assert wait_until(lambda: journaled_fills(journal_file(journal_dir)) == 1)
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


def test_a_trailing_stop_keeps_trailing_at_ib_while_the_engine_is_killed(make_engine, gateway, journal_dir):
    """The engine (its own process) buys 10 and protects them with a trailing stop held at IB, then is
    SIGKILLed. While it is down the price runs up — the stop follows it at the gateway — then falls through
    the raised stop, which fills. A new engine adopts the fill: flat, journal complete, nothing sent again."""
    trail = 30.0  # about 8 % of the synthetic AAPL price: wider than a bar's range
    env = {**os.environ, "COPILOT_QUANT_JOURNAL_DIR": str(journal_dir)}
    proc = subprocess.Popen(
        [sys.executable, str(ENGINE_PROCESS), str(gateway.port), f"trail:{trail}"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: "READY\n" in lines, timeout=30), lines
        gateway.clock.step(1)  # bar 1: the market buy goes out
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
        gateway.clock.step(
            1
        )  # it fills at bar 2's open; at bar 2's close the engine holds 10 and protects them
        assert wait_until(lambda: sum(line.startswith("FILL") for line in lines) == 1)
        assert wait_until(lambda: [o.order_type.value for o in gateway.broker.open_orders()] == ["TRAIL"])
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: the process just dies
        proc.wait(10)
        reader.join(5)
        proc.stdout.close()
    (stop,) = gateway.broker.open_orders()
    start = gateway.broker.last_price("AAPL")
    first_stop = stop.trail_stop_price
    assert first_stop == pytest.approx(start - trail)

    def price(value: float) -> None:
        gateway.call(lambda: gateway.broker.on_price("AAPL", round(value, 2)))

    for up in (10.0, 25.0, 40.0):  # the market runs up while no engine runs: the stop follows at IB
        price(start + up)
    (stop,) = gateway.broker.open_orders()
    assert stop.trail_stop_price == pytest.approx(start + 40.0 - trail)
    price(start + 20.0)  # a dip inside the trail: nothing
    assert gateway.broker.open_orders()
    price(start + 5.0)  # through the raised stop (start + 10): it fills, far above where it started
    assert wait_until(lambda: not gateway.broker.open_orders())
    assert not gateway.broker.positions()  # flat
    (sold,) = [e for e in gateway.broker.executions() if e.side == "SLD"]
    assert sold.price > first_stop + 30.0

    strategy = Scripted()
    strategy.name = "TrailingProtector"  # the same strategy carries on: the stop's fill is its own
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    path = journal_file(journal_dir)
    by_ref = _orders(path)
    assert sorted(o.state.value for o in by_ref.values()) == ["filled", "filled"]
    (trailing,) = [o for o in by_ref.values() if o.order_type.value == "trailing_stop"]
    assert trailing.filled == 10
    assert not engine.broker.get_open_orders()
    assert sorted(o.order_ref for o in gateway.broker.completed_orders()) == sorted(by_ref)  # nothing resent
    assert wait_until(lambda: len(strategy.fills) == 1)  # the stop's fill, made while down, reaches it once
    assert strategy.position("AAPL") == 0
    assert_books_agree(gateway, path, [*_earlier_fills(lines), *strategy.fills], engine)  # type: ignore[list-item]
