"""Fault drills: connection drops, gateway restarts, late executions, restarts, broken journals, liveness."""

from __future__ import annotations

import errno
import os

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.journal import OrderState, TradeJournal, intent_log

from .conftest import Scripted, assert_books_agree, journal_file, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

BUY = Order("AAPL", 10, "market", "buy")


@pytest.fixture
def limit_filling_on_bar_3(feed) -> Order:
    """A GTC limit buy placed on bar 1 that rests through bar 2 and fills on bar 3 (from the data)."""
    bars = feed.get_historical_data("AAPL", "2024-03-01", "2024-03-06")
    close1, low2, low3 = bars["Close"].iloc[0], bars["Low"].iloc[1], bars["Low"].iloc[2]
    assert low3 < low2
    assert low3 < close1
    limit = round(low3 + (min(close1, low2) - low3) / 2, 2)
    return Order("AAPL", 7, "limit", "buy", limit_price=limit, time_in_force="gtc")


def _journal_states(path) -> list[OrderState]:
    with TradeJournal(path, read_only=True) as journal:
        return [o.state for o in journal.orders()]


@pytest.mark.parametrize("fault", ["drop", "gateway_restart"])
def test_a_fill_while_disconnected_reaches_on_fill_once(
    fault, make_engine, gateway, limit_filling_on_bar_3, journal_dir
):
    strategy = Scripted({1: [limit_filling_on_bar_3]})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    path = journal_file(journal_dir)
    gateway.clock.step(1)
    assert wait_until(lambda: _journal_states(path) == [OrderState.SUBMITTED])
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 2)
    if fault == "drop":
        gateway.refuse_connections(1.0)
        gateway.drop_all()
    else:
        gateway.restart()  # same port, same account and orders
    assert wait_until(lambda: not engine.is_connected() or fault == "gateway_restart", timeout=5)
    gateway.clock.step(1)  # the limit order fills at the gateway, possibly before we are back
    assert wait_until(lambda: len(strategy.fills) == 1, timeout=20)
    assert wait_until(engine.is_connected, timeout=20)
    assert strategy.fills[0].fill_price == pytest.approx(limit_filling_on_bar_3.limit_price)
    assert wait_until(lambda: _journal_states(path) == [OrderState.FILLED])
    assert_books_agree(gateway, path, strategy.fills, engine)
    assert [e["kind"] for e in engine.events].count("reconcile") >= 1


@pytest.mark.parametrize("reconnect_before_release", [False, True])
def test_withheld_executions_delivered_late_reach_on_fill_once(
    reconnect_before_release, make_engine, gateway, journal_dir
):
    strategy = Scripted({1: [BUY]})
    engine = make_engine(fill_timeout=0.3)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.withhold_executions(True)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.executions()) == 1)
    assert not strategy.fills
    if reconnect_before_release:
        gateway.drop_all()  # reconciliation finds the execution with reqExecutions
        assert wait_until(lambda: len(strategy.fills) == 1, timeout=20)
    gateway.withhold_executions(False)  # the held reports arrive late (again, in the reconnect case)
    assert wait_until(lambda: len(strategy.fills) == 1, timeout=10)
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 3)
    path = journal_file(journal_dir)
    assert wait_until(lambda: _journal_states(path) == [OrderState.FILLED])
    assert_books_agree(gateway, path, strategy.fills, engine)


