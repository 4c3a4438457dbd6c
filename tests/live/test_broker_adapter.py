"""LiveBrokerAdapter against the simulated gateway: real executions, commissions, rejections, positions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from copilot_quant.backtest.interfaces import IBroker
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.errors import BrokerError
from copilot_quant.journal import TradeJournal
from copilot_quant.model.spread import DEFAULT_SPREAD, grid_frame, quote_at

from .conftest import REPLAY_START, Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

NOW = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def broker(gateway):
    b = LiveBrokerAdapter(paper_trading=True, port=gateway.port, client_id=50, fill_timeout=10, ack_timeout=1)
    assert b.connect(timeout=5)
    yield b
    b.disconnect()


def _future_bars(feed, symbol="AAPL"):
    return feed.get_historical_data(symbol, start_date=REPLAY_START, end_date="2024-06-30")


def test_it_is_an_ibroker(gateway):
    assert isinstance(LiveBrokerAdapter(port=gateway.port), IBroker)


def test_a_market_order_fills_at_the_next_real_price_with_ibs_commission(broker, gateway, feed):
    fills = []
    broker.register_fill_callback(fills.append)
    order = Order("AAPL", 10, "market", "buy")
    with Stepper(gateway):
        fill = broker.execute_order(order, 100.0, NOW)
    assert fill is not None
    # at the ask of a next bar's open: the gateway quotes the default spread, each bar's width from the
    # bars before it (the whole series it replays)
    series = grid_frame(feed.get_historical_data("AAPL", interval="1d"))
    widths = DEFAULT_SPREAD.widths(*(series[c].to_numpy() for c in ("Open", "High", "Low", "Close")))
    ahead = [k for k, t in enumerate(series.index) if t >= _future_bars(feed).index[0]][:5]
    asks = [quote_at(float(series["Open"].iloc[k]), int(widths[k]))[1] for k in ahead]
    assert fill.fill_price in [pytest.approx(p, rel=1e-9) for p in asks]
    assert fill.fill_quantity == 10
    assert fill.commission == pytest.approx(1.0)  # IB Fixed minimum from the gateway, not the 0.1% model
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == pytest.approx(fill.fill_price)
    assert fills == [fill]


def test_a_resting_limit_order_fills_later_and_reaches_the_callbacks(broker, gateway, feed):
    bars = _future_bars(feed)
    lows = bars["Low"].to_numpy()
    # The first bar (k >= 2) whose low undercuts every earlier low: a limit there rests until bar k.
    k = next(i for i in range(2, len(lows)) if lows[i] < lows[:i].min() - 0.05)
    limit = round(float(lows[:k].min()) - 0.01, 2)
    fills = []
    broker.register_fill_callback(fills.append)
    order = Order("AAPL", 5, "limit", "buy", limit_price=limit, time_in_force="gtc")
    assert broker.execute_order(order, float(bars["Close"].iloc[0]), NOW) is None
    assert order.status is OrderStatus.SUBMITTED
    assert broker.get_open_orders() == [order]
    for _ in range(k + 1):  # step i delivers bar i of the replay
        gateway.clock.step(1)
    assert broker.wait_for_fills(order, 10)
    assert order.status is OrderStatus.FILLED
    assert len(fills) == 1
    assert fills[0].fill_price == pytest.approx(min(limit, float(bars["Open"].iloc[k])))
    assert fills[0].commission == pytest.approx(1.0)
    assert broker.get_open_orders() == []


def test_a_thread_safe_fill_callback_gets_the_journaled_fill_without_waiting_for_the_loop(
    broker, gateway, tmp_path
):
    """The engine's fill callback only queues the fill, so it runs where the fill is once journaled (the
    journal writer thread): a fill reaches it, and ``flush_fills`` returns, while IB's loop thread is busy.
    A callback registered without ``thread_safe`` still runs on the loop thread."""
    journal = TradeJournal(tmp_path / "journal.sqlite", account="DU1234567")
    broker.journal = journal
    anywhere: list[tuple[str, bool]] = []
    broker.register_fill_callback(
        lambda f: anywhere.append((threading.current_thread().name, journal.knows_fill(f.fill_id))),
        thread_safe=True,
    )
    order, second = Order("AAPL", 10, "market", "buy"), Order("AAPL", 5, "market", "sell")
    refs = [journal.record_intent(order), journal.record_intent(second)]
    writer_started, writer_gate, loop_gate = threading.Event(), threading.Event(), threading.Event()
    try:
        # (a write holds the journal's lock while it runs: nothing below may write to the journal directly)
        broker._writer.submit(journal, lambda j: (writer_started.set(), writer_gate.wait(60)))
        assert writer_started.wait(5)  # the writer is held: the fill will wait for it, queued
        assert broker.place_orders([(order, 100.0, refs[0])]) == [True]
        assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
        gateway.clock.step(1)  # fills it
        assert wait_until(lambda: broker._gate._passed == 1)  # the fill is complete, queued for the journal
        broker.connection.runtime.call_soon(loop_gate.wait, 60)  # IB's loop thread is busy from now on
        writer_gate.set()
        assert broker.flush_fills(timeout=5)
        assert anywhere == [("copilot-quant-journal", True)]  # on the writer thread, after the commit
    finally:
        writer_gate.set()
        loop_gate.set()
    on_loop: list[str] = []
    broker.register_fill_callback(lambda f: on_loop.append(threading.current_thread().name))
    assert broker.place_orders([(second, 100.0, refs[1])]) == [True]
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    gateway.clock.step(1)
    assert wait_until(lambda: len(on_loop) == 1)
    assert broker.flush_fills(timeout=5)
    assert len(anywhere) == 2
    assert on_loop != ["copilot-quant-journal"]  # the loop thread (named by the connection)
    broker.disconnect()
    journal.close()


def test_a_rejected_order_is_marked_and_reported(broker, gateway):
    errors = []
    broker.register_error_callback(lambda record, msg: errors.append((record.order, msg)))
    gateway.reject_next_order("Simulated rejection")
    order = Order("AAPL", 10, "market", "buy")
    assert broker.execute_order(order, 100.0, NOW) is None
    assert order.status is OrderStatus.REJECTED
    assert "Simulated rejection" in order.reject_reason
    assert errors
    assert errors[0][0] is order


def test_an_unknown_symbol_is_rejected_with_a_reason(broker):
    errors = []
    broker.register_error_callback(lambda record, msg: errors.append(msg))
    order = Order("NOPE", 1, "market", "buy")
    assert broker.execute_order(order, 10.0, NOW) is None
    assert order.status is OrderStatus.REJECTED
    assert "NOPE" in order.reject_reason
    assert len(errors) == 1


def test_an_order_cannot_be_sent_twice(broker):
    order = Order("AAPL", 1, "limit", "buy", limit_price=1.0)
    broker.execute_order(order, 100.0, NOW)
    with pytest.raises(BrokerError, match="already sent"):
        broker.execute_order(order, 100.0, NOW)
    assert broker.cancel_order(order)
    assert wait_until(lambda: order.status is OrderStatus.CANCELLED)


def test_partial_fills_are_reported_once_each(gateway_factory):
    server = gateway_factory(partial_fill_size=3)
    broker = LiveBrokerAdapter(port=server.port, client_id=51, fill_timeout=0.5)
    fills = []
    broker.register_fill_callback(fills.append)
    try:
        assert broker.connect(timeout=5)
        order = Order("AAPL", 10, "market", "buy")
        broker.execute_order(order, 100.0, NOW)
        with Stepper(server):
            assert broker.wait_for_fills(order, 15)
        assert sum(f.fill_quantity for f in fills) == 10
        assert len({f.fill_id for f in fills}) == len(fills) > 1
        assert order.status is OrderStatus.FILLED
    finally:
        broker.disconnect()


def test_positions_cash_and_account_value_come_from_ib(broker, gateway):
    order = Order("MSFT", 7, "market", "buy")
    with Stepper(gateway):
        fill = broker.execute_order(order, 100.0, NOW)
    assert fill is not None
    assert wait_until(lambda: "MSFT" in broker.get_positions())
    pos = broker.get_position("MSFT")
    assert pos is not None
    assert pos.quantity == 7.0
    assert isinstance(pos.quantity, float)
    assert pos.avg_entry_price == pytest.approx(fill.fill_price, rel=1e-6)
    expected_cash = 1_000_000 - 7 * fill.fill_price - fill.commission
    assert wait_until(
        lambda: broker.get_cash_balance() == pytest.approx(expected_cash, abs=0.01)
    )  # IB reports cents
    assert broker.get_account_value() > 0
    # the engine's one-trip view says the same as the three separate calls
    value, cash, positions = broker.account_snapshot()
    assert value == pytest.approx(broker.get_account_value())
    assert cash == pytest.approx(broker.get_cash_balance())
    assert {s: p.quantity for s, p in positions.items()} == {
        s: p.quantity for s, p in broker.get_positions().items()
    }


def test_buying_power_includes_commission_and_follows_the_short_policy(broker):
    power = broker.get_buying_power()
    assert broker.check_buying_power(Order("AAPL", 10, "market", "buy"), 100.0)
    too_much = int(power / 100.0)
    assert not broker.check_buying_power(Order("AAPL", too_much, "market", "buy"), 100.0)  # + commission
    assert broker.check_buying_power(Order("AAPL", 10, "market", "sell"), 100.0)  # a short within power
    broker.allow_short = False
    assert not broker.check_buying_power(Order("AAPL", 10, "market", "sell"), 100.0)


def test_cost_models(broker):
    assert broker.calculate_commission(100.0, 10) == pytest.approx(1.0)
    assert broker.calculate_slippage(Order("AAPL", 1, "market", "buy"), 100.0) == pytest.approx(100.05)
    assert broker.calculate_slippage(Order("AAPL", 1, "market", "sell"), 100.0) == pytest.approx(99.95)


def test_paper_mode_refuses_a_live_account(gateway_factory):
    from copilot_quant.errors import ConfigError

    server = gateway_factory(live_account=True, account="U7654321")
    broker = LiveBrokerAdapter(paper_trading=True, port=server.port, client_id=52)
    try:
        with pytest.raises(ConfigError, match="live account"):
            broker.connect(timeout=5)
        assert not broker.is_connected()
        assert wait_until(lambda: not server.core.sessions)
    finally:
        broker.disconnect()


def test_ib_paper_account_routes_orders_to_that_account(gateway_factory, monkeypatch):
    monkeypatch.setenv("IB_PAPER_ACCOUNT", "DU5550001")
    server = gateway_factory(account="DU5550001")
    broker = LiveBrokerAdapter(paper_trading=True, port=server.port, client_id=53)
    try:
        assert broker.connect(timeout=5)
        assert broker.account == "DU5550001"
        order = Order("AAPL", 1, "limit", "buy", limit_price=1.0, time_in_force="gtc")
        broker.execute_order(order, 100.0, NOW)
        assert order.broker_order_id is not None
        record = broker.tracker.get(str(order.order_id))
        assert record is not None
        assert record.ib_order.account == "DU5550001"
    finally:
        broker.disconnect()
