"""Protection drill: the exits of a position are held at IB as a one-cancels-all group. While the engine is
down the stop fills there and the take-profit is cancelled there; a new engine adopts what happened: flat,
the journal shows the group complete, nothing is sent again."""

from __future__ import annotations

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