@pytest.mark.parametrize("fills_while_down", [True, False])
def test_a_restarted_engine_carries_on_from_journal_and_broker(
    fills_while_down, make_engine, gateway, limit_filling_on_bar_3, journal_dir
):
    first = Scripted({1: [BUY, limit_filling_on_bar_3]})
    engine = make_engine(fill_timeout=0.5)
    engine.add_strategy(first)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 2)
    gateway.clock.step(1)
    assert wait_until(lambda: len(first.fills) == 1 and first.bars == 2)
    engine.disconnect()  # the process "dies"; its resting limit order stays at the gateway
    if fills_while_down:
        gateway.clock.step(1)
        assert wait_until(lambda: len(gateway.broker.executions()) == 2)

    second = Scripted()
    restarted = make_engine(fill_timeout=0.5)  # a new engine object on the same journal and client id
    restarted.add_strategy(second)
    assert restarted.connect(timeout=5)
    assert restarted.start(["AAPL"], lookback_days=5)
    if not fills_while_down:  # its own order from the last run, still resting at IB
        assert [o.limit_price for o in second.open_orders()] == [limit_filling_on_bar_3.limit_price]
        gateway.clock.step(1)  # the adopted order fills now and reaches the new strategy
    assert wait_until(lambda: len(second.fills) == 1, timeout=10)
    assert second.fills[0].order.order_type == "limit"
    path = journal_file(journal_dir)
    assert wait_until(lambda: _journal_states(path) == [OrderState.FILLED, OrderState.FILLED])
    assert_books_agree(gateway, path, [*first.fills, *second.fills], restarted)


class _PlacesOnce(Scripted):
    """Sends ``order`` itself (not a copy) on its first bar, under the order_id the test gave it."""

    def __init__(self, order: Order | None = None) -> None:
        super().__init__()
        self.order = order

    def on_data(self, timestamp, data):
        self.bars += 1
        return [self.order] if self.bars == 1 and self.order is not None else None


def test_a_restarted_strategy_sees_and_cancels_its_order_from_the_last_run(
    make_engine, gateway, limit_filling_on_bar_3
):
    """The restarted strategy's open_orders() lists the adopted order; cancel(its id) reaches IB; and new
    automatic ids continue after the journaled ones (each process counts from O1), so the id names one order."""
    resting = limit_filling_on_bar_3.copy(order_id="O5000000")
    engine = make_engine(fill_timeout=0.5)
    engine.add_strategy(_PlacesOnce(resting))
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    engine.disconnect()  # the process "dies"; its resting limit order stays at the gateway

    second = _PlacesOnce()  # the same strategy (by name) in the new process
    restarted = make_engine(fill_timeout=0.5)
    restarted.add_strategy(second)
    assert restarted.connect(timeout=5)
    assert restarted.start(["AAPL"], lookback_days=5)
    (adopted,) = second.open_orders()
    assert adopted is not resting  # rebuilt from the journal, tracked again
    assert (adopted.order_id, adopted.limit_price, adopted.quantity) == ("O5000000", resting.limit_price, 7)
    assert int(Order("AAPL", 1).order_id[1:]) > 5_000_000

    second.cancel("O5000000")
    assert wait_until(lambda: adopted.status is OrderStatus.CANCELLED, timeout=10)
    assert not gateway.broker.open_orders()
    assert second.open_orders() == []


def _read_only_disk(fd: int, data: bytes) -> None:
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def test_a_read_only_journal_halts_trading_and_sends_nothing(make_engine, gateway, journal_dir, monkeypatch):
    strategy = Scripted({1: [BUY]})
    engine = make_engine()
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    # Fault injection: from now on SQLite refuses every write, as on a disk remounted read-only, and so
    # does the intent log beside it (the same disk).
    engine.journal._conn.execute("PRAGMA query_only = ON")  # type: ignore[union-attr]
    monkeypatch.setattr(intent_log, "_write_all", _read_only_disk)
    gateway.clock.step(1)
    assert wait_until(lambda: engine.kill_switch.is_engaged)
    assert "journal" in engine.kill_switch.reason
    assert any(e["type"] == "journal" and "read-only" in e["error"] for e in engine.errors)
    assert engine.halted is not None
    assert not gateway.broker.open_orders()
    assert not gateway.broker.completed_orders()
    # the event follows the engagement on the engine's thread: wait for it rather than race it
    assert wait_until(lambda: "kill_switch" in [e["kind"] for e in engine.events])
    engine.disconnect()
    assert _journal_states(journal_file(journal_dir)) == []  # nothing half-written
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills)


