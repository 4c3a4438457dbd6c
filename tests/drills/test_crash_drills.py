"""Crash drills: the engine process dies at any point; the next one neither loses nor repeats anything."""

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
from ib_async import LimitOrder, Stock

from tests.journal.support import abandon

from .conftest import ACCOUNT, Scripted, assert_books_agree, journal_file, journaled_fills, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

ENGINE_PROCESS = Path(__file__).with_name("engine_process.py")


def _orders(path: Path):
    with TradeJournal(path, read_only=True) as journal:
        return journal.orders()


@pytest.mark.parametrize("intents_in", ["sqlite", "intent log only"])
def test_a_crash_between_intent_and_acknowledgement_never_resends(
    make_engine, gateway, journal_dir, intents_in
):
    """``intent log only``: the process died before any SQLite transaction took the intents' rows (they
    are on the disk in the intent log alone); the new engine's journal recovers them at open."""
    path = journal_file(journal_dir)
    journal = TradeJournal(account=ACCOUNT)  # the journal of the process that crashed
    unsent = journal.record_intent(Order("AAPL", 4, "limit", "buy", limit_price=1.0))
    sent = journal.record_intent(Order("AAPL", 3, "limit", "buy", limit_price=1.0, time_in_force="gtc"))
    if intents_in == "sqlite":
        journal.close()
    else:
        abandon(journal)
    # It crashed after sending `sent` (same client id, ref as orderRef) but before journaling the ack.
    with connected_ib(gateway, client_id=81) as ib:
        ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 3, 1.0, orderRef=sent, tif="GTC"))
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    engine = make_engine()
    engine.add_strategy(Scripted())
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    by_ref = {o.order_ref: o for o in _orders(path)}
    assert by_ref[unsent].state is OrderState.REJECTED
    assert "never sent" in by_ref[unsent].reason
    assert by_ref[sent].state is OrderState.SUBMITTED
    assert by_ref[sent].broker_order_id is not None
    assert [o.order_ref for o in gateway.broker.open_orders()] == [sent]  # not sent again
    assert len(engine.broker.get_open_orders()) == 1  # tracked again by the new engine
    engine.kill("drill")  # so it can be cancelled by the new engine
    assert wait_until(lambda: not gateway.broker.open_orders())
    assert wait_until(lambda: _orders(path)[1].state is OrderState.CANCELLED)
    assert_books_agree(gateway, path, [], engine)


def test_an_engine_process_killed_mid_session_is_carried_on_by_a_new_one(
    make_engine, gateway, feed, journal_dir
):
    bars = feed.get_historical_data("AAPL", "2024-03-01", "2024-03-06")
    limit = round((bars["Low"].iloc[2] + min(bars["Close"].iloc[0], bars["Low"].iloc[1])) / 2, 2)
    env = {**os.environ, "COPILOT_QUANT_JOURNAL_DIR": str(journal_dir)}
    proc = subprocess.Popen(
        [sys.executable, str(ENGINE_PROCESS), str(gateway.port), str(limit)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        assert wait_until(lambda: "READY\n" in lines, timeout=30), lines
        gateway.clock.step(1)
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
        gateway.clock.step(1)  # the market order fills
        assert wait_until(lambda: sum(line.startswith("FILL") for line in lines) == 1)
        # killed once its fill is on the disk (a fill delivered but not yet journaled when the process dies
        # comes back to the next run: tests/live/test_inline_durability.py)
        assert wait_until(lambda: journaled_fills(journal_file(journal_dir)) == 1)
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: the process just dies
        proc.wait(10)
        reader.join(5)
        proc.stdout.close()
    gateway.clock.step(1)  # the resting limit fills while no engine runs
    assert wait_until(lambda: len(gateway.broker.executions()) == 2)

    strategy = Scripted()
    strategy.name = "FirstBarBuyer"  # the same strategy carries on: its fills are its own
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    assert wait_until(lambda: len(strategy.fills) == 1)
    assert strategy.positions["AAPL"].quantity == 17  # the market buy and the limit filled while down
    path = journal_file(journal_dir)
    assert wait_until(lambda: [o.state for o in _orders(path)] == [OrderState.FILLED, OrderState.FILLED])

    class Delivered:  # the first process's on_fill calls, by exec id
        def __init__(self, exec_id: str) -> None:
            self.fill_id = exec_id

    earlier = [Delivered(line.split()[1]) for line in lines if line.startswith("FILL")]
    assert_books_agree(gateway, path, [*earlier, *strategy.fills], engine)  # type: ignore[list-item]