def test_a_long_disconnect_halts_trading_with_an_alert_then_resumes(make_engine, gateway, caplog):
    engine = make_engine(max_disconnect_s=0.3)
    engine.add_strategy(Scripted())
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.refuse_connections(2.0)
    gateway.drop_all()
    assert wait_until(lambda: engine.halted is not None, timeout=5)
    assert "connection to IB down" in engine.halted
    # the halt is visible a moment before its alert is logged (both on the worker thread)
    assert wait_until(
        lambda: any(
            r.levelname == "ERROR" and "connection to IB down" in r.getMessage() for r in caplog.records
        )
    )
    assert wait_until(lambda: engine.halted is None, timeout=20)
    kinds = [e["kind"] for e in engine.events]
    assert kinds.index("alert") < kinds.index("halt") < kinds.index("resume")


def test_a_duplicate_client_id_is_refused_and_the_first_engine_trades_on(make_engine, gateway, journal_dir):
    strategy = Scripted({2: [BUY]})
    engine = make_engine(fill_timeout=0.5)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    intruder = make_engine()  # same client id 81
    assert not intruder.connect(timeout=3, retry_count=1)
    for _ in range(3):
        gateway.clock.step(1)
        wait_until(lambda: False, timeout=0.3)
    assert wait_until(lambda: len(strategy.fills) == 1)
    assert engine.is_connected()
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)


def test_partial_fills_over_several_bars_reach_on_fill_each_once(gateway_factory, make_engine, journal_dir):
    server = gateway_factory(partial_fill_size=4)
    strategy = Scripted({1: [BUY]})
    engine = make_engine(port=server.port, fill_timeout=0.3)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    for _ in range(5):
        server.clock.step(1)
        wait_until(lambda: False, timeout=0.3)
    assert wait_until(lambda: sum(f.fill_quantity for f in strategy.fills) == 10)
    assert len(strategy.fills) >= 2
    path = journal_file(journal_dir)
    assert wait_until(lambda: _journal_states(path) == [OrderState.FILLED])
    assert_books_agree(server, path, strategy.fills, engine)
    assert strategy.fills[-1].order.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)


def test_a_competing_session_halts_with_an_alert_until_data_flows(make_engine, gateway, journal_dir, caplog):
    strategy = Scripted({1: [BUY]})
    engine = make_engine(fill_timeout=0.5)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.competing_session()
    assert wait_until(lambda: engine.halted is not None)
    assert "10197" in engine.halted or "competing" in engine.halted
    assert any(r.levelname == "ERROR" and "competing" in r.getMessage() for r in caplog.records)
    gateway.clock.step(1)  # market data flows again: trading resumes and the order goes out
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)
    gateway.clock.step(1)
    assert wait_until(lambda: len(strategy.fills) == 1), (list(engine.errors), list(engine.events))
    assert engine.halted is None
    kinds = [e["kind"] for e in engine.events]
    assert kinds.index("halt") < kinds.index("resume")
    assert_books_agree(gateway, journal_file(journal_dir), strategy.fills, engine)


def test_a_connection_dropped_mid_order_neither_loses_nor_resends_it(make_engine, gateway, journal_dir):
    strategy = Scripted({1: [BUY]})
    engine = make_engine(fill_timeout=2.0)
    engine.add_strategy(strategy)
    assert engine.connect(timeout=5)
    assert engine.start(["AAPL"], lookback_days=5)
    gateway.clock.step(1)
    assert wait_until(lambda: len(gateway.broker.open_orders()) == 1)  # the engine waits for its fill now
    gateway.refuse_connections(0.5)
    gateway.drop_all()
    gateway.clock.step(1)  # it fills while the engine is cut off
    assert wait_until(lambda: len(strategy.fills) == 1, timeout=20)
    assert wait_until(engine.is_connected, timeout=20)
    gateway.clock.step(1)
    assert wait_until(lambda: strategy.bars == 3)
    assert len(gateway.broker.completed_orders()) == 1  # sent once
    path = journal_file(journal_dir)
    assert wait_until(lambda: _journal_states(path) == [OrderState.FILLED])
    assert_books_agree(gateway, path, strategy.fills, engine)
